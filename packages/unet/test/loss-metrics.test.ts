import { beforeAll, describe, expect, it } from 'vitest';
import {
  batchRecord,
  defaultLoss,
  lossTensor,
  loadEngine,
  MetricCounts,
  normalisedAlpha,
  parseClassWeights,
  SEED_METRIC_NAMES,
  type Tfjs,
} from '../src/index.js';

let tf: Tfjs;
beforeAll(async () => {
  tf = (await loadEngine({ engine: 'cpu' })).tf;
});

// Four voxels, three classes. Expected values were computed by hand from seed.md §3 (float64, Python).
const P = [
  [0.2, 0.5, 0.3],
  [0.1, 0.1, 0.8],
  [0.7, 0.2, 0.1],
  [0.3, 0.3, 0.4],
];
const LABELS = Uint8Array.from([1, 2, 0, 1]);

function outputs() {
  const probabilities = tf.tensor5d(P.flat(), [1, 1, 2, 2, 3]);
  // softmax(ln p) = p, so the logits-based losses see the same probabilities.
  return { probabilities, logits: tf.log(probabilities) as typeof probabilities };
}

describe('losses', () => {
  it("focal loss equals the seed's formula: normalised alpha, clamped one-hot, −α(1−pt)²·ln pt, mean", () => {
    expect([...normalisedAlpha([0.2, 1.0, 2.5])].map((a) => +a.toFixed(6))).toEqual([
      0.054054, 0.27027, 0.675676,
    ]);
    const loss = lossTensor(tf, defaultLoss('focal'), outputs(), LABELS).dataSync()[0]!;
    expect(loss).toBeCloseTo(0.05350829897146914, 7);
    // The same by the formula, written out for voxel 0 (label 1): pt = 0.99999·0.5 + 5e-6·(0.2 + 0.3) + 1e-5.
    const pt0 = 0.99999 * 0.5 + 5e-6 * 0.5 + 1e-5;
    const voxel0 = -(1.0 / 3.7) * (1 - pt0) ** 2 * Math.log(pt0);
    const one = lossTensor(
      tf,
      defaultLoss('focal'),
      {
        probabilities: tf.tensor5d([0.2, 0.5, 0.3], [1, 1, 1, 1, 3]),
        logits: tf.zeros([1, 1, 1, 1, 3]),
      },
      Uint8Array.of(1),
    );
    expect(one.dataSync()[0]).toBeCloseTo(voxel0, 8);
  });

  it('weighted cross-entropy is Σ w_t·(−ln p_t) / Σ w_t (PyTorch CrossEntropyLoss(weight))', () => {
    const loss = lossTensor(tf, defaultLoss('weighted-ce'), outputs(), LABELS).dataSync()[0]!;
    expect(loss).toBeCloseTo(0.5375135855232238, 6);
  });

  it('Dice+CE adds 1 − mean soft Dice over classes to the weighted CE', () => {
    const loss = lossTensor(tf, defaultLoss('dice-ce'), outputs(), LABELS).dataSync()[0]!;
    expect(loss).toBeCloseTo(0.9574422384279727, 6);
  });

  it('parses the seed --class-weights string and rejects bad ones', () => {
    expect(parseClassWeights('0.2, 1.0, 2.5', 3)).toEqual([0.2, 1, 2.5]);
    expect(() => parseClassWeights('0.2,1', 3)).toThrow(/--class-weights '0.2,1' must be 3 positive/);
    expect(() => parseClassWeights('0.2,x,1', 3)).toThrow(/positive comma-separated/);
  });
});

