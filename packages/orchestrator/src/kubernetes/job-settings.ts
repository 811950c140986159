import { existsSync, readFileSync } from 'node:fs';
import { ENGINES } from '@lits-ddp/protocol';
import { JobSettingsError } from '../errors.js';
import type { JobSettings } from './experiment-job.js';

const SERVICE_ACCOUNT_NAMESPACE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';
const PULL_POLICIES = ['Always', 'IfNotPresent', 'Never'] as const;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

type Env = Readonly<Record<string, string | undefined>>;

/** `LITS_LAUNCHER`: `local` (workers register by themselves, the default) or `kubernetes`. */
export function launcherKind(env: Env = process.env): 'local' | 'kubernetes' {
  const v = env.LITS_LAUNCHER ?? 'local';
  if (v !== 'local' && v !== 'kubernetes')
    throw new JobSettingsError(`LITS_LAUNCHER must be local or kubernetes, got "${v}"`);
  return v;
}

/**
 * The experiment Job settings from LITS_K8S_* variables, each checked with an error that names it.
 * The namespace defaults to the coordinator pod's own (its service account's namespace file).
 */
export function readJobSettings(env: Env = process.env): JobSettings {
  const str = (name: string, fallback?: string): string => {
    const v = env[name] ?? fallback;
    if (v === undefined || v.trim() === '')
      throw new JobSettingsError(`${name} must be set for LITS_LAUNCHER=kubernetes`);
    return v.trim();
  };
  const int = (name: string, fallback: number, min: number): number => {
    const raw = env[name];
    if (raw === undefined || raw === '') return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min)
      throw new JobSettingsError(`${name} must be an integer ≥ ${min}, got "${raw}"`);
    return n;
  };
  const oneOf = <T extends string>(
    name: string,
    allowed: readonly T[],
    fallback: T | undefined,
  ): T | undefined => {
    const v = env[name] ?? fallback;
    if (v === undefined) return undefined;
    if (!(allowed as readonly string[]).includes(v))
      throw new JobSettingsError(`${name} must be one of ${allowed.join(', ')}, got "${v}"`);
    return v as T;
  };
  const name = (key: string, fallback?: string): string => {
    const v = str(key, fallback);
    if (!DNS_LABEL.test(v) || v.length > 63)
      throw new JobSettingsError(`${key} must be a DNS label (a Kubernetes name), got "${v}"`);
    return v;
  };
  const ownNamespace = existsSync(SERVICE_ACCOUNT_NAMESPACE)
    ? readFileSync(SERVICE_ACCOUNT_NAMESPACE, 'utf8').trim()
    : undefined;
  const optional = (key: string): string | undefined => env[key]?.trim() || undefined;
  const pull = oneOf('LITS_K8S_IMAGE_PULL_POLICY', PULL_POLICIES, undefined);
  const deadline = int('LITS_K8S_ACTIVE_DEADLINE_SECONDS', 0, 0);
  const mount = str('LITS_K8S_DATA_MOUNT', '/data');
  if (!mount.startsWith('/'))
    throw new JobSettingsError(`LITS_K8S_DATA_MOUNT must be an absolute path, got "${mount}"`);
  const configMap = optional('LITS_K8S_ENV_CONFIGMAP');
  const serviceAccount = optional('LITS_K8S_WORKER_SERVICE_ACCOUNT');
  return {
    namespace: name('LITS_K8S_NAMESPACE', ownNamespace),
    image: str('LITS_K8S_WORKER_IMAGE'),
    ...(pull ? { imagePullPolicy: pull } : {}),
    engine: oneOf('LITS_K8S_WORKER_ENGINE', ENGINES, 'gpu') as JobSettings['engine'],
    gpusPerPod: int('LITS_K8S_GPUS_PER_POD', 1, 0),
    dataClaim: name('LITS_K8S_DATA_CLAIM', 'lits-data'),
    dataMountPath: mount,
    ...(configMap ? { envConfigMap: name('LITS_K8S_ENV_CONFIGMAP') } : {}),
    ttlSecondsAfterFinished: int('LITS_K8S_TTL_SECONDS', 86_400, 0),
    ...(deadline > 0 ? { activeDeadlineSeconds: deadline } : {}),
    ...(optional('LITS_K8S_WORKER_CPU') ? { cpuRequest: optional('LITS_K8S_WORKER_CPU') } : {}),
    ...(optional('LITS_K8S_WORKER_MEMORY') ? { memoryRequest: optional('LITS_K8S_WORKER_MEMORY') } : {}),
    ...(optional('LITS_K8S_WORKER_MEMORY_LIMIT')
      ? { memoryLimit: optional('LITS_K8S_WORKER_MEMORY_LIMIT') }
      : {}),
    ...(serviceAccount ? { serviceAccountName: name('LITS_K8S_WORKER_SERVICE_ACCOUNT') } : {}),
    runAsUser: int('LITS_K8S_RUN_AS_USER', 1000, 1),
  };
}
