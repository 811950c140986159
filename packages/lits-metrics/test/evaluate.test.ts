import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseLabelMap, writeNifti, type Matrix4 } from '@lits-ddp/lits-data';
import {
  caseMetricsOf,
  countRegions,
  evaluateCase,
  evaluatePaths,
  formatReportTable,
  overlapMetrics,
  reportToCsv,
  reportToJson,
  summarise,
  EvaluationError,
  type CaseMetrics,
} from '../src/index.js';

const AFFINE: Matrix4 = [
  [-0.8, 0, 0, 100],
  [0, -0.8, 0, 120],
  [0, 0, 2.5, -300],
  [0, 0, 0, 1],
];

describe('overlap metrics', () => {
  it('computes Dice, IoU, VOE and RVD for liver (≥ 1) and tumour (= 2) as by hand', () => {
    const pred = Uint8Array.from([0, 1, 2, 2, 0, 1]);
    const truth = Uint8Array.from([0, 1, 1, 2, 2, 0]);
    const counts = countRegions(pred, truth);
    expect(counts).toEqual({
      liver: { intersection: 3, pred: 4, truth: 4 },
      tumour: { intersection: 1, pred: 2, truth: 2 },
    });
    const m = caseMetricsOf(pred, truth, [6, 1, 1], [1, 1, 1]);
    expect(m.diceLiver).toBe(0.75);
    expect(m.diceTumour).toBe(0.5);
    expect(m.iou).toEqual({ liver: 0.6, tumour: 1 / 3 });
    expect(m.voe.liver).toBeCloseTo(0.4, 15);
    expect(m.voe.tumour).toBeCloseTo(2 / 3, 15);
    expect(m.rvd).toEqual({ liver: 0, tumour: 0 });
    // Over-segmentation is a positive RVD: (|P| − |T|) / |T|.
    expect(overlapMetrics({ intersection: 2, pred: 6, truth: 4 }).rvd).toBe(0.5);
    expect(overlapMetrics({ intersection: 2, pred: 2, truth: 4 }).rvd).toBe(-0.5);
  });

  it('applies the empty-mask rule: LiTS 0, skip null, one 1; RVD null when the truth is empty', () => {
    const none = { intersection: 0, pred: 0, truth: 0 };
    expect(overlapMetrics(none, 'lits')).toEqual({ dice: 0, iou: 0, voe: 1, rvd: null });
    expect(overlapMetrics(none, 'skip')).toEqual({ dice: null, iou: null, voe: null, rvd: null });
    expect(overlapMetrics(none, 'one')).toEqual({ dice: 1, iou: 1, voe: 0, rvd: 0 });
    const falsePositive = { intersection: 0, pred: 5, truth: 0 };
    for (const rule of ['lits', 'skip', 'one'] as const)
      expect(overlapMetrics(falsePositive, rule)).toEqual({ dice: 0, iou: 0, voe: 1, rvd: null });
  });

  it('surface distances of an empty mask are null with the reason per case, under every rule', () => {
    const truth = Uint8Array.from([0, 1, 1, 0]);
    const pred = Uint8Array.from([0, 1, 0, 0]);
    for (const rule of ['lits', 'skip', 'one'] as const) {
      const m = caseMetricsOf(pred, truth, [4, 1, 1], [1, 1, 1], { surface: true, emptyRule: rule });
      expect(m.assd!.liver).toBeCloseTo(1 / 3, 15); // distances 0 | 0, 1 over 3 surface voxels
      expect(m.mssd).toEqual({ liver: 1, tumour: null });
      expect(m.assd!.tumour).toBeNull();
      expect(m.surfaceNullReason).toEqual({ liver: null, tumour: 'both empty' });
      const empty = caseMetricsOf(new Uint8Array(4), truth, [4, 1, 1], [1, 1, 1], {
        surface: true,
        emptyRule: rule,
      });
      expect(empty.assd).toEqual({ liver: null, tumour: null });
      expect(empty.surfaceNullReason).toEqual({ liver: 'empty prediction', tumour: 'both empty' });
      const fp = caseMetricsOf(truth, new Uint8Array(4), [4, 1, 1], [1, 1, 1], {
        surface: true,
        emptyRule: rule,
      });
      expect(fp.surfaceNullReason!.liver).toBe('empty ground truth');
    }
    expect(caseMetricsOf(pred, truth, [4, 1, 1], [1, 1, 1], { emptyRule: 'skip' }).diceTumour).toBeNull();
    expect(caseMetricsOf(pred, truth, [4, 1, 1], [1, 1, 1], { emptyRule: 'one' }).diceTumour).toBe(1);
  });

  it('the means count an empty case’s surface distances by the rule: lits 0, skip left out, one 0 if both empty', () => {
    const shape: [number, number, number] = [4, 1, 1];
    const row = (name: string, pred: number[], truth: number[]): CaseMetrics => ({
      case: name,
      pred: name,
      truth: name,
      ...caseMetricsOf(Uint8Array.from(pred), Uint8Array.from(truth), shape, [1, 1, 1], { surface: true }),
    });
    // a: liver ASSD 1/3, MSSD 1; b: empty prediction; c: both empty (no liver anywhere).
    const cases = [
      row('a', [0, 1, 0, 0], [0, 1, 1, 0]),
      row('b', [0, 0, 0, 0], [0, 1, 1, 0]),
      row('c', [0, 0, 0, 0], [0, 0, 0, 0]),
    ];
    const lits = summarise(cases, 'lits');
    expect(lits.assd!.liver).toBeCloseTo(1 / 9, 15);
    expect(lits.mssd!.liver).toBeCloseTo(1 / 3, 15);
    expect(lits.surfaceNullCases).toEqual({ liver: 2, tumour: 3 });
    expect(summarise(cases, 'skip').mssd!.liver).toBe(1);
    expect(summarise(cases, 'one').mssd!.liver).toBe(0.5);
  });

  it('summarises per-case means (nulls left out) and pooled global scores', () => {
    const row = (name: string, pred: number[], truth: number[], rule: 'lits' | 'skip'): CaseMetrics => ({
      case: name,
      pred: `${name}-p`,
      truth: `${name}-t`,
      ...caseMetricsOf(Uint8Array.from(pred), Uint8Array.from(truth), [pred.length, 1, 1], [1, 1, 1], {
        emptyRule: rule,
      }),
    });
    // Case a: big liver, perfect; case b: small liver, half right; case c: no tumour anywhere.
    const a = (rule: 'lits' | 'skip') => row('a', [1, 1, 1, 1, 1, 1, 2, 2], [1, 1, 1, 1, 1, 1, 2, 2], rule);
    const b = (rule: 'lits' | 'skip') => row('b', [1, 0, 2, 0], [1, 1, 0, 2], rule);
    const c = (rule: 'lits' | 'skip') => row('c', [1, 1, 0, 0], [1, 1, 0, 0], rule);
    const lits = summarise([a('lits'), b('lits'), c('lits')], 'lits');
    expect(lits.cases).toBe(3);
    expect(lits.diceLiver).toBeCloseTo((1 + 2 / 5 + 1) / 3, 15);
    expect(lits.diceTumour).toBeCloseTo((1 + 0 + 0) / 3, 15);
    // Global: liver I = 8 + 1 + 2 = 11, |P| = 8 + 2 + 2, |T| = 8 + 3 + 2 → 22 / 25; tumour I = 2, |P| = 3, |T| = 3.
    expect(lits.global.diceLiver).toBeCloseTo(22 / 25, 15);
    expect(lits.global.diceTumour).toBeCloseTo(4 / 6, 15);
    expect(lits.emptyTruth).toEqual({ liver: 0, tumour: 1 });
    const skip = summarise([a('skip'), b('skip'), c('skip')], 'skip');
    expect(skip.diceTumour).toBeCloseTo(0.5, 15); // case c left out
    expect(skip.global.diceTumour).toBeCloseTo(4 / 6, 15);
  });
});

