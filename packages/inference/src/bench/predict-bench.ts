/**
 * `npm run bench`: time and peak memory (RSS) of `predictVolume` on one generated 512×512×200 int16 phantom with the
 * seed-size preprocessing (z forced to 512, 2× downscale → a 256³ grid, 128³ windows, overlap 0.5 → 27 windows) on
 * the cpu engine. Each stage runs in its own child process so the peaks do not mix: setup (phantom + a random-init
 * checkpoint), a baseline that only reads the volume, then the prediction. Progress on stderr; the last stdout line
 * is one JSON object.
 *
 * LITS_BENCH_SIZE (512x512x200), LITS_BENCH_WIDTH (2; the seed's 32 would take hours per volume on this engine),
 * LITS_BENCH_OVERLAP (0.5), LITS_BENCH_WINDOW (128), LITS_BENCH_SLICES (512), LITS_BENCH_DOWNSCALE (2),
 * LITS_BENCH_OVERLAY (1 = also write the overlay PNG).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generatePhantomDataset, readNifti } from '@lits-ddp/lits-data';
import { loadEngine, saveCheckpoint, UNet3D, unetFlops } from '@lits-ddp/unet';
import { predictVolume } from '../predict-volume.js';
import { loadPredictor } from '../model-source.js';

const env = (name: string, fallback: string) => process.env[name] ?? fallback;
const SIZE = env('LITS_BENCH_SIZE', '512x512x200');
const WIDTH = Number(env('LITS_BENCH_WIDTH', '2'));
const OVERLAP = Number(env('LITS_BENCH_OVERLAP', '0.5'));
const WINDOW = Number(env('LITS_BENCH_WINDOW', '128'));
const SLICES = Number(env('LITS_BENCH_SLICES', '512'));
const DOWNSCALE = Number(env('LITS_BENCH_DOWNSCALE', '2'));
const OVERLAY = env('LITS_BENCH_OVERLAY', '0') === '1';

const log = (text: string) => process.stderr.write(`bench: ${text}\n`);
const round = (v: number, digits = 1) => Number(v.toFixed(digits));
const peakRssMb = () => round(process.resourceUsage().maxRSS / 1024);

function parseSize(text: string): [number, number, number] {
  const parts = text.split('x').map(Number);
  if (parts.length !== 3 || parts.some((n) => !Number.isInteger(n) || n < 1))
    throw new RangeError(`LITS_BENCH_SIZE must look like 512x512x200, got ${text}`);
  return parts as [number, number, number];
}

/** Child: the phantom and a random-init checkpoint in a run-folder layout (weights do not change the cost). */
async function setup(dir: string): Promise<void> {
  await generatePhantomDataset({ outDir: join(dir, 'data'), cases: 1, size: parseSize(SIZE), seed: 1 });
  const { tf } = await loadEngine({ engine: 'cpu' });
  const model = UNet3D.create(tf, { seed: 0, architecture: { width: WIDTH } });
  const runDir = join(dir, 'run');
  await saveCheckpoint(join(runDir, 'checkpoints', 'best'), { model, epoch: 0, step: 0 });
  writeFileSync(
    join(runDir, 'spec.json'),
    JSON.stringify({
      preprocessing: 'seed',
      'preprocess-slices': SLICES,
      'preprocess-downscale': DOWNSCALE,
      'cube-size': WINDOW,
    }),
  );
}

/** Child: reading the volume alone (what any tool holding the scan pays). */
async function readOnly(dir: string): Promise<void> {
  const start = performance.now();
  const volume = await readNifti(join(dir, 'data', 'volume-0.nii.gz'), { native: true });
  process.stdout.write(
    `${JSON.stringify({ readMs: round(performance.now() - start), voxels: volume.data.length, peakRssMb: peakRssMb() })}\n`,
  );
}

