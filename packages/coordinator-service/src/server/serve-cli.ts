import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { errorMessage } from '@lits-ddp/errors';
import { loadKubernetesJobLauncher, launcherKind, readJobSettings } from '@lits-ddp/orchestrator';
import { CoordinatorConfigError } from '../errors.js';
import { startCoordinator } from './start-coordinator.js';

const USAGE = `lits serve — the coordinator: REST API, queue, live events and the dashboard

  --port N            port (default PORT, then 8080)
  --host H            address to bind (default HOST, then 127.0.0.1; 0.0.0.0 in containers)
  --redis URL         Redis (default REDIS_URL)
  --data-root DIR     submitted data-set paths must lie inside (default LITS_DATA_ROOT, then .)
  --home DIR          shared folder for runs/ and cache/ (default LITS_HOME, then .lits)
  --token-file F      API tokens, one per line (default LITS_API_TOKEN_FILE); LITS_API_TOKEN adds
                      comma-separated tokens
  --no-auth           serve without tokens (local experiments only)
  --concurrency N     experiments supervised at once (default 16)
  --lock-ms N         BullMQ lock duration (default 60000); --stalled-ms N stalled check (30000)

MLflow: MLFLOW_TRACKING_URI (otherwise runs go to <home>/runs/<id>/). Logs: JSON on stdout (LOG_LEVEL).
Kubernetes: LITS_LAUNCHER=kubernetes starts one Indexed Job of lits worker pods per experiment (LITS_K8S_*
settings, see docs/deploy.md) instead of waiting for workers that registered by themselves.
SIGTERM/SIGINT stop gracefully: running experiments go back to the queue and keep training.`;

const MIN_TOKEN_LENGTH = 16;

/** Refuses a weak token, saying where it came from but never echoing it. */
function checkToken(token: string, where: string): string {
  if (token.length < MIN_TOKEN_LENGTH || /\s/.test(token))
    throw new CoordinatorConfigError(
      `${where}: API tokens must be at least ${MIN_TOKEN_LENGTH} characters without spaces`,
    );
  return token;
}

/** Tokens from LITS_API_TOKEN (comma-separated) and a token file (one per line, # comments). */
export function readTokens(env: string | undefined, file: string | undefined): string[] {
  const tokens = (env ?? '')
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean)
    .map((t, i) => checkToken(t, `LITS_API_TOKEN token ${i + 1}`));
  if (file) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new CoordinatorConfigError(`token file ${file}: ${errorMessage(err)}`, { cause: err });
    }
    const fromFile = text
      .split('\n')
      .map((line, i) => ({ token: line.trim(), line: i + 1 }))
      .filter(({ token }) => token && !token.startsWith('#'))
      .map(({ token, line }) => checkToken(token, `token file ${file} line ${line}`));
    if (fromFile.length === 0) throw new CoordinatorConfigError(`token file ${file} holds no token`);
    tokens.push(...fromFile);
  }
  return tokens;
}

const positiveInt = (name: string, v: string | undefined): number | undefined => {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0)
    throw new CoordinatorConfigError(`${name} must be a positive integer, got ${v}`);
  return n;
};

/** The listening port: --port, else the PORT env var, else 8080; the error names where a bad one came from. */
export function resolvePort(flag: string | undefined, env: string | undefined): number {
  const [name, raw] = flag !== undefined ? ['--port', flag] : ['PORT', env?.trim() || undefined];
  if (raw === undefined) return 8080;
  const port = Number(raw);
  if (!/^\d+$/.test(raw) || port < 1 || port > 65_535)
    throw new CoordinatorConfigError(
      `${name} must be a port number from 1 to 65535, got ${JSON.stringify(raw)}`,
    );
  return port;
}

export async function runServeCli(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      port: { type: 'string' },
      host: { type: 'string' },
      redis: { type: 'string' },
      'data-root': { type: 'string' },
      home: { type: 'string' },
      'token-file': { type: 'string' },
      'no-auth': { type: 'boolean', default: false },
      concurrency: { type: 'string' },
      'lock-ms': { type: 'string' },
      'stalled-ms': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const redisUrl = values.redis ?? process.env.REDIS_URL;
  if (!redisUrl)
    throw new CoordinatorConfigError('lits serve needs Redis: pass --redis URL or set REDIS_URL');
  const port = resolvePort(values.port, process.env.PORT);
  const tokens = readTokens(
    process.env.LITS_API_TOKEN,
    values['token-file'] ?? process.env.LITS_API_TOKEN_FILE,
  );
  if (tokens.length === 0 && !values['no-auth'])
    throw new CoordinatorConfigError(
      'no API token: set LITS_API_TOKEN or --token-file (or pass --no-auth for local use)',
    );
  const concurrency = positiveInt('--concurrency', values.concurrency);
  const lockDurationMs = positiveInt('--lock-ms', values['lock-ms']);
  const stalledIntervalMs = positiveInt('--stalled-ms', values['stalled-ms']);
  const trackingUri = process.env.MLFLOW_TRACKING_URI;
  const launcher =
    launcherKind() === 'kubernetes' ? new (await loadKubernetesJobLauncher())(readJobSettings()) : undefined;
  const coordinator = await startCoordinator({
    redisUrl,
    port,
    host: values.host ?? process.env.HOST ?? '127.0.0.1',
    tokens,
    allowNoAuth: values['no-auth'],
    dataRoot: resolve(values['data-root'] ?? process.env.LITS_DATA_ROOT ?? '.'),
    home: resolve(values.home ?? process.env.LITS_HOME ?? '.lits'),
    ...(trackingUri ? { trackingUri } : {}),
    processor: {
      ...(concurrency ? { concurrency } : {}),
      ...(lockDurationMs ? { lockDurationMs } : {}),
      ...(stalledIntervalMs ? { stalledIntervalMs } : {}),
      ...(launcher ? { launcher, waitForWorkersMs: 30 * 60_000 } : {}),
    },
  });
  // A stray rejection is a bug, but the coordinator's state lives in Redis and BullMQ, so it is
  // logged (the e2e tests fail on this line) rather than ending the process for every experiment.
  process.on('unhandledRejection', (err) =>
    coordinator.app.log.error({ err }, 'unhandled rejection (a coordinator bug); still serving'),
  );
  process.stderr.write(`lits coordinator listening on ${coordinator.url} (dashboard /, API docs /docs)\n`);
  if (launcher)
    process.stderr.write(
      `experiments run as Kubernetes Jobs in namespace ${launcher.settings.namespace} (image ${launcher.settings.image})\n`,
    );
  await new Promise<void>((done) => {
    let signals = 0;
    const onSignal = (signal: NodeJS.Signals): void => {
      if (++signals > 1) process.exit(130);
      coordinator.app.log.info({ signal }, 'stopping');
      coordinator.close().then(done, (err: unknown) => {
        coordinator.app.log.error({ err }, 'unclean shutdown');
        done();
      });
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
  return 0;
}
