import { errorMessage } from '@lits-ddp/errors';
import { ServiceUnavailableError } from './errors.js';
import { startServices, type ServiceSet } from './service-set.js';

export type ServiceName = 'redis' | 'mlflow';

const ENV_OF: Record<ServiceName, string> = { redis: 'REDIS_URL', mlflow: 'MLFLOW_TRACKING_URI' };
const MISSING_OF: Record<ServiceName, string> = {
  redis: 'LITS_MISSING_REDIS',
  mlflow: 'LITS_MISSING_MLFLOW',
};

const underCi = (): boolean => /^(1|true|yes)$/i.test(process.env.CI ?? '');

/**
 * A vitest globalSetup: reuses REDIS_URL / MLFLOW_TRACKING_URI when the root test runner set them,
 * and otherwise starts its own servers for this package. Under CI=true a service that cannot start
 * fails the run; elsewhere the reason is recorded and the tests that need it skip with that reason.
 * The URLs travel to test workers through process.env, which vitest's workers inherit.
 */
export function servicesGlobalSetup(
  needs: Partial<Record<ServiceName, boolean>>,
): () => Promise<() => Promise<void>> {
  return async () => {
    let services: ServiceSet | undefined;
    try {
      services = await startServices({ redis: needs.redis, mlflow: needs.mlflow });
      Object.assign(process.env, services.env);
    } catch (err) {
      const reason = errorMessage(err).split('\n')[0];
      if (underCi())
        throw new ServiceUnavailableError(`test services could not start under CI=true: ${reason}`, {
          cause: err,
        });
      for (const name of Object.keys(needs) as ServiceName[]) {
        if (needs[name] && !process.env[ENV_OF[name]]) process.env[MISSING_OF[name]] = reason ?? 'unknown';
      }
    }
    return async () => {
      await services?.dispose();
    };
  };
}

/**
 * The URL of a service for a test file, or undefined when it is missing outside CI (with the reason
 * printed). Under CI=true a missing service throws, so the file fails rather than skips.
 */
export function serviceUrl(name: ServiceName): string | undefined {
  const url = process.env[ENV_OF[name]];
  if (url) return url;
  const reason = process.env[MISSING_OF[name]] ?? `${ENV_OF[name]} is not set`;
  if (underCi())
    throw new ServiceUnavailableError(`${name} is required under CI=true but is unavailable: ${reason}`);
  process.stderr.write(`skipping tests that need ${name}: ${reason}\n`);
  return undefined;
}
