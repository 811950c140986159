import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { errorMessage } from '@lits-ddp/errors';
import { resolveSpec, type ExperimentSpecInput } from '@lits-ddp/protocol';
import { launchLocalRun } from '../launcher/local-run.js';
import { demoOverlay } from './demo-overlay.js';
import { ensurePhantomSet, type PhantomSet } from './phantom-set.js';
import { printResult } from './result-output.js';

const USAGE = `lits demo [--json] [--home DIR] [--epochs N] [--workers N]

Generates a LiTS-like phantom data set (if absent: 32 CT cases of 128³ with liver lesions), preprocesses it,
starts an embedded redis-server (unless REDIS_URL is set) and trains 2 workers in deterministic mode on the
native TensorFlow engine (\`lits engine install\` builds it; \`npm run demo\` runs that first), or on the pure-JS
cpu engine when the native one cannot load (the output says why). Then segments the held-out case with the most
tumour and draws its ground truth above the prediction (an overlay PNG). Sized for about 3 min of training on 2
cores with the native engine; the cpu engine takes far longer.`;

/**
 * The demo's phantoms: 24 training cases and 8 held-out ones numbered with the seed's LiTS test ids (split
 * `lits`), 128³ voxels each (2.8 × 2.8 × 2.3 mm).
 */
export const DEMO_PHANTOMS: PhantomSet = { seed: 0, size: [128, 128, 128], train: 24, test: 8 };

/**
 * The demo's embedded defaults: the seed's pipeline (z forced, 2× block mean, liver-centred cube, raw HU), model
 * and focal loss at a quarter of its resolution (32³ cubes of 5.6 × 5.6 × 4.7 mm, width 8), chosen by measurement
 * on a 2-core machine with the native engine (docs/training.md#the-demo).
 */
export function demoSpec(datasetPath: string, epochs: number, workers: number): ExperimentSpecInput {
  return {
    'dataset-path': datasetPath,
    split: 'lits',
    max_epochs: epochs,
    'test-epochs': Math.min(10, epochs),
    gpus: 2,
    accelerator: 'None',
    workers,
    'training-batch-size': 2,
    'test-batch-size': 1,
    'micro-batch-size': 1,
    'unet-width': 8,
    'cube-size': 32,
    'preprocess-slices': DEMO_PHANTOMS.size[2],
    'preprocess-downscale': 2,
    lr: 0.001,
    'dropout-rate': 0.05,
    determinism: 'deterministic',
    engine: 'auto',
    'experiment-name': 'lits-ddp-demo',
    'max-restarts': 2,
    'collective-timeout-s': 60,
  };
}

const DEMO_EPOCHS = 90;

export async function runDemo(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      json: { type: 'boolean', default: false },
      home: { type: 'string', default: '.lits' },
      epochs: { type: 'string', default: String(DEMO_EPOCHS) },
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
  await ensurePhantomSet(dataDir, DEMO_PHANTOMS, (line) => process.stderr.write(`${line}\n`));
  const resolved = resolveSpec(demoSpec(dataDir, Number(values.epochs), Number(values.workers)));
  if (!resolved.ok) {
    for (const e of resolved.errors) process.stderr.write(`demo spec ${e.path}: ${e.message}\n`);
    return 2;
  }
  const result = await launchLocalRun({ spec: resolved.spec, json: values.json, home });
  if (result.status !== 'finished') return printResult(result, values.json);
  let overlay;
  try {
    overlay = await demoOverlay(result.runDir, dataDir);
  } catch (error) {
    // The run and its model are kept whatever happens here; say why the figure is missing.
    process.stderr.write(`demo: could not draw the held-out overlay: ${errorMessage(error)}\n`);
  }
  return printResult(result, values.json, overlay ?? undefined);
}
