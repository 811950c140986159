#!/usr/bin/env node
// `npm run bench`: forward+backward+update time of one training step with analytic conv FLOPs (3 × forward), on
// the cpu engine (the numbers issue 4 asks for) unless TFJS_ENGINE names another explicitly.
// Progress goes to stderr; the last stdout line is one JSON object.
// LITS_BENCH_QUICK=1 skips the seed model at 64³ (about 380 GFLOP per step: many minutes on the cpu engine).
import { benchmarkTrainStep, loadEngine } from '../dist/index.js';

const quick = process.env.LITS_BENCH_QUICK === '1';
const requested = process.env.TFJS_ENGINE?.trim();
const engine = await loadEngine({ engine: requested ? requested : 'cpu', deterministic: true });
process.stderr.write(`${engine.description}\n`);

const configs = [
  { key: 'width8_32', architecture: { width: 8 }, size: 32, warmup: 1, repeats: 3 },
  { key: 'seed_32', architecture: { width: 32 }, size: 32, warmup: 0, repeats: 2 },
  ...(quick ? [] : [{ key: 'seed_64', architecture: { width: 32 }, size: 64, warmup: 0, repeats: 1 }]),
];

const result = {
  stepMs: {},
  gflops: {},
  gflopPerStep: {},
  stepMsAll: {},
  batch: 1,
  engine: engine.name,
  quick,
};
for (const c of configs) {
  process.stderr.write(
    `${c.key}: width ${c.architecture.width}, ${c.size}³, batch 1, ${c.warmup} warm-up + ${c.repeats} timed step(s) …\n`,
  );
  const r = benchmarkTrainStep(engine.tf, { ...c, batch: 1 });
  result.stepMs[c.key] = Math.round(r.stepMs);
  result.gflops[c.key] = Number(r.gflops.toFixed(3));
  result.gflopPerStep[c.key] = Number((r.flopsPerStep / 1e9).toFixed(2));
  result.stepMsAll[c.key] = r.allStepMs.map(Math.round);
  process.stderr.write(`  ${Math.round(r.stepMs)} ms/step, ${r.gflops.toFixed(3)} GFLOP/s\n`);
}
process.stdout.write(`${JSON.stringify(result)}\n`);