describe('metric counts with the seed semantics', () => {
  const rec = (batch: number, micro: number, pred: number[], label: number[], loss: number, samples = 1) =>
    batchRecord(Uint8Array.from(pred), Uint8Array.from(label), { batch, micro, samples, classes: 3, loss });
  // Batch 0 = two micro-batches; batch 1 = one. Tumour (2) is absent from prediction and label in batch 0.
  const records = [
    rec(0, 0, [0, 0, 1, 1], [0, 1, 1, 1], 0.5),
    rec(0, 1, [0, 0, 0, 1], [0, 0, 0, 1], 0.25),
    rec(1, 0, [0, 2, 2, 1], [0, 2, 1, 1], 0.125),
  ];

  it('pools IoU per batch and averages over the batches where the class occurs', () => {
    const m = MetricCounts.of(3, records).toSeedMetrics('val');
    // batch 0 pooled: IoU0 = 4/5, IoU1 = 3/4, class 2 skipped (U = 0); batch 1: IoU0 = 1, IoU1 = 1/2, IoU2 = 1/2.
    expect(m['val_iou_0']).toBeCloseTo((0.8 + 1) / 2, 9);
    expect(m['val_iou_1']).toBeCloseTo((0.75 + 0.5) / 2, 9);
    expect(m['val_iou_2']).toBeCloseTo(0.5, 9);
    expect(m['val_iou_2']).toBeLessThan(0.5); // the seed's + 1e-10 in the denominator
    expect(m['val_mean_iou']).toBeCloseTo((0.9 + 0.625 + 0.5) / 3, 9);
    // accuracy: batch 0 = 7/8, batch 1 = 3/4; loss: batch 0 = (0.5·4 + 0.25·4)/8, batch 1 = 0.125.
    expect(m['val_avg_acc']).toBe((7 / 8 + 3 / 4) / 2);
    expect(m['val_avg_loss']).toBe((0.375 + 0.125) / 2);
    expect(Object.keys(m).sort()).toEqual(
      ['avg_acc', 'avg_loss', 'iou_0', 'iou_1', 'iou_2', 'mean_iou'].map((k) => `val_${k}`),
    );
  });

  it('produces exactly the 18 metric names of the seed over train, val and test', () => {
    // seed.md §4.3, written out.
    const seedNames = [
      'train_avg_loss',
      'train_avg_acc',
      'train_mean_iou',
      'train_iou_0',
      'train_iou_1',
      'train_iou_2',
      'val_avg_loss',
      'val_avg_acc',
      'val_mean_iou',
      'val_iou_0',
      'val_iou_1',
      'val_iou_2',
      'test_avg_loss',
      'test_avg_acc',
      'test_mean_iou',
      'test_iou_0',
      'test_iou_1',
      'test_iou_2',
    ];
    expect(SEED_METRIC_NAMES).toEqual(seedNames);
    const counts = MetricCounts.of(3, records);
    const produced = (['train', 'val', 'test'] as const).flatMap((p) => Object.keys(counts.toSeedMetrics(p)));
    expect(produced).toEqual(seedNames);
    for (const p of ['train', 'val', 'test'] as const)
      expect(Object.values(counts.toSeedMetrics(p)).every(Number.isFinite)).toBe(true);
  });

  it('reports 0 for a class absent from every batch', () => {
    const m = MetricCounts.of(3, [rec(0, 0, [0, 1], [0, 1], 0.1)]).toSeedMetrics('train');
    expect(m['train_iou_2']).toBe(0);
    expect(m['train_mean_iou']).toBeCloseTo(2 / 3, 9);
  });

  it('merges exactly whatever the split and order, survives JSON, and refuses double counting', () => {
    const whole = MetricCounts.of(3, records);
    const rankA = MetricCounts.of(3, [records[2]!]);
    const rankB = MetricCounts.of(3, [records[1]!, records[0]!]);
    const viaJson = MetricCounts.fromJSON(JSON.parse(JSON.stringify(rankB.merge(rankA))));
    for (const merged of [rankA.merge(rankB), rankB.merge(rankA), viaJson]) {
      expect(merged.toJSON()).toEqual(whole.toJSON());
      expect(merged.toSeedMetrics('test')).toEqual(whole.toSeedMetrics('test'));
    }
    expect(() => whole.merge(rankA)).toThrow(/batch 1 micro-batch 0 was counted twice/);
    expect(() =>
      MetricCounts.fromJSON({ classes: 3, records: [{ ...records[0], correct: -1 }] }, 'rank 2 counts'),
    ).toThrow(/rank 2 counts.records\[0\].correct must be a non-negative integer/);
    expect(() => MetricCounts.fromJSON({ classes: 3, records: [{ ...records[0], target: [1, 2] }] })).toThrow(
      /target must be 3 non-negative integers/,
    );
  });

  it('gives per-case Dice for liver (label ≥ 1) and tumour (label 2), 1 when both are empty', () => {
    const r = rec(4, 0, [0, 1, 2, 2, 0, 0, 0, 0], [0, 1, 1, 2, 0, 0, 0, 0], 0, 2);
    const dice = MetricCounts.of(3, [r]).caseDice();
    expect(dice).toEqual([
      { batch: 4, micro: 0, sample: 0, liver: 1, tumour: 2 / 3 },
      { batch: 4, micro: 0, sample: 1, liver: 1, tumour: 1 },
    ]);
    const miss = MetricCounts.of(3, [rec(5, 0, [0, 0, 1, 0], [0, 2, 2, 0], 0)]).caseDice()[0]!;
    expect(miss.liver).toBeCloseTo(2 / 3, 12); // pred liver {2}, true liver {1, 2}
    expect(miss.tumour).toBe(0);
  });
});
