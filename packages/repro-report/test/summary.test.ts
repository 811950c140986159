import { describe, expect, it } from 'vitest';
import { formatSummaryMarkdown, planStudy, runsToCsv, summariseRuns, summaryJson } from '../src/index.js';
import { record, studyRecords } from './records.js';

describe('summariseRuns', () => {
  it('IoU statistics of the repeated runs per mode and class, distinct hashes per mode and world size', () => {
    const s = summariseRuns(studyRecords());
    expect(s.classNames).toEqual(['background', 'liver', 'tumour']);
    expect(s.metricNames).toEqual(['iou_0', 'iou_1', 'iou_2', 'mean_iou']);
    expect(s.modes.map((m) => [m.mode, m.runs, m.finished, m.distinctHashes])).toEqual([
      ['random', 3, 3, 3],
      ['seed', 3, 3, 1],
      ['deterministic', 3, 3, 1],
    ]);
    const random = s.modes[0]?.iou;
    expect(random?.iou_2?.mean).toBeCloseTo(0.4, 12);
    expect(random?.iou_2?.variance).toBeCloseTo(0.01, 12);
    expect(random?.iou_1?.n).toBe(3);
    // Deterministic statistics cover its 3 repeated runs, not the world-size and crash runs.
    expect(s.modes[2]?.iou.iou_2).toMatchObject({ n: 3, mean: 0.496114, sd: 0, variance: 0 });
    expect(s.distinctHashes).toEqual({ random: 3, seed: 1, deterministic: 1 });
    expect(s.deterministicByWorldSize).toEqual({ '1': 1, '2': 1, '4': 1 });
    expect(s.crash).toEqual({
      runs: 1,
      killed: 1,
      restarts: [1],
      resumed: 1,
      resumedFrom: [19],
      matchesUninterrupted: true,
    });
    // Elastic runs are compared with every uninterrupted deterministic run, not counted by world size.
    expect(s.elastic).toEqual({
      runs: [
        {
          variant: 'shrink',
          status: 'finished',
          worldSizes: [2, 1],
          recoveryS: 4.25,
          matchesUninterrupted: true,
        },
        {
          variant: 'grow',
          status: 'finished',
          worldSizes: [1, 2],
          recoveryS: null,
          matchesUninterrupted: true,
        },
      ],
      matchesUninterrupted: true,
    });
    expect(s.testSets).toBe(1);
    expect(s.failed).toEqual([]);
  });

  it('an elastic run with other weights makes the elastic verdict false; one not finished is not compared', () => {
    const runs = studyRecords();
    const grow = runs.findIndex((r) => r.variant === 'grow');
    runs[grow] = { ...runs[grow]!, weightHash: 'other' };
    let s = summariseRuns(runs);
    expect(s.elastic?.runs.map((r) => r.matchesUninterrupted)).toEqual([true, false]);
    expect(s.elastic?.matchesUninterrupted).toBe(false);
    expect(s.deterministicByWorldSize).toEqual({ '1': 1, '2': 1, '4': 1 });
    expect(s.distinctHashes.deterministic).toBe(2);
    expect(formatSummaryMarkdown(s)).toContain('| grow | 1 → 2 | – | DIFFER from the uninterrupted runs |');
    runs[grow] = { ...runs[grow]!, status: 'failed', weightHash: null, worldSizes: [1] };
    s = summariseRuns(runs);
    expect(s.elastic?.runs[1]).toMatchObject({ matchesUninterrupted: null, worldSizes: [1] });
    expect(s.elastic?.matchesUninterrupted).toBeNull();
    expect(formatSummaryMarkdown(s)).toContain('| grow | 1 | – | failed |');
    // Without elastic runs the summary says so.
    expect(
      summariseRuns(runs.filter((r) => r.variant !== 'shrink' && r.variant !== 'grow')).elastic,
    ).toBeNull();
  });

  it('a crash run with other weights, a failed run, an absent class and a changed test split are all reported', () => {
    const runs = studyRecords();
    runs[11] = { ...runs[11]!, weightHash: 'other', resumedFrom: null };
    runs[0] = { ...runs[0]!, testCases: [1, 2, 3] };
    runs.push(
      record('seed', 4, [0.9, null, null], null, { status: 'failed', error: 'rank 1: out of memory' }),
      record('random', 4, [0.99, 0.5, null], 'r4'),
    );
    const s = summariseRuns(runs);
    expect(s.crash).toMatchObject({ matchesUninterrupted: false, resumed: 0, resumedFrom: [null] });
    expect(s.distinctHashes.deterministic).toBe(2);
    expect(s.deterministicByWorldSize['2']).toBe(2);
    expect(s.failed).toEqual([
      {
        mode: 'seed',
        variant: 'repeat',
        index: 4,
        workers: 2,
        status: 'failed',
        error: 'rank 1: out of memory',
      },
    ]);
    expect(s.modes[1]).toMatchObject({ runs: 4, finished: 3 });
    expect(s.modes[0]?.iou.iou_2?.n).toBe(3); // the null tumour IoU of random #4 is left out
    expect(s.modes[0]?.iou.iou_1?.n).toBe(4);
    expect(s.testSets).toBe(2);
    const md = formatSummaryMarkdown(s);
    expect(md).toMatch(/restarted from scratch, so the resume was NOT exercised; final weights DIFFER/);
    expect(md).toMatch(/2 different test splits/);
    expect(md).toMatch(/Not finished: seed repeat #4 \(N=2\): failed — rank 1: out of memory/);
  });

  it('the --json line: distinct hashes by mode and by world size, IoU mean and sd by mode and class', () => {
    const line = summaryJson(summariseRuns(studyRecords()));
    expect(line.distinctHashes).toEqual({
      random: 3,
      seed: 1,
      deterministic: 1,
      deterministicByWorldSize: { '1': 1, '2': 1, '4': 1 },
    });
    expect(Object.keys(line.iou)).toEqual(['random', 'seed', 'deterministic']);
    expect(line.iou.deterministic?.iou_1).toEqual({ mean: 0.819755, sd: 0, n: 3 });
    expect(line.iou.random?.iou_0?.sd).toBeCloseTo(0.005, 12);
    expect(line.elastic?.matchesUninterrupted).toBe(true);
    expect(line.failed).toBe(0);
  });
});

describe('tables', () => {
  it('CSV: one row per run at full precision, quoted where needed', () => {
    const runs = studyRecords();
    runs[0] = { ...runs[0]!, iou: [0.1 + 0.2, 0.8, 0.4], error: 'said "no", then stopped' };
    const lines = runsToCsv(runs).trimEnd().split('\n');
    expect(lines).toHaveLength(runs.length + 1);
    expect(lines[0]).toBe(
      'mode,variant,index,workers,status,run_id,data_seed,model_seed,test_iou_0,test_iou_1,test_iou_2,test_mean_iou,weight_hash,ranks_agree,restarts,killed_rank,killed_epoch,resumed_from_epoch,world_sizes,recovery_s,test_cases,wall_s,error',
    );
    expect(lines[1]).toContain(',0.30000000000000004,0.8,0.4,');
    expect(lines[1]?.endsWith(',"said ""no"", then stopped"')).toBe(true);
    expect(lines.at(-3)).toMatch(/^deterministic,crash,1,2,finished,.*,d,true,1,1,20,19,,,17 27 38,12\.5,$/);
    expect(lines.at(-2)).toMatch(
      /^deterministic,shrink,1,2,finished,.*,d,true,1,1,22,19,2 1,4\.25,17 27 38,12\.5,$/,
    );
    expect(lines.at(-1)).toMatch(/^deterministic,grow,1,1,finished,.*,d,true,0,,,,1 2,,17 27 38,12\.5,$/);
  });

  it('markdown: mean ± sd, variance and range per mode and class, then hash counts', () => {
    const md = formatSummaryMarkdown(summariseRuns(studyRecords()));
    expect(md).toContain('| Random | tumour | 3 | 0.4000 ± 0.1000 | 1.0e-2 | 0.3000 – 0.5000 |');
    expect(md).toContain('| Deterministic | liver | 3 | 0.8198 ± 0.0000 | 0 | 0.8198 – 0.8198 |');
    expect(md).toContain('| Seed | 3 (3) | 2 | 1 |');
    expect(md).toContain('N=1: 1, N=2: 1, N=4: 1');
    expect(md).toContain(
      'restarts 1, resumed from the checkpoint of epoch 19; same final weights as the uninterrupted runs',
    );
    expect(md).toContain('| shrink | 2 → 1 | 4.3 s | same as the uninterrupted runs |');
    expect(md).toContain('| grow | 1 → 2 | – | same as the uninterrupted runs |');
  });
});

describe('planStudy', () => {
  it('interleaves the modes, then the other world sizes (base size skipped), then the crash run', () => {
    const plan = planStudy({ runs: 2, workers: 2, worldSizes: [4, 1, 2, 4], crash: true });
    expect(plan.map((p) => `${p.mode}:${p.variant}:${p.index}:${p.workers}`)).toEqual([
      'random:repeat:1:2',
      'seed:repeat:1:2',
      'deterministic:repeat:1:2',
      'random:repeat:2:2',
      'seed:repeat:2:2',
      'deterministic:repeat:2:2',
      'deterministic:world-size:1:1',
      'deterministic:world-size:1:4',
      'deterministic:crash:1:2',
    ]);
    expect(planStudy({ runs: 1, workers: 1 })).toHaveLength(3);
  });

  it('ends with the elastic runs: shrink N → N − 1 and grow ⌊N/2⌋ → N, at N = 2 when the study runs at 1', () => {
    const elastic = (workers: number): string[] =>
      planStudy({ runs: 1, workers, crash: true, elastic: true })
        .slice(4)
        .map((p) => `${p.variant}:${p.workers}:${p.minWorkers}-${p.maxWorkers}`);
    expect(elastic(1)).toEqual(['shrink:2:1-2', 'grow:1:1-2']);
    expect(elastic(2)).toEqual(['shrink:2:1-2', 'grow:1:1-2']);
    expect(elastic(5)).toEqual(['shrink:5:4-5', 'grow:2:2-5']);
    expect(planStudy({ runs: 1, workers: 4, elastic: true }).at(-2)).toMatchObject({
      mode: 'deterministic',
      variant: 'shrink',
      workers: 4,
    });
  });

  it('refuses counts that are not integers ≥ 1', () => {
    expect(() => planStudy({ runs: 0, workers: 2 })).toThrow(/runs must be an integer ≥ 1, got 0/);
    expect(() => planStudy({ runs: 2, workers: 1.5 })).toThrow(/workers/);
    expect(() => planStudy({ runs: 2, workers: 2, worldSizes: [0] })).toThrow(/world sizes/);
  });
});
