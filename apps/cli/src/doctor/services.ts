// Redis and MLflow as a worker and the coordinator would reach them: one short check each.
import { Redis } from 'ioredis';
import { errorMessage } from '@lits-ddp/errors';
import { REDIS_INSTALL_HINT } from '@lits-ddp/local-services';
import type { DoctorService } from './report-schema.js';

/** A URL fit for a report: any password replaced by `***`. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (!u.password) return url;
    u.password = '***';
    return u.toString();
  } catch {
    // Not a URL at all: the check reports that; the text itself names no parsed secret.
    return url;
  }
}

interface Configured {
  url: string | null;
  source: string | null;
}

export function configuredUrl(flag: string | undefined, flagName: string, envName: string): Configured {
  if (flag) return { url: flag, source: flagName };
  const fromEnv = process.env[envName];
  return fromEnv ? { url: fromEnv, source: envName } : { url: null, source: null };
}

const unconfigured = (hint: string): DoctorService => ({
  url: null,
  source: null,
  reachable: null,
  version: null,
  ms: null,
  error: null,
  hint,
});

/** PING, and the server's version from INFO, within `timeoutMs`. */
export async function checkRedis({ url, source }: Configured, timeoutMs: number): Promise<DoctorService> {
  if (!url)
    return unconfigured(
      `not set: lits train and lits demo embed a redis-server (install: ${REDIS_INSTALL_HINT}); ` +
        'lits worker and lits serve need REDIS_URL or --redis-url',
    );
  const started = Date.now();
  const redis = new Redis(url, {
    lazyConnect: true,
    connectTimeout: timeoutMs,
    commandTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  // The first failure is the answer (returned below); later 'error' events of the dying connection are not news.
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    const pong = await redis.ping();
    const info = await redis.info('server');
    const version = /^redis_version:(\S+)/m.exec(info)?.[1] ?? null;
    return {
      url: redactUrl(url),
      source,
      reachable: pong === 'PONG',
      version,
      ms: Date.now() - started,
      error: pong === 'PONG' ? null : `PING answered ${pong}`,
      hint: null,
    };
  } catch (err) {
    return {
      url: redactUrl(url),
      source,
      reachable: false,
      version: null,
      ms: Date.now() - started,
      error: errorMessage(err).split('\n')[0] ?? 'unreachable',
      hint:
        `start Redis there (docker compose up -d redis, or ${REDIS_INSTALL_HINT}) or point ${source} at one ` +
        'that runs; check the host, port, password and firewall',
    };
  } finally {
    redis.disconnect();
  }
}

async function get(url: string, timeoutMs: number): Promise<{ status: number; body: string }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  return { status: res.status, body: await res.text() };
}

/** GET /health (the REST API's experiments/search where a proxy hides /health) and GET /version. */
export async function checkMlflow({ url, source }: Configured, timeoutMs: number): Promise<DoctorService> {
  if (!url)
    return unconfigured(
      'not set: lits train writes its runs to DIR/runs/<run-id>/; set MLFLOW_TRACKING_URI or --mlflow-url to log to a server',
    );
  const started = Date.now();
  const base = url.replace(/\/+$/, '');
  const shown = redactUrl(url);
  const fail = (error: string): DoctorService => ({
    url: shown,
    source,
    reachable: false,
    version: null,
    ms: Date.now() - started,
    error,
    hint:
      `start the MLflow server (docker compose up -d mlflow, or mlflow server --host 0.0.0.0 --port 5000) or ` +
      `point ${source} at one that answers; lits logs over MLflow's REST API (an http(s) URL)`,
  });
  if (!/^https?:\/\//i.test(base)) return fail(`${shown} is not an http(s) URL`);
  try {
    const health = await get(`${base}/health`, timeoutMs);
    if (health.status < 200 || health.status >= 300) {
      const api = await get(`${base}/api/2.0/mlflow/experiments/search?max_results=1`, timeoutMs);
      if (api.status < 200 || api.status >= 300)
        return fail(`GET /health answered ${health.status}, the REST API ${api.status}`);
    }
    const version = await get(`${base}/version`, timeoutMs).then(
      (r) => (r.status === 200 && /^\d[\w.+-]*$/.test(r.body.trim()) ? r.body.trim() : null),
      // An old server without /version is still reachable; its version is then unknown.
      () => null,
    );
    return {
      url: shown,
      source,
      reachable: true,
      version,
      ms: Date.now() - started,
      error: null,
      hint: null,
    };
  } catch (err) {
    const cause = (err as { cause?: unknown }).cause;
    return fail(cause ? `${errorMessage(err)} (${errorMessage(cause)})` : errorMessage(err));
  }
}
