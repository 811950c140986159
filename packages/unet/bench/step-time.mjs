#!/usr/bin/env node
// `npm run bench -- unet`: one training step (forward, backward, Adam) of the seed model (width 32, batch 1) on
// the pure-JS cpu engine and on native TensorFlow (tfjs-node), with analytic conv FLOPs (unetFlops: 3 × forward).
// Each engine runs in its own child process: native TensorFlow sizes its thread pools once per process, and the
// cpu engine must not share a process with it. Runs, in order:
//   cpu: 32³ (2 timed steps) and 64³ (1 timed step, no warm-up; 10–25 minutes alone)
//   native at 1 intra-op thread (the deterministic default): 32³, 64³ (1 warm-up + 3 timed steps)
//   native at all cores (os.availableParallelism() intra-op threads): 32³, 64³
//   native at both thread counts: the seed's training shape, one 128³ sample (1 warm-up + 1 timed step), each in
//     a fresh process. Its memory is predicted from the 32³ and 64³ peaks (~11 KiB per voxel at width 32, so
//     ~24 GiB at 128³); when that exceeds 70 % of the free memory, the largest cube (a multiple of 16) that fits
//     runs instead and the 128³ time is scaled from it by voxel count (marked `estimated`).
// Environment:
//   LITS_BENCH_QUICK=1        skip the cpu engine at 64³ and the 128³ shape; nativeOverCpu is then only at 32³
//   LITS_BENCH_ALL_CORES=N    the "all cores" intra-op count (default os.availableParallelism())
// Progress goes to stderr; the last stdout line is one JSON object (stepMs per engine and size, nativeOverCpu,
// nativeGflops, the thread counts, seconds per 128³ step, the machine).
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism, cpus, freemem, loadavg, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';
import { benchmarkTrainStep, loadEngine, SEED_ARCHITECTURE, unetFlops } from '../dist/index.js';

const WIDTH = 32;
const BATCH = 1;
const ARCHITECTURE = { ...SEED_ARCHITECTURE, width: WIDTH };

/** Child mode: `--child JSON` runs one engine's configs (smallest first) and prints one JSON line. */
async function child(spec) {
  const threads = spec.engine === 'cpu' ? undefined : { intraOp: spec.intraOp, interOp: 1 };
  const engine = await loadEngine({ engine: spec.engine, deterministic: true, threads });
  const tag = `[${spec.key}]`;
  process.stderr.write(`${tag} ${engine.description}\n`);
  const results = {};
  for (const c of spec.configs) {
    const gflop = unetFlops(ARCHITECTURE, c.size, BATCH).trainStep / 1e9;
    process.stderr.write(
      `${tag} ${c.size}³: ${c.warmup} warm-up + ${c.repeats} timed step(s) of ${gflop.toFixed(1)} GFLOP …\n`,
    );
    const r = benchmarkTrainStep(engine.tf, {
      architecture: { width: WIDTH },
      size: c.size,
      batch: BATCH,
      warmup: c.warmup,
      repeats: c.repeats,
      onStep: (i, ms, timed) =>
        process.stderr.write(`${tag}   step ${i + 1}: ${Math.round(ms)} ms${timed ? '' : ' (warm-up)'}\n`),
    });
    // The process's peak so far; sizes run smallest first, so it is this size's peak.
    const peakRssMiB = Math.round(process.resourceUsage().maxRSS / 1024);
    results[c.size] = { stepMs: r.stepMs, allStepMs: r.allStepMs, gflops: r.gflops, peakRssMiB };
    process.stderr.write(`${tag}   ${Math.round(r.stepMs)} ms/step, ${r.gflops.toFixed(2)} GFLOP/s\n`);
  }
  process.stdout.write(
    `${JSON.stringify({ description: engine.description, threads: engine.threads, results })}\n`,
  );
}

