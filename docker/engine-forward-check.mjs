#!/usr/bin/env node
// The GPU image's build-time check, which needs no GPU: the engine loads, and one forward pass of the seed model
// (UNet3D, width 32) on a small synthetic cube runs on the engine's CPU device and agrees with the pure-JS cpu
// engine. GPUs are hidden (CUDA_VISIBLE_DEVICES=-1) so the check is the same on a build host that has one.
// Run by scripts/gpu-install-layer.sh (the Dockerfile's install layer) and again in the image's runtime stage.
//   node docker/engine-forward-check.mjs [--engine gpu|node|cpu] [--size N]
// Progress on stderr; stdout is one JSON line; exit 1 when a check fails.
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    engine: { type: 'string', default: 'gpu' },
    size: { type: 'string', default: '16' },
  },
  strict: true,
});
const size = Number(values.size);
if (!Number.isInteger(size) || size < 16 || size % 16 !== 0)
  throw new RangeError(`--size ${values.size}: a cube edge that is a multiple of 16 is needed`);

// Before TensorFlow loads: it reads these once.
process.env.CUDA_VISIBLE_DEVICES = '-1';
process.env.TF_CPP_MIN_LOG_LEVEL ??= '2';

const { loadEngine, SEED_ARCHITECTURE, syntheticLiverCubes, UNet3D } = await import('@lits-ddp/unet');

const say = (line) => process.stderr.write(`[engine-forward-check] ${line}\n`);
const failures = [];
const check = (ok, what) => {
  if (!ok) failures.push(what);
  say(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
};

/** Eval-mode probabilities of the seed model (seed 0) for synthetic case 0 at `size`³. */
function forward(tf) {
  const model = UNet3D.create(tf, { seed: 0 });
  const batch = syntheticLiverCubes({ seed: 0, size, cases: [0] });
  try {
    return model.predictProbabilities(batch.image, [size, size, size], 1);
  } finally {
    model.dispose();
  }
}

const started = performance.now();
const engine = await loadEngine({ engine: values.engine, deterministic: true }).catch((err) => {
  const error = err instanceof Error ? err.message : String(err);
  process.stdout.write(
    `${JSON.stringify({ ok: false, engine: values.engine, error, node: process.version })}\n`,
  );
  process.exit(1);
});
const loadMs = performance.now() - started;
say(engine.description);
const { tf } = engine;
check(engine.name === values.engine, `engine ${engine.name} loaded (asked for ${values.engine})`);
const native = engine.name !== 'cpu';
const usingGpu = native ? tf.backend().isUsingGpuDevice === true : false;
if (native) {
  check(engine.backend === 'tensorflow', `backend ${engine.backend}`);
  check(typeof engine.libtensorflow === 'string', `libtensorflow ${engine.libtensorflow}`);
  check(!usingGpu, 'no GPU device in use (the forward pass runs on the CPU device)');
}

const classes = SEED_ARCHITECTURE.classes;
const forwardStarted = performance.now();
const probabilities = forward(tf);
const forwardMs = performance.now() - forwardStarted;
check(
  probabilities.length === size ** 3 * classes,
  `${probabilities.length} probabilities for ${size}³ × ${classes}`,
);
let worstSum = 0;
for (let v = 0; v < probabilities.length; v += classes) {
  let sum = 0;
  for (let c = 0; c < classes; c++) sum += probabilities[v + c];
  worstSum = Math.max(worstSum, Number.isFinite(sum) ? Math.abs(sum - 1) : Infinity);
}
check(
  worstSum < 1e-4,
  `every voxel's probabilities are finite and sum to 1 (worst |sum − 1| ${worstSum.toExponential(2)})`,
);

// The same forward on pure-JS tfjs (the reference engine) in this process: another backend of the same tfjs.
let maxDiffFromCpu = null;
if (native) {
  if (!(await tf.setBackend('cpu'))) throw new Error("the pure-JS 'cpu' backend did not start");
  const reference = forward(tf);
  maxDiffFromCpu = 0;
  for (let i = 0; i < reference.length; i++)
    maxDiffFromCpu = Math.max(maxDiffFromCpu, Math.abs(reference[i] - probabilities[i]));
  check(
    maxDiffFromCpu < 1e-3,
    `agrees with the pure-JS cpu engine (max |Δp| ${maxDiffFromCpu.toExponential(2)})`,
  );
}

const result = {
  ok: failures.length === 0,
  engine: engine.name,
  packageName: engine.packageName,
  tfjs: engine.version,
  libtensorflow: engine.libtensorflow,
  usingGpuDevice: usingGpu,
  size,
  width: SEED_ARCHITECTURE.width,
  loadMs: Math.round(loadMs),
  forwardMs: Math.round(forwardMs),
  maxDiffFromCpu,
  failures,
  node: process.version,
};
process.stdout.write(`${JSON.stringify(result)}\n`);
if (failures.length > 0) process.exitCode = 1;
