import { resolve } from 'node:path';
import { resolveSpec } from '@lits-ddp/protocol';
import { specFromArgs } from '../spec-flags.js';
import { launchLocalRun } from '../launcher/local-run.js';
import { printResult } from './result-output.js';

const USAGE = `lits train --config spec.json | --<spec-field> <value> …  [--json] [--home DIR]

Launches one training run on this machine: the coordinator core plus one worker process per rank
(workers = the spec's "workers", default gpus). Uses REDIS_URL, or starts an embedded redis-server.
Logs to MLflow when MLFLOW_TRACKING_URI is set, otherwise to DIR/runs/<run-id>/ (DIR default .lits).`;

export async function runTrain(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const { spec: raw, rest } = await specFromArgs(argv, new Set(['json', 'home', 'verbose']));
  const resolved = resolveSpec(raw);
  if (!resolved.ok) {
    for (const e of resolved.errors) process.stderr.write(`spec ${e.path}: ${e.message}\n`);
    return 2;
  }
  const result = await launchLocalRun({
    spec: resolved.spec,
    json: rest.json === true,
    home: resolve(typeof rest.home === 'string' ? rest.home : '.lits'),
  });
  return printResult(result, rest.json === true);
}
