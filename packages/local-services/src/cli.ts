#!/usr/bin/env node
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { parseArgs } from 'node:util';
import { errorMessage } from '@lits-ddp/errors';
import { ensureMlflow } from './mlflow-server.js';
import { ensureRedisServer } from './redis-server.js';
import { startServices } from './service-set.js';

const USAGE = `lits-services — real redis-server and MLflow servers on free loopback ports

  lits-services run [--redis] [--mlflow] [--aof] -- <command> [args…]
      start the servers (both when neither flag is given), run the command with
      REDIS_URL and MLFLOW_TRACKING_URI set, then stop them and remove their folders.
      Variables already set are reused and nothing is started for them.
  lits-services start [--redis] [--mlflow] [--aof]
      start them, print the variables, and keep them up until Ctrl-C.
  lits-services install [--redis] [--mlflow]
      install what is missing (apt-get redis-server; mlflow in a venv under ~/.cache/lits-ddp).`;

const log = (line: string): void => void process.stderr.write(`[lits-services] ${line}\n`);

async function main(argv: string[]): Promise<number> {
  const dash = argv.indexOf('--');
  const own = dash >= 0 ? argv.slice(0, dash) : argv;
  const command = dash >= 0 ? argv.slice(dash + 1) : [];
  const { values, positionals } = parseArgs({
    args: own,
    allowPositionals: true,
    options: {
      redis: { type: 'boolean', default: false },
      mlflow: { type: 'boolean', default: false },
      aof: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const verb = positionals[0];
  if (values.help || !verb) {
    process.stdout.write(`${USAGE}\n`);
    return verb || values.help ? 0 : 2;
  }
  const both = !values.redis && !values.mlflow;
  const wants = { redis: both || values.redis, mlflow: both || values.mlflow };

  if (verb === 'install') {
    if (wants.redis) {
      const r = ensureRedisServer({ log });
      log(`redis-server: ${r.path} (${r.installed ? `installed in ${r.ms} ms` : 'already present'})`);
    }
    if (wants.mlflow) {
      const m = await ensureMlflow({ log });
      log(`mlflow: ${m.path} (${m.installed ? `installed in ${m.ms} ms` : 'already present'})`);
    }
    return 0;
  }
  if (verb !== 'run' && verb !== 'start') {
    process.stderr.write(`unknown command "${verb}"\n${USAGE}\n`);
    return 2;
  }
  if (verb === 'run' && command.length === 0) {
    process.stderr.write(`run needs a command after "--"\n`);
    return 2;
  }

  const started = Date.now();
  const services = await startServices({ ...wants, aof: values.aof, log });
  for (const svc of [services.redis, services.mlflow]) {
    if (svc) log(`${svc.name} healthy at ${svc.url} after ${svc.startupMs} ms`);
  }
  log(`services ready in ${Date.now() - started} ms`);
  try {
    if (verb === 'start') {
      for (const [k, v] of Object.entries(services.env)) process.stdout.write(`export ${k}=${v}\n`);
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      return 0;
    }
    const [cmd, ...args] = command as [string, ...string[]];
    const child = spawn(cmd, args, { stdio: 'inherit', env: { ...process.env, ...services.env } });
    const forward = (signal: NodeJS.Signals): void => void child.kill(signal);
    process.on('SIGINT', forward);
    process.on('SIGTERM', forward);
    const code = await new Promise<number>((resolve) => {
      child.once('exit', (c, s) => resolve(c ?? (s ? 128 + (constants.signals[s] ?? 0) : 1)));
      child.once('error', (err) => {
        log(`cannot run ${cmd}: ${err.message}`);
        resolve(127);
      });
    });
    process.off('SIGINT', forward);
    process.off('SIGTERM', forward);
    return code;
  } finally {
    await services.dispose();
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    log(errorMessage(err));
    process.exit(1);
  },
);
