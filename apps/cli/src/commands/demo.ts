import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { generatePhantomDataset } from '@lits-ddp/lits-data';
import { resolveSpec, type ExperimentSpecInput } from '@lits-ddp/protocol';
import { launchLocalRun } from '../launcher/local-run.js';
import { printResult } from './result-output.js';

const USAGE = `lits demo [--json] [--home DIR] [--epochs N] [--workers N]

Generates a small LiTS-format phantom data set (if absent), preprocesses it, starts an embedded
redis-server (unless REDIS_URL is set) and trains 2 workers in deterministic mode on the native
TensorFlow engine (\`lits engine install\` builds it; \`npm run demo\` runs that first), or on the
pure-JS cpu engine when the native one cannot load (the output says why). Sized to finish in a few
minutes on 2 cores.`;

/** The demo's phantom set: 12 cases of 64×64×32 (the seed preset scaled down: z forced to 64, 4× block mean, 16³ cubes). */
export const DEMO_PHANTOMS = { cases: 12, size: [64, 64, 32] as [number, number, number], seed: 0 };

/** The demo's embedded defaults: the seed's pipeline and loss at toy size. */
export function demoSpec(datasetPath: string, epochs: number, workers: number): ExperimentSpecInput {
  return {
    'dataset-path': datasetPath,
    max_epochs: epochs,
    'test-epochs': Math.min(5, epochs),
    gpus: 2,
    accelerator: 'None',
    workers,
    'training-batch-size': 2,
    'test-batch-size': 1,
    'micro-batch-size': 1,
    'unet-width': 4,
    'cube-size': 16,
    'preprocess-slices': 64,
    'preprocess-downscale': 4,
    'test-percent': 0.25,
    lr: 0.01,
    'dropout-rate': 0.05,
    determinism: 'deterministic',
    engine: 'auto',
    'experiment-name': 'lits-ddp-demo',
    'max-restarts': 2,
    'collective-timeout-s': 60,
  };
}

export async function runDemo(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      json: { type: 'boolean', default: false },
      home: { type: 'string', default: '.lits' },
      epochs: { type: 'string', default: '40' },
      workers: { type: 'string', default: '2' },
      verbose: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const home = resolve(values.home);
  const dataDir = join(home, 'demo-data');
  if (!existsSync(join(dataDir, `segmentation-${DEMO_PHANTOMS.cases - 1}.nii.gz`))) {
    process.stderr.write(`generating ${DEMO_PHANTOMS.cases} phantom CT cases in ${dataDir}\n`);
    await generatePhantomDataset({ outDir: dataDir, ...DEMO_PHANTOMS });
  }
  const resolved = resolveSpec(demoSpec(dataDir, Number(values.epochs), Number(values.workers)));
  if (!resolved.ok) {
    for (const e of resolved.errors) process.stderr.write(`demo spec ${e.path}: ${e.message}\n`);
    return 2;
  }
  const result = await launchLocalRun({ spec: resolved.spec, json: values.json, home });
  return printResult(result, values.json);
}
