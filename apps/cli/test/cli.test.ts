import { execFileSync, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtemp, readFile, rm, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PNG } from 'pngjs';
import { generatePhantomDataset, readNifti } from '@lits-ddp/lits-data';
import { serviceUrl } from '@lits-ddp/local-services/vitest';
import { nativeEngineStatus } from '@lits-ddp/native-engine';

const lits = fileURLToPath(new URL('../dist/main.js', import.meta.url));

interface LitsRun {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs `lits`; `onStdout` sees the output so far and the child (to signal it). */
function runLits(
  args: string[],
  cwd: string,
  env: NodeJS.ProcessEnv = {},
  onStdout?: (stdout: string, child: ChildProcessWithoutNullStreams) => void,
): Promise<LitsRun> {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [lits, ...args], { cwd, env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
      onStdout?.(stdout, child);
    });
    child.stderr.on('data', (d) => (stderr += d));
    child.once('exit', (code) => resolve({ code, stdout, stderr, ms: Date.now() - started }));
  });
}

/** Process ids of the children of `pid` (the local launcher's worker processes). */
function childPids(pid: number): number[] {
  try {
    return execFileSync('ps', ['-o', 'pid=', '--ppid', String(pid)])
      .toString()
      .split('\n')
      .map((l) => Number(l.trim()))
      .filter((n) => n > 0);
  } catch {
    return []; // ps exits 1 when there are none
  }
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const redisUrl = serviceUrl('redis');

describe.skipIf(!redisUrl)('lits command', () => {
  let work: string;
  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'lits-cli-'));
  });
  afterAll(async () => {
    await rm(work, { recursive: true, force: true });
  });

  it('names the spec field of every validation error and exits 2', async () => {
    const r = await runLits(['train', '--lr', '-1', '--determinism', 'sometimes', '--workers', '3'], work);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/spec \/lr: must be > 0/);
    expect(r.stderr).toMatch(/spec \/determinism: must be one of "random", "seed", "deterministic"/);
    const unknown = await runLits(['train', '--learning-rate', '0.1'], work);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/unknown flag --learning-rate/);
  });

  it('names the file and the reason when the data set is not valid', async () => {
    const dataset = join(work, 'broken');
    await generatePhantomDataset({ outDir: dataset, cases: 3, size: [32, 32, 16], seed: 1 });
    await unlink(join(dataset, 'segmentation-1.nii.gz'));
    const r = await runLits(
      [
        'train',
        '--dataset-path',
        dataset,
        '--max_epochs',
        '1',
        '--test-epochs',
        '1',
        '--workers',
        '1',
        '--engine',
        'cpu',
        '--home',
        join(work, 'home'),
      ],
      work,
      { REDIS_URL: redisUrl as string, MLFLOW_TRACKING_URI: '' },
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/volume-1\.nii\.gz: .*(mask|segmentation)/i);
  });

  it('Ctrl-C on lits train: the local run folder ends KILLED, tagged with the git commit, and no worker is left', async () => {
    const dataset = join(work, 'phantoms');
    await generatePhantomDataset({ outDir: dataset, cases: 8, size: [32, 32, 16], seed: 7 });
    const commit = 'c0ffee'.padEnd(40, '0');
    let workerPids: number[] = [];
    const r = await runLits(
      [
        'train',
        ...['--dataset-path', dataset, '--engine', 'cpu', '--workers', '2', '--max_epochs', '50'],
        ...['--test-epochs', '1', '--global-batch-size', '4', '--micro-batch-size', '1', '--unet-width', '2'],
        ...['--cube-size', '16', '--preprocess-slices', '32', '--preprocess-downscale', '2'],
        ...['--json', '--home', join(work, 'sigint-home')],
      ],
      work,
      { REDIS_URL: redisUrl as string, MLFLOW_TRACKING_URI: '', LITS_GIT_COMMIT: commit },
      (stdout, child) => {
        // Interrupt once the workers are training (the first progress line).
        if (workerPids.length > 0 || !stdout.includes('"type":"progress"')) return;
        workerPids = childPids(child.pid as number);
        child.kill('SIGINT');
      },
    );
    expect(workerPids.length, r.stderr.slice(-2000)).toBe(2);
    expect(r.code, r.stderr.slice(-2000)).toBe(130);
    const last = JSON.parse(r.stdout.trim().split('\n').at(-1) as string) as {
      status: string;
      runDir: string;
      tracking: { kind: string };
    };
    expect(last.status).toBe('cancelled');
    expect(last.tracking.kind).toBe('local');
    const meta = JSON.parse(await readFile(join(last.runDir, 'meta.json'), 'utf8')) as { status: string };
    expect(meta.status).toBe('KILLED');
    const tags = JSON.parse(await readFile(join(last.runDir, 'tags.json'), 'utf8')) as Record<string, string>;
    expect(tags).toMatchObject({ git_commit: commit, determinism: 'deterministic', world_size: '2' });
    expect(workerPids.filter(isRunning)).toEqual([]);
  });

  it('lits demo without REDIS_URL and without redis-server on PATH names the install command', async () => {
    const r = await runLits(['demo', '--json'], await mkdtemp(join(work, 'demo-no-redis-')), {
      REDIS_URL: '',
      MLFLOW_TRACKING_URI: '',
      PATH: '',
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/no REDIS_URL and no redis-server to embed/);
    expect(r.stderr).toMatch(/apt-get install -y redis-server/);
    expect(r.stderr).not.toMatch(/\n\s+at /); // one clear line, no stack trace
  });

  it(
    'lits demo --json runs from a clean folder, learns the held-out tumours on the native engine and draws them',
    async () => {
      // On the native engine the demo runs as shipped; without it (a clone where it cannot be built) the pure-JS
      // engine would take hours, so 2 epochs check everything but what the model learnt.
      const native = nativeEngineStatus().ready;
      const r = await runLits(
        ['demo', '--json', ...(native ? [] : ['--epochs', '2'])],
        await mkdtemp(join(work, 'demo-')),
        { REDIS_URL: '', MLFLOW_TRACKING_URI: '' },
      );
      expect(r.code, r.stderr.slice(-2000)).toBe(0);
      const lines = r.stdout.trim().split('\n');
      const last = JSON.parse(lines.at(-1) as string) as {
        status: string;
        testMetrics: Record<string, number>;
        engine: { name: string; threads: unknown } | null;
        engineFallback?: string;
        heldOut?: { caseId: number; tumourVoxels: number; png: string; mask: string };
      };
      expect(last.status).toBe('finished');
      // `auto` trains on the native engine where it is built, and says why when it is not.
      if (native) {
        expect(last.engine).toEqual({ name: 'node', threads: { intraOp: 1, interOp: 1 } });
        expect(last.engineFallback).toBeUndefined();
        // A fixed seed on a fixed engine and thread count: the same bits every run (0.548 tumour, 0.900 liver
        // on 2026-12-06), so these floors have a wide margin and cannot flake.
        expect(last.testMetrics.test_iou_2).toBeGreaterThanOrEqual(0.3);
        expect(last.testMetrics.test_iou_1).toBeGreaterThanOrEqual(0.8);
      } else {
        expect(last.engine?.name).toBe('cpu');
        expect(last.engineFallback).toMatch(/pure-JS cpu engine/);
      }
      const names = ['train', 'val', 'test'].flatMap((p) =>
        ['avg_loss', 'avg_acc', 'mean_iou', 'iou_0', 'iou_1', 'iou_2'].map((m) => `${p}_${m}`),
      );
      expect(Object.keys(last.testMetrics).sort()).toEqual(names.sort());
      // Every line before it is an NDJSON progress record.
      for (const line of lines.slice(0, -1)) expect(() => JSON.parse(line)).not.toThrow();
      // The overlay of the held-out case with the most tumour: a held-out LiTS test id, truth above prediction.
      const heldOut = last.heldOut;
      expect(heldOut).toBeDefined();
      expect([17, 27, 38, 45, 51, 61, 62, 64]).toContain(heldOut?.caseId);
      expect(heldOut?.tumourVoxels).toBeGreaterThan(0);
      const png = PNG.sync.read(await readFile(heldOut?.png as string));
      expect(png.height).toBe(2 * 128 + 4);
      expect((await readNifti(heldOut?.mask as string)).shape).toEqual([128, 128, 128]);
      process.stderr.write(
        `lits demo --json took ${(r.ms / 1000).toFixed(0)} s on ${last.engine?.name}; test IoU liver ` +
          `${last.testMetrics.test_iou_1}, tumour ${last.testMetrics.test_iou_2}; overlay ${heldOut?.png}\n`,
      );
    },
    // Minutes on an idle 2-core machine; a loaded CI runner can take several times as long.
    1_800_000,
  );
});
