#!/usr/bin/env node
// GPU smoke test for whoever has a GPU: trains the seed model (UNet3D width 32, batch 1) for 3 steps at 64³ twice
// from the same seed in deterministic mode and checks that both runs end with the same weight hash; prints the
// training GFLOP/s (analytic conv FLOPs, unetFlops) and the peak GPU memory. In the image:
//   docker run --rm --gpus device=0 --entrypoint node lits-ddp/lits:gpu-node24-cuda12.5 /app/docker/gpu-smoke.mjs
// On a host after scripts/gpu-install-layer.sh: node docker/gpu-smoke.mjs
// Options: --engine gpu|node|cpu (default gpu; node and cpu only test the script itself: they have no GPU numbers),
// --size N (cube edge, multiple of 16; default 64), --steps N (default 3), --seed N (default 0).
// Progress on stderr; stdout is one JSON line; exit 1 when a check fails.
import { execFileSync } from 'node:child_process';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    engine: { type: 'string', default: 'gpu' },
    size: { type: 'string', default: '64' },
    steps: { type: 'string', default: '3' },
    seed: { type: 'string', default: '0' },
  },
  strict: true,
});
const positive = (name, multiple = 1) => {
  const n = Number(values[name]);
  if (!Number.isInteger(n) || n < multiple || n % multiple !== 0)
    throw new RangeError(
      `--${name} ${values[name]}: a positive whole number (multiple of ${multiple}) is needed`,
    );
  return n;
};
const size = positive('size', 16);
const steps = positive('steps');
const seed = Number(values.seed);

// Before TensorFlow loads (it reads them once). The image sets the first two; deterministic mode (what this smoke
// test checks) needs the last two on top of TF_DETERMINISTIC_OPS / TF_CUDNN_DETERMINISTIC, which loadEngine sets:
// cuDNN autotuning picks kernels by timing, and TF32 rounds conv/matmul inputs on Ampere and Hopper.
const GPU_ENV = {
  TF_FORCE_GPU_ALLOW_GROWTH: 'true',
  CUDA_DEVICE_ORDER: 'PCI_BUS_ID',
  TF_CUDNN_USE_AUTOTUNE: '0',
  NVIDIA_TF32_OVERRIDE: '0',
};
for (const [name, value] of Object.entries(GPU_ENV)) process.env[name] ??= value;
process.env.TF_CPP_MIN_LOG_LEVEL ??= '1';