/** Child: load the model and predict the volume. */
async function predict(dir: string): Promise<void> {
  const t0 = performance.now();
  const predictor = await loadPredictor({ model: join(dir, 'run'), engine: 'cpu' });
  const loadMs = performance.now() - t0;
  let lastLog = 0;
  const result = await predictVolume({
    model: predictor,
    input: join(dir, 'data', 'volume-0.nii.gz'),
    output: join(dir, 'out', 'segmentation-0.nii.gz'),
    ...(OVERLAY ? { overlay: join(dir, 'out', 'segmentation-0.png') } : {}),
    overlap: OVERLAP,
    onProgress: (p) => {
      const now = performance.now();
      if (p.phase !== 'windows' || now - lastLog > 30_000 || p.done === p.total) {
        lastLog = now;
        log(
          `${p.phase}${p.done === undefined ? '' : ` ${p.done}/${p.total}`} (${((now - t0) / 1000).toFixed(0)} s, peak RSS ${peakRssMb()} MB)`,
        );
      }
    },
  });
  process.stdout.write(
    `${JSON.stringify({
      loadMs: round(loadMs),
      totalMs: round(performance.now() - t0),
      result,
      engine: predictor.engine,
      peakRssMb: peakRssMb(),
    })}\n`,
  );
}

function child(mode: string, dir: string): string {
  const out = execFileSync(process.execPath, [fileURLToPath(import.meta.url), mode, dir], {
    stdio: ['ignore', 'pipe', 'inherit'],
    encoding: 'utf8',
    maxBuffer: 16 << 20,
  });
  return out.trim().split('\n').at(-1) ?? '';
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'lits-inference-bench-'));
  try {
    mkdirSync(join(dir, 'out'));
    log(`setup: ${SIZE} phantom and a width-${WIDTH} model (child process)`);
    child('--setup', dir);
    log('baseline: reading the volume alone (child process)');
    const baseline = JSON.parse(child('--read', dir)) as {
      readMs: number;
      voxels: number;
      peakRssMb: number;
    };
    log(`baseline: ${baseline.readMs} ms, peak RSS ${baseline.peakRssMb} MB`);
    log(
      `predicting: window ${WINDOW}, overlap ${OVERLAP}, seed preprocessing (${SLICES} slices, ${DOWNSCALE}× downscale)`,
    );
    const run = JSON.parse(child('--predict', dir)) as {
      loadMs: number;
      totalMs: number;
      peakRssMb: number;
      engine: string;
      result: {
        windows: number;
        liverCrop: { windows: number } | null;
        grid: number[];
        window: number[];
        timingsMs: Record<string, number>;
        voxels: unknown;
      };
    };
    const flopsPerWindow = (w: number) =>
      unetFlops({ width: w, inChannels: 1, classes: 3, dropout: 0 }, run.result.window[0]!).forwardPerSample;
    const windowsMs = run.result.timingsMs.windows!;
    // The 'windows' stage also runs the liver-crop predictions (one cube each, more where the region grew).
    const forwards = run.result.windows + (run.result.liverCrop?.windows ?? 0);
    const gflops = (flopsPerWindow(WIDTH) * forwards) / 1e9;
    const report = {
      size: SIZE,
      engine: run.engine,
      width: WIDTH,
      preprocessing: { preset: 'seed', targetSlices: SLICES, downscale: DOWNSCALE },
      grid: run.result.grid,
      window: run.result.window,
      overlap: OVERLAP,
      windows: run.result.windows,
      liverCropWindows: run.result.liverCrop?.windows ?? 0,
      predictMs: run.totalMs - run.loadMs,
      modelLoadMs: run.loadMs,
      stageMs: Object.fromEntries(Object.entries(run.result.timingsMs).map(([k, v]) => [k, round(v)])),
      msPerWindow: round(windowsMs / forwards),
      forwardGflop: round(gflops, 2),
      gflopPerS: round(gflops / (windowsMs / 1000), 3),
      // The seed width at the same GFLOP/s (an estimate: wider layers usually run somewhat faster per FLOP).
      seedWidthEstimateMin: round(
        (((flopsPerWindow(32) * forwards) / (gflops * 1e9)) * windowsMs) / 60_000,
        0,
      ),
      peakRssMb: run.peakRssMb,
      readOnlyPeakRssMb: baseline.peakRssMb,
      peakOverReadOnly: round(run.peakRssMb / baseline.peakRssMb, 2),
      sourceVoxels: baseline.voxels,
    };
    process.stdout.write(`${JSON.stringify(report)}\n`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const [mode, dir] = process.argv.slice(2);
const task =
  mode === '--setup'
    ? setup(dir!)
    : mode === '--read'
      ? readOnly(dir!)
      : mode === '--predict'
        ? predict(dir!)
        : main();
task.catch((error: unknown) => {
  process.stderr.write(`bench: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
});
