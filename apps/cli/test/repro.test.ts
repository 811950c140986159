import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PNG } from 'pngjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serviceUrl } from '@lits-ddp/local-services/vitest';
import { readRunRecords, type ReproJsonLine } from '@lits-ddp/repro-report';
import { testCasesOf } from '../src/commands/repro-record.js';
import { tinySpecInput } from './phantom-runs.js';

const lits = fileURLToPath(new URL('../dist/main.js', import.meta.url));

function runLits(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [lits, 'repro', ...args], { env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.once('exit', (code) => resolve({ code, stdout, stderr, ms: Date.now() - started }));
  });
}

type ReproLine = ReproJsonLine & {
  reportDir: string;
  files: Record<'csv' | 'json' | 'markdown' | 'png' | 'svg', string>;
};
const lastJson = (stdout: string): ReproLine =>
  JSON.parse(stdout.trim().split('\n').at(-1) as string) as ReproLine;

const redisUrl = serviceUrl('redis');

describe('lits repro: bad command lines are refused before any run', () => {
  let home: string;
  beforeAll(async () => {
    home = await mkdtemp(join(tmpdir(), 'lits-repro-usage-'));
  });
  afterAll(async () => {
    await rm(home, { recursive: true, force: true });
  });

  it.each([
    [['--runs', '0'], /--runs must be an integer ≥ 1, got "0"/],
    [['--epochs', 'many'], /--epochs must be an integer ≥ 1, got "many"/],
    [['--world-sizes', '1,x'], /--world-sizes must be an integer ≥ 1, got "x"/],
    // The demo's K = 4 micro-batches per step: at most 4 ranks.
    [['--workers', '5'], /spec \/workers: .*\(random mode, 5 workers\)/],
    [['--world-sizes', '5'], /spec \/workers: .*\(deterministic mode, 5 workers\)/],
    [['--bogus', '1'], /unknown flag --bogus \(not a spec field nor an option of this command\)/],
    [['--config', '/nonexistent/repro-spec.json'], /\/nonexistent\/repro-spec\.json: ENOENT/],
    // The crash run must be killed after a checkpoint, or its restart would not resume from one.
    [
      ['--epochs', '1'],
      /the crash run: with max_epochs 1 and test-epochs 1 the first checkpoint ends the last epoch/,
    ],
    [['--epochs', '4', '--test-epochs', '4'], /with max_epochs 4 and test-epochs 4 .*--no-crash/],
    // One micro-batch per step: the elastic runs at N = 2 cannot be.
    [
      ['--workers', '1', '--global-batch-size', '1', '--world-sizes', 'none'],
      /spec \/max-workers: .*\(the shrink run, 2 workers; --no-elastic leaves it out\)/,
    ],
    // The shrink run is killed after a checkpoint too (and the grow run grows at one).
    [
      ['--epochs', '4', '--test-epochs', '4', '--no-crash'],
      /the elastic runs: with max_epochs 4 and test-epochs 4 .*--no-elastic/,
    ],
  ])('%j exits 2 naming the flag or spec field', async (args, message) => {
    const r = await runLits([...args, '--home', home]);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(message);
  });

  it('--from names the file, the run and the field of a bad record', async () => {
    const file = join(home, 'runs.json');
    await writeFile(file, JSON.stringify({ runs: [{ mode: 'lucky' }] }));
    const r = await runLits(['--from', file]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${file}: runs[0].mode: must be one of "random", "seed", "deterministic"`);
  });

  it("a run folder's corrupt split.json is an error naming the file, not a run without test cases", async () => {
    const runDir = join(home, 'runs', 'run-corrupt-split');
    const split = join(runDir, 'split.json');
    await mkdir(runDir, { recursive: true });
    // No split.json: the run ended before its data were prepared.
    expect(await testCasesOf(runDir)).toEqual([]);
    const written = {
      split: 'lits',
      trainCases: [{ caseId: 3, cacheFile: 'c3.cube' }],
      testCases: [
        { caseId: 17, cacheFile: 'c17.cube' },
        { caseId: 27, cacheFile: 'c27.cube' },
      ],
      cacheDir: join(home, 'cache'),
    };
    await writeFile(split, JSON.stringify(written));
    expect(await testCasesOf(runDir)).toEqual([17, 27]);
    await writeFile(split, '{"split": "lits", "testCases": [{"caseId": 1');
    await expect(testCasesOf(runDir)).rejects.toThrow(`${split}: not valid JSON`);
    await writeFile(split, JSON.stringify({ ...written, testCases: [{ id: 17 }] }));
    await expect(testCasesOf(runDir)).rejects.toThrow(`${split}: field /testCases/0`);
    await expect(testCasesOf(runDir)).rejects.toMatchObject({ code: 'JSON_INVALID' });
  });
});

describe.skipIf(!redisUrl)('lits repro on the phantom set (real Redis, worker processes)', () => {
  let home: string;
  beforeAll(async () => {
    home = await mkdtemp(join(tmpdir(), 'lits-repro-'));
  });
  afterAll(async () => {
    await rm(home, { recursive: true, force: true });
  });

  it('--config and --workers 1: 2 runs per mode, N=2, a kill -9 resumed from a checkpoint, shrink 2→1 and grow 1→2; report, boxplot, --json line', async () => {
    const out = join(home, 'report');
    // The tiny training as a spec file; repro supplies the phantom set (dataset-path) and the LiTS split.
    const tiny: Record<string, unknown> = {
      ...tinySpecInput('unused', {
        // The phantom set's 128³ cases, 8× block mean: the whole volume as a 16³ cube.
        'preprocess-slices': 128,
        'preprocess-downscale': 8,
        'experiment-name': 'lits-repro-test',
      }),
    };
    delete tiny['dataset-path'];
    const config = join(home, 'repro-spec.json');
    await writeFile(config, JSON.stringify(tiny));
    const r = await runLits(
      [
        ...['--config', config, '--workers', '1', '--runs', '2', '--world-sizes', '2'],
        ...['--home', home, '--out', out, '--json'],
      ],
      { REDIS_URL: redisUrl as string, MLFLOW_TRACKING_URI: '' },
    );
    process.stderr.write(`lits repro (10 runs) took ${(r.ms / 1000).toFixed(0)} s\n`);
    for (const l of r.stderr.split('\n').filter((l) => / (shrink|grow) /.test(l)))
      process.stderr.write(`${l}\n`);
    expect(r.code, r.stderr.slice(-3000)).toBe(0);
    const line = lastJson(r.stdout);
    expect(line.reportDir).toBe(out);
    // The cpu engine's kernels are deterministic: seed mode repeats at a fixed N; random mode draws new seeds.
    expect(line.distinctHashes).toEqual({
      random: 2,
      seed: 1,
      deterministic: 1,
      deterministicByWorldSize: { '1': 1, '2': 1 },
    });
    // Killed in epoch 1 after the checkpoint of epoch 0 (test-epochs 1), and resumed from that checkpoint.
    expect(line.crash).toMatchObject({
      runs: 1,
      killed: 1,
      resumed: 1,
      resumedFrom: [0],
      matchesUninterrupted: true,
    });
    expect(line.crash?.restarts[0]).toBeGreaterThanOrEqual(1);
    // The elastic runs at N = 2 (the study's 1 is too few to shrink): rank 1 killed and not started again, so
    // the run goes on at 1 from its checkpoint; the grow run takes its idle second worker at its first checkpoint.
    expect(
      line.elastic?.runs.map((x) => [x.variant, x.status, x.worldSizes, x.matchesUninterrupted]),
    ).toEqual([
      ['shrink', 'finished', [2, 1], true],
      ['grow', 'finished', [1, 2], true],
    ]);
    expect(line.elastic?.matchesUninterrupted).toBe(true);
    expect(line.elastic?.runs[0]?.recoveryS).toBeGreaterThan(0);
    expect(line.elastic?.runs[1]?.recoveryS).toBeNull();
    expect(line.testSets).toBe(1);
    expect(line.failed).toBe(0);
    expect(Object.keys(line.iou)).toEqual(['random', 'seed', 'deterministic']);
    for (const mode of ['random', 'seed', 'deterministic'] as const) {
      expect(Object.keys(line.iou[mode] ?? {})).toEqual(['iou_0', 'iou_1', 'iou_2', 'mean_iou']);
      expect(line.iou[mode]?.iou_0?.n).toBe(2);
    }
    expect(line.iou.deterministic?.iou_0?.sd).toBe(0);

    const runs = await readRunRecords(line.files.json);
    expect(runs.map((x) => `${x.mode}:${x.variant}:${x.workers}`)).toEqual([
      'random:repeat:1',
      'seed:repeat:1',
      'deterministic:repeat:1',
      'random:repeat:1',
      'seed:repeat:1',
      'deterministic:repeat:1',
      'deterministic:world-size:2',
      'deterministic:crash:1',
      'deterministic:shrink:2',
      'deterministic:grow:1',
    ]);
    const random = runs.filter((x) => x.mode === 'random');
    expect(random[0]?.seeds).not.toEqual(random[1]?.seeds);
    for (const x of runs.filter((x) => x.mode !== 'random')) expect(x.seeds).toEqual({ data: 0, model: 0 });
    // The phantom set is numbered so that the seed's fixed LiTS test ids apply.
    for (const x of runs) expect(x.testCases).toEqual([17, 27, 38, 45, 51, 61, 62, 64]);
    expect(runs.every((x) => x.ranksAgree && x.iou.every((v) => v !== null && v >= 0 && v <= 1))).toBe(true);
    const crash = runs.find((x) => x.variant === 'crash');
    expect(crash?.killed).toEqual({ rank: 0, epoch: 1 });
    expect(crash?.resumedFrom).toEqual({ epoch: 0 });
    const uninterrupted = runs.filter((x) => x.mode === 'deterministic' && x.variant === 'repeat');
    expect(crash?.weightHash).toMatch(/^[0-9a-f]{64}$/);
    for (const x of uninterrupted) expect(x.weightHash).toBe(crash?.weightHash);
    const shrink = runs.find((x) => x.variant === 'shrink');
    expect(shrink).toMatchObject({ killed: { rank: 1, epoch: 1 }, resumedFrom: { epoch: 0 }, restarts: 1 });
    expect(shrink?.weightHash).toBe(crash?.weightHash);
    // Growth at a checkpoint is a regroup, not a failure: no restart counted.
    expect(runs.find((x) => x.variant === 'grow')).toMatchObject({ restarts: 0, worldSizes: [1, 2] });
    expect(runs.find((x) => x.variant === 'grow')?.weightHash).toBe(crash?.weightHash);
    // The spec file's values were used, --workers overrode its world size.
    const { configuration } = JSON.parse(await readFile(line.files.json, 'utf8')) as {
      configuration: Record<string, unknown>;
    };
    expect(configuration).toMatchObject({
      workers: 1,
      epochs: 3,
      'test epochs': 1,
      'unet width': 2,
      'other world sizes': '2',
      'crash run': 'kill -9 rank 0 in epoch 1',
      'elastic runs': 'shrink 2→1 (kill -9 rank 1 in epoch 1, not restarted; elastic-wait-s 2), grow 1→2',
    });

    const csv = (await readFile(line.files.csv, 'utf8')).trimEnd().split('\n');
    expect(csv).toHaveLength(11);
    const md = await readFile(line.files.markdown, 'utf8');
    expect(md).toMatch(/\| Deterministic \| tumour \| 2 \| [0-9.]+ ± 0\.0000 \| 0 \|/);
    expect(md).toContain('N=1: 1, N=2: 1');
    expect(md).toContain(
      'resumed from the checkpoint of epoch 0; same final weights as the uninterrupted runs',
    );
    expect(md).toMatch(/\| shrink \| 2 → 1 \| [0-9.]+ s \| same as the uninterrupted runs \|/);
    expect(md).toContain('| grow | 1 → 2 | – | same as the uninterrupted runs |');
    const png = PNG.sync.read(await readFile(line.files.png));
    expect(png.width).toBeGreaterThan(1000);
    expect(r.stderr).toMatch(
      // The middle step of the 6 per epoch (24 training cases, 4 per step).
      /kill -9 rank 0 \(pid \d+\) after step 2 of epoch 1; the last checkpoint ends epoch 0/,
    );
    expect(r.stderr).toContain('restarted group resumed at epoch 1 (the checkpoint of epoch 0)');

    // Re-rendering from runs.json gives the same numbers.
    const again = await runLits(['--from', line.files.json, '--out', join(home, 'again'), '--json']);
    expect(again.code, again.stderr).toBe(0);
    const second = lastJson(again.stdout);
    expect({ ...second, reportDir: '', files: {} }).toEqual({ ...line, reportDir: '', files: {} });
  });
});