const say = (line) => process.stderr.write(`[gpu-smoke] ${line}\n`);
const failures = [];
const check = (ok, what) => {
  if (!ok) failures.push(what);
  say(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
};

/** nvidia-smi's CSV answer as rows of trimmed fields, or null with why it could not be asked. */
function nvidiaSmi(args) {
  try {
    const out = execFileSync('nvidia-smi', [...args, '--format=csv,noheader,nounits'], {
      encoding: 'utf8',
      timeout: 20_000,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return {
      rows: out
        .trim()
        .split('\n')
        .filter(Boolean)
        .map((l) => l.split(',').map((f) => f.trim())),
    };
  } catch (err) {
    return { rows: null, error: err instanceof Error ? err.message.split('\n')[0] : String(err) };
  }
}

/** Used MiB per visible GPU (index → MiB), and this process's own use when nvidia-smi can see its pid. */
function gpuMemory() {
  const devices = nvidiaSmi(['--query-gpu=index,memory.used']);
  const apps = nvidiaSmi(['--query-compute-apps=pid,used_memory']);
  const mine = apps.rows?.find(([pid]) => Number(pid) === process.pid);
  return {
    devices: devices.rows ? Object.fromEntries(devices.rows.map(([i, used]) => [i, Number(used)])) : null,
    processMiB: mine ? Number(mine[1]) : null,
    error: devices.error ?? null,
  };
}

// compute_cap is a newer query field; without it the rest still describes the GPUs.
const gpuInfo =
  nvidiaSmi(['--query-gpu=index,name,driver_version,memory.total,compute_cap']).rows ??
  nvidiaSmi(['--query-gpu=index,name,driver_version,memory.total']).rows;
const before = gpuMemory();

const { loadEngine, SEED_ARCHITECTURE, syntheticLiverCubes, UNet3D, unetFlops } =
  await import('@lits-ddp/unet');
const engine = await loadEngine({ engine: values.engine, deterministic: true });
const { tf } = engine;
say(engine.description);
const usingGpu = engine.name === 'cpu' ? false : tf.backend().isUsingGpuDevice === true;
if (values.engine === 'gpu') check(usingGpu, 'TensorFlow uses a GPU device');
else say(`--engine ${values.engine}: no GPU in use; this run tests the script, not a GPU`);

/** One training run from `seed`: per-step milliseconds and the final weight hash. */
function train(label) {
  const model = UNet3D.create(tf, { seed });
  const batch = syntheticLiverCubes({ seed, size, cases: [0] });
  const stepMs = [];
  for (let step = 0; step < steps; step++) {
    const started = performance.now();
    const r = model.computeGradients(batch, { seed, epoch: 0, step, microBatch: 0 });
    model.applyGradients(r.grads, r.bnStats);
    stepMs.push(performance.now() - started);
    say(`${label} step ${step + 1}/${steps}: ${Math.round(stepMs.at(-1))} ms`);
  }
  const hash = model.weightHash();
  model.dispose();
  return { stepMs, hash };
}

/**
 * The most bytes tfjs holds in tensors (wherever they live) during one training step, from tf.profile. Its own
 * step on a fresh model, after the timed runs: profiling times every kernel, which would skew their numbers.
 */
async function peakTensorBytes() {
  const model = UNet3D.create(tf, { seed });
  const batch = syntheticLiverCubes({ seed, size, cases: [0] });
  // Otherwise profiling reads every kernel's output back to check it for NaN.
  tf.env().set('CHECK_COMPUTATION_FOR_ERRORS', false);
  try {
    const profile = await tf.profile(() => {
      const r = model.computeGradients(batch, { seed, epoch: 0, step: 0, microBatch: 0 });
      model.applyGradients(r.grads, r.bnStats);
    });
    return profile.peakBytes;
  } finally {
    model.dispose();
  }
}

const first = train('run 1');
const second = train('run 2');
const peakBytes = await peakTensorBytes();
check(
  first.hash === second.hash,
  `both runs end with weight hash ${first.hash.slice(0, 16)}…${first.hash === second.hash ? '' : ` vs ${second.hash.slice(0, 16)}…`}`,
);

// Run 2's steps after its first (run 1 carries the one-time costs: kernel loading, cuDNN plans, PTX JIT on Hopper).
const timed = second.stepMs.length > 1 ? second.stepMs.slice(1) : second.stepMs;
const sorted = [...timed].sort((a, b) => a - b);
const medianMs = sorted[Math.floor((sorted.length - 1) / 2)];
const flopsPerStep = unetFlops(SEED_ARCHITECTURE, size, 1).trainStep;
const after = gpuMemory();
// With allow-growth TensorFlow never hands memory back, so the usage after training is its high-water mark.
const grewMiB =
  before.devices && after.devices
    ? Object.fromEntries(
        Object.entries(after.devices).map(([i, used]) => [i, used - (before.devices[i] ?? 0)]),
      )
    : null;
const round = (v, digits) => Number(v.toFixed(digits));
const result = {
  ok: failures.length === 0,
  engine: engine.name,
  description: engine.description,
  usingGpuDevice: usingGpu,
  size,
  steps,
  seed,
  width: SEED_ARCHITECTURE.width,
  weightHashes: [first.hash, second.hash],
  deterministic: first.hash === second.hash,
  stepMs: { run1: first.stepMs.map(Math.round), run2: second.stepMs.map(Math.round) },
  gflopPerStep: round(flopsPerStep / 1e9, 2),
  gflops: round(flopsPerStep / (medianMs * 1e6), 2),
  peakGpuMemory: {
    processMiB: after.processMiB,
    deviceGrowthMiB: grewMiB,
    deviceUsedMiB: after.devices,
    tfjsPeakTensorMiB: round(peakBytes / 2 ** 20, 1),
    nvidiaSmiError: after.error,
  },
  gpus:
    gpuInfo?.map(([index, name, driver, totalMiB, computeCap]) => ({
      index,
      name,
      driver,
      computeCap: computeCap ?? null,
      totalMiB: Number(totalMiB),
    })) ?? null,
  env: Object.fromEntries(
    [...Object.keys(GPU_ENV), 'TF_DETERMINISTIC_OPS', 'TF_CUDNN_DETERMINISTIC', 'CUDA_VISIBLE_DEVICES'].map(
      (k) => [k, process.env[k] ?? null],
    ),
  ),
  failures,
  node: process.version,
};
process.stdout.write(`${JSON.stringify(result)}\n`);
if (failures.length > 0) process.exitCode = 1;
