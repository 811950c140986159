export {
  RedisServer,
  ensureRedisServer,
  pingRedis,
  REDIS_INSTALL_HINT,
  type RedisServerOptions,
} from './redis-server.js';
export {
  MlflowServer,
  ensureMlflow,
  cacheRoot,
  withInstallLock,
  MLFLOW_VERSION,
  type MlflowServerOptions,
} from './mlflow-server.js';
export { startServices, type ServiceSet, type StartServicesOptions } from './service-set.js';
export { freePort } from './ports.js';
export { ResettingPort } from './resetting-port.js';
export { aptInstall, findExecutable, isRoot } from './system-packages.js';
export type { InstallReport, LocalService } from './service.js';
export { ensureChromium, CHROMIUM_INSTALL_HINT } from './chromium.js';
export { InstallError, ServiceUnavailableError } from './errors.js';
