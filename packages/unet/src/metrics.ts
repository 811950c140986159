// Mergeable metric counts with the seed's semantics (seed.md §4): IoU pooled per batch, averaged over the batches
// where the class occurs; accuracy and loss as means over batches. Records are keyed by (batch, micro-batch), so
// merging the records of all ranks is a union and the result never depends on the world size or arrival order.

/** Intersection, predicted and target voxel counts of one region. */
export type RegionCounts = readonly [intersection: number, predicted: number, target: number];

/** Per-sample counts for LiTS Dice: liver = label ≥ 1, tumour = label 2. */
export interface CaseCounts {
  readonly liver: RegionCounts;
  readonly tumour: RegionCounts;
}

export interface BatchRecord {
  /** Global batch index (the optimiser step for training; the test batch for evaluation). */
  readonly batch: number;
  /** Micro-batch index within the batch. */
  readonly micro: number;
  readonly voxels: number;
  readonly correct: number;
  /** The micro-batch's mean loss × voxels (exact in float64 for a float32 loss). */
  readonly lossSum: number;
  readonly intersection: readonly number[];
  readonly predicted: readonly number[];
  readonly target: readonly number[];
  readonly cases: readonly CaseCounts[];
}

export interface MetricCountsJSON {
  readonly classes: number;
  readonly records: readonly BatchRecord[];
}

export type MetricPrefix = 'train' | 'val' | 'test';

/** The seed's 18 logged names (seed.md §4.3): {train,val,test}_{avg_loss, avg_acc, mean_iou, iou_0, iou_1, iou_2}. */
export const SEED_METRIC_NAMES: readonly string[] = (['train', 'val', 'test'] as const).flatMap((prefix) =>
  ['avg_loss', 'avg_acc', 'mean_iou', 'iou_0', 'iou_1', 'iou_2'].map((name) => `${prefix}_${name}`),
);

export interface CaseDice {
  readonly batch: number;
  readonly micro: number;
  readonly sample: number;
  readonly liver: number;
  readonly tumour: number;
}

const recordKey = (r: { batch: number; micro: number }) => `${r.batch}/${r.micro}`;

/** Dice from counts; both regions empty counts as a perfect 1 (the LiTS convention). */
export function diceFromCounts([intersection, predicted, target]: RegionCounts): number {
  return predicted + target === 0 ? 1 : (2 * intersection) / (predicted + target);
}

/** argmax over the last axis of [voxels, classes] probabilities (the first maximum wins, as torch.argmax). */
export function argmaxClasses(probabilities: Float32Array, classes: number): Uint8Array {
  const voxels = probabilities.length / classes;
  const out = new Uint8Array(voxels);
  for (let v = 0; v < voxels; v++) {
    let best = 0;
    let bestP = probabilities[v * classes] as number;
    for (let c = 1; c < classes; c++) {
      const p = probabilities[v * classes + c] as number;
      if (p > bestP) {
        bestP = p;
        best = c;
      }
    }
    out[v] = best;
  }
  return out;
}

function regionCounts(
  pred: Uint8Array,
  label: Uint8Array,
  from: number,
  to: number,
  min: number,
): RegionCounts {
  let i = 0;
  let p = 0;
  let t = 0;
  for (let v = from; v < to; v++) {
    const inP = (pred[v] as number) >= min ? 1 : 0;
    const inT = (label[v] as number) >= min ? 1 : 0;
    p += inP;
    t += inT;
    i += inP & inT;
  }
  return [i, p, t];
}