const extraNote = (dir: string) => join(dir, 'truth', 'notes.txt');

describe('evaluating files', () => {
  let dir: string;
  const shape = [12, 10, 6];
  const truthLabels = new Uint8Array(12 * 10 * 6);
  for (let z = 1; z < 5; z++)
    for (let y = 2; y < 8; y++)
      for (let x = 2; x < 10; x++) truthLabels[x + 12 * (y + 10 * z)] = x > 6 && y > 4 && z > 2 ? 2 : 1;

  const write = (file: string, data: Uint8Array | Int16Array | Float32Array, affine = AFFINE, s = shape) =>
    writeNifti(file, { shape: s, data, affine });

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lits-metrics-'));
    await mkdir(join(dir, 'truth'));
    await mkdir(join(dir, 'pred'));
    for (const id of [0, 1, 2]) {
      await write(join(dir, 'truth', `volume-${id}.nii.gz`), new Int16Array(truthLabels.length).fill(-100));
      await write(join(dir, 'truth', `segmentation-${id}.nii.gz`), truthLabels);
      await copyFile(
        join(dir, 'truth', `segmentation-${id}.nii.gz`),
        join(dir, 'pred', `segmentation-${id}.nii.gz`),
      );
    }
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('a perfect prediction scores Dice 1 per case and globally, and 0 mm surface distances', async () => {
    const report = await evaluatePaths({ pred: join(dir, 'pred'), truth: join(dir, 'truth'), surface: true });
    expect(report.cases.map((c) => c.case)).toEqual(['0', '1', '2']);
    for (const c of report.cases) {
      expect(c.diceLiver).toBe(1);
      expect(c.diceTumour).toBe(1);
      expect(c.voe).toEqual({ liver: 0, tumour: 0 });
      expect(c.rvd).toEqual({ liver: 0, tumour: 0 });
      expect(c.assd).toEqual({ liver: 0, tumour: 0 });
    }
    expect(report.overall.diceLiver).toBe(1);
    expect(report.overall.global.diceTumour).toBe(1);
    const json = reportToJson(report);
    expect(JSON.parse(JSON.stringify(json))).toMatchObject({
      cases: [{ case: '0', diceLiver: 1, diceTumour: 1, iou: { liver: 1, tumour: 1 } }, {}, {}],
      overall: { diceLiver: 1, diceTumour: 1, iou: { liver: 1 }, voe: { liver: 0 }, rvd: { liver: 0 } },
    });
    expect(formatReportTable(report)).toMatch(/global\s+1\.0000\s+1\.0000/);
  });

  it('scores a shifted prediction, reads int16 and float masks, and writes CSV rows', async () => {
    const shifted = new Float32Array(truthLabels.length);
    for (let i = 1; i < truthLabels.length; i++) shifted[i] = truthLabels[i - 1]!; // one voxel along x
    const file = join(dir, 'shifted.nii.gz');
    await write(file, shifted);
    const c = await evaluateCase(file, join(dir, 'truth', 'segmentation-1.nii.gz'), { surface: true });
    // Liver box 8 × 6 × 4 = 192 voxels; a shift by one voxel along x keeps 7/8 of them.
    expect(c.counts.liver).toEqual({ intersection: 168, pred: 192, truth: 192 });
    expect(c.diceLiver).toBeCloseTo(168 / 192, 12);
    expect(c.mssd!.liver).toBeCloseTo(0.8, 6);
    const csv = reportToCsv({ cases: [c], overall: summarise([c]), unmatchedPredictions: [] });
    const lines = csv.trim().split('\n');
    expect(lines[0]).toMatch(/^case,dice_liver,dice_tumour,iou_liver,/);
    expect(lines[0]).toContain('assd_liver_mm');
    expect(lines.map((l) => l.split(',')[0])).toEqual(['case', c.case, 'mean', 'global']);
    expect(Number(lines[1]!.split(',')[1])).toBeCloseTo(168 / 192, 12);
  });

  it('an empty prediction reads n/a in the table and null with the reason in JSON and CSV, under every rule', async () => {
    const empty = join(dir, 'empty-pred');
    await mkdir(empty);
    await write(join(empty, 'segmentation-0.nii.gz'), new Uint8Array(truthLabels.length));
    await copyFile(join(dir, 'pred', 'segmentation-1.nii.gz'), join(empty, 'segmentation-1.nii.gz'));
    await copyFile(join(dir, 'pred', 'segmentation-2.nii.gz'), join(empty, 'segmentation-2.nii.gz'));
    for (const emptyRule of ['lits', 'skip', 'one'] as const) {
      const report = await evaluatePaths({
        pred: empty,
        truth: join(dir, 'truth'),
        surface: true,
        emptyRule,
      });
      const table = formatReportTable(report);
      expect(table).toMatch(/^0 .* n\/a \(empty prediction\)\s+n\/a \(empty prediction\)$/m);
      const json = JSON.parse(JSON.stringify(reportToJson(report))) as { cases: CaseMetrics[] };
      expect(json.cases[0]).toMatchObject({
        assd: { liver: null, tumour: null },
        mssd: { liver: null, tumour: null },
        surfaceNullReason: { liver: 'empty prediction', tumour: 'empty prediction' },
      });
      const [head, first] = reportToCsv(report).split('\n') as [string, string];
      const cell = (name: string) => first.split(',')[head.split(',').indexOf(name)];
      expect([cell('assd_liver_mm'), cell('mssd_liver_mm')]).toEqual(['', '']);
      expect(cell('surface_liver_na_reason')).toBe('empty prediction');
      // The rule still decides what the mean counts it as, and the table says which.
      expect(table).toContain(
        emptyRule === 'lits'
          ? 'surface distances undefined (a mask is empty) in liver 1, tumour 1 case(s); the means count them as 0 mm, as the LiTS evaluation does'
          : 'surface distances undefined (a mask is empty) in liver 1, tumour 1 case(s); the means',
      );
    }
  });

  it('a shape mismatch is an error naming both files', async () => {
    const small = join(dir, 'small.nii.gz');
    await write(small, new Uint8Array(12 * 10 * 5), AFFINE, [12, 10, 5]);
    const truth = join(dir, 'truth', 'segmentation-0.nii.gz');
    const error = await evaluateCase(small, truth).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EvaluationError);
    expect((error as Error).message).toBe(
      `prediction ${small} has shape 12×10×5 but ground truth ${truth} has 12×10×6`,
    );
  });

  it('an affine mismatch is an error naming both files and the difference', async () => {
    const moved = join(dir, 'moved.nii.gz');
    const affine = AFFINE.map((r) => [...r]) as Matrix4;
    affine[2]![3] = -297.5;
    await write(moved, truthLabels, affine);
    const truth = join(dir, 'truth', 'segmentation-0.nii.gz');
    await expect(evaluateCase(moved, truth)).rejects.toThrow(
      new RegExp(
        `prediction ${moved} and ground truth ${truth} lie on different grids: .*differ by up to 2\\.5 mm`,
      ),
    );
    // Within the tolerance it passes.
    await expect(evaluateCase(moved, truth, { geometryTolerance: 3 })).resolves.toMatchObject({
      diceLiver: 1,
    });
  });

  it('rejects a mask holding a value that is not a LiTS label, naming the file, the values and a voxel', async () => {
    const bad = truthLabels.slice();
    bad[3 + 12 * (4 + 10 * 2)] = 3;
    const file = join(dir, 'bad.nii.gz');
    await write(file, bad);
    const truth = join(dir, 'truth', 'segmentation-0.nii.gz');
    await expect(evaluateCase(truth, file)).rejects.toThrow(
      `${file} (ground truth): labels must be 0, 1 or 2, or be named by a label map (e.g. --label-map 5:1,*:0 or --labels liver=5); found 3 (1 voxel); first at voxel (3, 4, 2)`,
    );
    await expect(evaluateCase(file, truth)).rejects.toThrow(
      `${file} (prediction): a prediction must hold 0 background, 1 liver, 2 tumour, or be named by --pred-label-map (e.g. 5:1,*:0); found 3 (1 voxel); first at voxel (3, 4, 2)`,
    );
  });

  it('maps a multi-organ ground truth (liver 5, tumour 6, other organs 3 and 7) to the same scores as 0/1/2', async () => {
    const organs = Int16Array.from(truthLabels, (v, i) =>
      v === 1 ? 5 : v === 2 ? 6 : i % 7 === 0 ? 3 : i % 11 === 0 ? 7 : 0,
    );
    const file = join(dir, 'organs.nii.gz');
    await write(file, organs);
    const pred = join(dir, 'shifted-pred.nii.gz');
    await write(
      pred,
      Uint8Array.from(truthLabels, (_, i) => (i > 0 ? truthLabels[i - 1]! : 0)),
    );
    const plain = await evaluateCase(pred, join(dir, 'truth', 'segmentation-0.nii.gz'), { surface: true });
    const mapped = await evaluateCase(pred, file, {
      surface: true,
      labelMap: parseLabelMap('liver=5,tumour=6', '--labels'),
    });
    expect(mapped.counts).toEqual(plain.counts);
    expect(mapped.diceLiver).toBe(plain.diceLiver);
    expect(mapped.assd).toEqual(plain.assd);
    // liver=5 alone makes every other value background, the tumour's 6 included.
    const liverOnly = await evaluateCase(pred, file, { labelMap: parseLabelMap('liver=5', '--labels') });
    expect(liverOnly.counts.liver.truth).toBe(plain.counts.liver.truth - plain.counts.tumour.truth);
    // Without a map every foreign value is named, most frequent first.
    await expect(evaluateCase(pred, file)).rejects.toThrow(
      `${file} (ground truth): labels must be 0, 1 or 2, or be named by a label map (e.g. --label-map 5:1,*:0 or --labels liver=5); found 5 (174 voxels), 3 (75 voxels), 7 (42 voxels), 6 (18 voxels); first at voxel (0, 0, 0)`,
    );
    // A prediction from another tool gets its own map.
    const foreignPred = join(dir, 'organs-pred.nii.gz');
    await write(foreignPred, organs);
    const both = await evaluateCase(foreignPred, file, {
      labelMap: parseLabelMap('5:1,6:2,*:0'),
      predLabelMap: parseLabelMap('liver=5,tumour=6'),
    });
    expect(both.diceLiver).toBe(1);
    expect(both.diceTumour).toBe(1);
  });

  it('names the ground-truth cases that have no prediction, and lists predictions without truth', async () => {
    const partial = join(dir, 'partial');
    await mkdir(partial);
    await copyFile(join(dir, 'pred', 'segmentation-0.nii.gz'), join(partial, 'segmentation-0.nii.gz'));
    await copyFile(join(dir, 'pred', 'segmentation-0.nii.gz'), join(partial, 'segmentation-9.nii'));
    await expect(evaluatePaths({ pred: partial, truth: join(dir, 'truth') })).rejects.toThrow(
      /no prediction for case 1 \(segmentation-1\.nii\.gz\), case 2 \(segmentation-2\.nii\.gz\)/,
    );
    await rm(join(partial, 'segmentation-9.nii'));
    await writeFile(join(extraNote(dir)), 'not a mask: ignored');
    const onlyOne = await evaluatePaths({
      pred: join(dir, 'pred'),
      truth: join(partial, 'segmentation-0.nii.gz'),
    }).catch((e: unknown) => e);
    expect((onlyOne as Error).message).toMatch(/is a folder but --truth .* is a file/);
    const extra = join(dir, 'extra');
    await mkdir(extra);
    for (const id of [0, 1, 2, 7])
      await copyFile(join(dir, 'pred', 'segmentation-0.nii.gz'), join(extra, `segmentation-${id}.nii.gz`));
    const report = await evaluatePaths({ pred: extra, truth: join(dir, 'truth') });
    expect(report.unmatchedPredictions).toEqual([join(extra, 'segmentation-7.nii.gz')]);
    expect(report.cases).toHaveLength(3);
    expect(await readFile(extraNote(dir), 'utf8')).toContain('ignored');
  });
});