function runChild(spec) {
  return new Promise((resolve) => {
    const proc = spawn(process.execPath, [fileURLToPath(import.meta.url), '--child', JSON.stringify(spec)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    proc.stdout.on('data', (chunk) => (out += chunk));
    proc.on('close', (code, signal) => {
      try {
        resolve(JSON.parse(out.trim().split('\n').at(-1) ?? ''));
      } catch {
        // Not dropped: a child without a JSON last line is reported as this size's error in the results.
        resolve({
          error: `${spec.key}: the child process ended (${signal ?? `exit ${code}`}) without a result`,
        });
      }
    });
  });
}

function cpuModel() {
  try {
    const name = /^model name\s*:\s*(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1];
    if (name) return name;
  } catch {
    // Not Linux: what Node reports.
  }
  return cpus()[0]?.model ?? 'unknown';
}

const round = (v, digits) => Number(v.toFixed(digits));
const TRAINING_SIZE = 128;

/**
 * The cube to time for the seed's 128³ training shape: 128 when its predicted peak memory (a line through the
 * measured 32³ and 64³ peaks, in voxels) fits in 70 % of the free memory, else the largest multiple of 16 that
 * does. Null without both peaks.
 */
function trainingShapeSize(native) {
  const [p32, p64] = [native?.results?.[32]?.peakRssMiB, native?.results?.[64]?.peakRssMiB];
  if (!p32 || !p64) return null;
  const perVoxel = (p64 - p32) / (64 ** 3 - 32 ** 3);
  const predict = (size) => p64 + perVoxel * (size ** 3 - 64 ** 3);
  const budgetMiB = (0.7 * freemem()) / 2 ** 20;
  let size = TRAINING_SIZE;
  while (size > 64 && predict(size) > budgetMiB) size -= 16;
  return {
    size,
    predictedPeakMiB: Math.round(predict(size)),
    predictedTrainingMiB: Math.round(predict(TRAINING_SIZE)),
  };
}

async function main() {
  const quick = process.env.LITS_BENCH_QUICK === '1';
  const allCores = Number(process.env.LITS_BENCH_ALL_CORES || availableParallelism());
  if (!Number.isInteger(allCores) || allCores < 1)
    throw new RangeError(`LITS_BENCH_ALL_CORES=${process.env.LITS_BENCH_ALL_CORES} is not a thread count`);
  const loadBefore = loadavg().map((v) => round(v, 2));
  const started = Date.now();
  const nativeConfigs = [
    { size: 32, warmup: 1, repeats: 3 },
    { size: 64, warmup: 1, repeats: 3 },
  ];
  const runs = [
    {
      key: 'cpu',
      engine: 'cpu',
      configs: [{ size: 32, warmup: 0, repeats: 2 }, ...(quick ? [] : [{ size: 64, warmup: 0, repeats: 1 }])],
    },
    { key: 'node', engine: 'node', intraOp: 1, configs: nativeConfigs },
    { key: 'nodeAllCores', engine: 'node', intraOp: allCores, configs: nativeConfigs },
  ];
  const out = {};
  for (const run of runs) out[run.key] = await runChild(run);

  // The seed's training shape, each thread count in a fresh process (a 128³ step needs tens of GiB).
  let training = null;
  const shape = quick ? null : trainingShapeSize(out.node);
  if (shape) {
    if (shape.size !== TRAINING_SIZE)
      process.stderr.write(
        `${TRAINING_SIZE}³ would need ~${(shape.predictedTrainingMiB / 1024).toFixed(1)} GiB (free: ${(freemem() / 2 ** 30).toFixed(1)} GiB): ` +
          `timing ${shape.size}³ and scaling by voxel count\n`,
      );
    const scale = (TRAINING_SIZE / shape.size) ** 3;
    const secondsPerStep = {};
    const stepMs = {};
    for (const [key, intraOp] of [
      ['node', 1],
      ['nodeAllCores', allCores],
    ]) {
      const r = await runChild({
        key,
        engine: 'node',
        intraOp,
        configs: [{ size: shape.size, warmup: 1, repeats: 1 }],
      });
      const ms = r.results?.[shape.size]?.stepMs;
      stepMs[key] = ms ? Math.round(ms) : (r.error ?? null);
      secondsPerStep[key] = ms ? round((ms * scale) / 1000, 1) : null;
    }
    training = {
      size: TRAINING_SIZE,
      batch: BATCH,
      secondsPerStep,
      estimated: shape.size !== TRAINING_SIZE,
      measuredSize: shape.size,
      measuredStepMs: stepMs,
      predictedPeakMiB: { [TRAINING_SIZE]: shape.predictedTrainingMiB, [shape.size]: shape.predictedPeakMiB },
    };
  }

  const sizes = [32, 64];
  const perSize = (key, pick) =>
    Object.fromEntries(Object.entries(out[key]?.results ?? {}).map(([size, r]) => [size, pick(r)]));
  const overCpu = (key) =>
    Object.fromEntries(
      sizes
        .filter((s) => out.cpu?.results?.[s] && out[key]?.results?.[s])
        .map((s) => [s, round(out.cpu.results[s].stepMs / out[key].results[s].stepMs, 1)]),
    );
  const result = {
    stepMs: Object.fromEntries(runs.map((r) => [r.key, perSize(r.key, (x) => Math.round(x.stepMs))])),
    // cpu stepMs / native stepMs; the native engine at 1 intra-op thread, like the sequential cpu engine.
    nativeOverCpu: overCpu('node'),
    nativeAllCoresOverCpu: overCpu('nodeAllCores'),
    nativeGflops: perSize('node', (x) => round(x.gflops, 2)),
    nativeAllCoresGflops: perSize('nodeAllCores', (x) => round(x.gflops, 2)),
    cpuGflops: perSize('cpu', (x) => round(x.gflops, 3)),
    gflopPerStep: Object.fromEntries(
      [...sizes, TRAINING_SIZE].map((s) => [s, round(unetFlops(ARCHITECTURE, s, BATCH).trainStep / 1e9, 1)]),
    ),
    nativeThreads: { node: out.node?.threads ?? null, nodeAllCores: out.nodeAllCores?.threads ?? null },
    // One 128³ sample per step, batch 1, on native: a planning number for runs at the seed's shape.
    seedTrainingShape: training,
    stepMsAll: Object.fromEntries(
      runs.map((r) => [r.key, perSize(r.key, (x) => x.allStepMs.map((ms) => Math.round(ms)))]),
    ),
    peakRssMiB: Object.fromEntries(runs.map((r) => [r.key, perSize(r.key, (x) => x.peakRssMiB)])),
    engines: Object.fromEntries(runs.map((r) => [r.key, out[r.key]?.description ?? out[r.key]?.error])),
    width: WIDTH,
    batch: BATCH,
    quick,
    machine: {
      cpus: availableParallelism(),
      model: cpuModel(),
      memoryGiB: round(totalmem() / 2 ** 30, 1),
      loadBefore,
      loadAfter: loadavg().map((v) => round(v, 2)),
    },
    minutes: round((Date.now() - started) / 60000, 1),
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
  if (runs.some((r) => out[r.key]?.error)) process.exitCode = 1;
}

const childAt = process.argv.indexOf('--child');
if (childAt >= 0) await child(JSON.parse(process.argv[childAt + 1]));
else await main();