/** Counts of one micro-batch from predicted classes and labels ([batch·voxelsPerSample]). */
export function batchRecord(
  predicted: Uint8Array,
  label: Uint8Array,
  options: { batch: number; micro: number; samples: number; classes: number; loss: number },
): BatchRecord {
  if (predicted.length !== label.length)
    throw new RangeError(`predicted has ${predicted.length} voxels, label ${label.length}`);
  const { classes, samples } = options;
  const intersection = new Array<number>(classes).fill(0);
  const predCount = new Array<number>(classes).fill(0);
  const target = new Array<number>(classes).fill(0);
  let correct = 0;
  for (let v = 0; v < label.length; v++) {
    const p = predicted[v] as number;
    const t = label[v] as number;
    predCount[p] = (predCount[p] as number) + 1;
    target[t] = (target[t] as number) + 1;
    if (p === t) {
      correct++;
      intersection[p] = (intersection[p] as number) + 1;
    }
  }
  const perSample = label.length / samples;
  const cases: CaseCounts[] = [];
  for (let s = 0; s < samples; s++) {
    const from = s * perSample;
    const to = from + perSample;
    cases.push({
      liver: regionCounts(predicted, label, from, to, 1),
      tumour: regionCounts(predicted, label, from, to, 2),
    });
  }
  return {
    batch: options.batch,
    micro: options.micro,
    voxels: label.length,
    correct,
    lossSum: options.loss * label.length,
    intersection,
    predicted: predCount,
    target,
    cases,
  };
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function validateRecord(r: unknown, classes: number, where: string): BatchRecord {
  if (typeof r !== 'object' || r === null) throw new TypeError(`${where} must be an object`);
  const rec = r as Record<string, unknown>;
  for (const f of ['batch', 'micro', 'voxels', 'correct'])
    if (!isCount(rec[f]))
      throw new TypeError(`${where}.${f} must be a non-negative integer, got ${String(rec[f])}`);
  if (typeof rec['lossSum'] !== 'number' || !Number.isFinite(rec['lossSum']))
    throw new TypeError(`${where}.lossSum must be a finite number`);
  for (const f of ['intersection', 'predicted', 'target']) {
    const arr = rec[f];
    if (!Array.isArray(arr) || arr.length !== classes || !arr.every(isCount))
      throw new TypeError(`${where}.${f} must be ${classes} non-negative integers`);
  }
  const cases = rec['cases'];
  if (!Array.isArray(cases)) throw new TypeError(`${where}.cases must be an array`);
  cases.forEach((c: unknown, i) => {
    const cc = c as Record<string, unknown> | null;
    for (const region of ['liver', 'tumour']) {
      const v = cc?.[region];
      if (!Array.isArray(v) || v.length !== 3 || !v.every(isCount))
        throw new TypeError(
          `${where}.cases[${i}].${region} must be [intersection, predicted, target] counts`,
        );
    }
  });
  return rec as unknown as BatchRecord;
}

/** An immutable set of per-(batch, micro-batch) records. */
export class MetricCounts {
  private constructor(
    readonly classes: number,
    private readonly records: ReadonlyMap<string, BatchRecord>,
  ) {}

  static empty(classes: number): MetricCounts {
    return new MetricCounts(classes, new Map());
  }

  static of(classes: number, records: readonly BatchRecord[]): MetricCounts {
    return MetricCounts.empty(classes).mergeRecords(records, 'records');
  }

  /** Parses counts that travelled as JSON (e.g. through Redis); `source` names them in errors. */
  static fromJSON(json: unknown, source = 'metric counts'): MetricCounts {
    if (typeof json !== 'object' || json === null) throw new TypeError(`${source} must be an object`);
    const { classes, records } = json as Record<string, unknown>;
    if (!isCount(classes) || classes < 2) throw new TypeError(`${source}.classes must be an integer ≥ 2`);
    if (!Array.isArray(records)) throw new TypeError(`${source}.records must be an array`);
    const valid = records.map((r, i) => validateRecord(r, classes, `${source}.records[${i}]`));
    return MetricCounts.empty(classes).mergeRecords(valid, source);
  }

  private mergeRecords(records: readonly BatchRecord[], source: string): MetricCounts {
    const merged = new Map(this.records);
    for (const r of records) {
      if (r.intersection.length !== this.classes)
        throw new RangeError(
          `${source}: record ${recordKey(r)} has ${r.intersection.length} classes, not ${this.classes}`,
        );
      const key = recordKey(r);
      if (merged.has(key))
        throw new Error(`${source}: batch ${r.batch} micro-batch ${r.micro} was counted twice`);
      merged.set(key, r);
    }
    return new MetricCounts(this.classes, merged);
  }

  /** The union of both record sets; a (batch, micro-batch) present in both is an error. */
  merge(other: MetricCounts): MetricCounts {
    if (other.classes !== this.classes)
      throw new RangeError(`cannot merge counts of ${other.classes} classes into ${this.classes}`);
    return this.mergeRecords(other.sortedRecords(), 'merge');
  }

  get size(): number {
    return this.records.size;
  }

  /** Records in (batch, micro) order. */
  sortedRecords(): BatchRecord[] {
    return [...this.records.values()].sort((a, b) => a.batch - b.batch || a.micro - b.micro);
  }

  toJSON(): MetricCountsJSON {
    return { classes: this.classes, records: this.sortedRecords() };
  }

  /** Per-batch sums over micro-batches (in micro order), in batch order. */
  private batches(): { loss: number; acc: number; intersection: number[]; union: number[] }[] {
    const groups = new Map<number, BatchRecord[]>();
    for (const r of this.sortedRecords()) groups.set(r.batch, [...(groups.get(r.batch) ?? []), r]);
    const sum = (rs: BatchRecord[], pick: (r: BatchRecord) => number) => rs.reduce((s, r) => s + pick(r), 0);
    return [...groups.values()].map((rs) => {
      const voxels = sum(rs, (r) => r.voxels);
      const classes = Array.from({ length: this.classes }, (_, c) => c);
      const intersection = classes.map((c) => sum(rs, (r) => r.intersection[c] as number));
      const union = classes.map(
        (c) =>
          sum(rs, (r) => (r.predicted[c] as number) + (r.target[c] as number)) - (intersection[c] as number),
      );
      return {
        loss: sum(rs, (r) => r.lossSum) / voxels,
        acc: sum(rs, (r) => r.correct) / voxels,
        intersection,
        union,
      };
    });
  }

  /** `{prefix}_{avg_loss, avg_acc, mean_iou, iou_0 … iou_{C−1}}` exactly as the seed's *_epoch_end computes them. */
  toSeedMetrics(prefix: MetricPrefix): Record<string, number> {
    const batches = this.batches();
    if (batches.length === 0) throw new Error(`no batches counted for ${prefix} metrics`);
    const iouSum = new Array<number>(this.classes).fill(0);
    const iouCount = new Array<number>(this.classes).fill(0);
    let loss = 0;
    let acc = 0;
    for (const b of batches) {
      loss += b.loss;
      acc += b.acc;
      for (let c = 0; c < this.classes; c++) {
        const u = b.union[c] as number;
        if (u > 0) {
          iouSum[c] = (iouSum[c] as number) + (b.intersection[c] as number) / u;
          iouCount[c] = (iouCount[c] as number) + 1;
        }
      }
    }
    const iou = iouSum.map((s, c) => s / ((iouCount[c] as number) + 1e-10));
    const metrics: Record<string, number> = {
      [`${prefix}_avg_loss`]: loss / batches.length,
      [`${prefix}_avg_acc`]: acc / batches.length,
      [`${prefix}_mean_iou`]: iou.reduce((a, b) => a + b, 0) / this.classes,
    };
    iou.forEach((v, c) => (metrics[`${prefix}_iou_${c}`] = v));
    return metrics;
  }

  /** Per-sample liver and tumour Dice, in (batch, micro, sample) order. */
  caseDice(): CaseDice[] {
    return this.sortedRecords().flatMap((r) =>
      r.cases.map((c, sample) => ({
        batch: r.batch,
        micro: r.micro,
        sample,
        liver: diceFromCounts(c.liver),
        tumour: diceFromCounts(c.tumour),
      })),
    );
  }
}
