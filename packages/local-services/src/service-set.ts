import { errorMessage } from '@lits-ddp/errors';
import { ServiceUnavailableError } from './errors.js';
import { MlflowServer } from './mlflow-server.js';
import { RedisServer } from './redis-server.js';

export interface StartServicesOptions {
  redis?: boolean;
  mlflow?: boolean;
  aof?: boolean;
  /** Reuse REDIS_URL / MLFLOW_TRACKING_URI when set instead of starting a server. Default true. */
  reuseFromEnv?: boolean;
  log?: (line: string) => void;
}

export interface ServiceSet {
  redis?: RedisServer;
  mlflow?: MlflowServer;
  /** The variables a child process needs: REDIS_URL and MLFLOW_TRACKING_URI. */
  env: Record<string, string>;
  dispose(): Promise<void>;
}

/** Starts the requested servers in parallel; on any failure, what did start is stopped again. */
export async function startServices(opts: StartServicesOptions): Promise<ServiceSet> {
  const reuse = opts.reuseFromEnv ?? true;
  const env: Record<string, string> = {};
  const wantRedis = opts.redis && !(reuse && process.env.REDIS_URL);
  const wantMlflow = opts.mlflow && !(reuse && process.env.MLFLOW_TRACKING_URI);
  if (opts.redis && !wantRedis) env.REDIS_URL = process.env.REDIS_URL as string;
  if (opts.mlflow && !wantMlflow) env.MLFLOW_TRACKING_URI = process.env.MLFLOW_TRACKING_URI as string;

  const [redisResult, mlflowResult] = await Promise.allSettled([
    wantRedis ? RedisServer.start({ aof: opts.aof, log: opts.log }) : Promise.resolve(undefined),
    wantMlflow ? MlflowServer.start({ log: opts.log }) : Promise.resolve(undefined),
  ]);
  const redis = redisResult.status === 'fulfilled' ? redisResult.value : undefined;
  const mlflow = mlflowResult.status === 'fulfilled' ? mlflowResult.value : undefined;
  const dispose = async (): Promise<void> => {
    await Promise.all([redis?.dispose(), mlflow?.dispose()]);
  };
  const failures = [redisResult, mlflowResult].filter(
    (r): r is PromiseRejectedResult => r.status === 'rejected',
  );
  if (failures.length > 0) {
    await dispose();
    throw new ServiceUnavailableError(failures.map((f) => errorMessage(f.reason)).join('\n'), {
      cause: failures[0]?.reason,
    });
  }
  if (redis) env.REDIS_URL = redis.url;
  if (mlflow) env.MLFLOW_TRACKING_URI = mlflow.url;
  return { redis, mlflow, env, dispose };
}
