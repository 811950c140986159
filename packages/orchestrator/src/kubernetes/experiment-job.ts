import { createHash } from 'node:crypto';
import type {
  V1EnvVar,
  V1Job,
  V1PodFailurePolicy,
  V1PodSpec,
  V1ResourceRequirements,
} from '@kubernetes/client-node';
import type { EngineName } from '@lits-ddp/protocol';
import { JobInputError } from '../errors.js';

/** Where and how experiment Jobs run: read once from the environment (`readJobSettings`). */
export interface JobSettings {
  namespace: string;
  /** The worker image (the GPU image on GPU clusters). */
  image: string;
  imagePullPolicy?: 'Always' | 'IfNotPresent' | 'Never';
  /** `lits worker --engine`. */
  engine: EngineName;
  /** `nvidia.com/gpu` limit per pod; 0 for CPU-only clusters. */
  gpusPerPod: number;
  /** The PVC with the data sets and LITS_HOME, mounted at `dataMountPath` (as in the coordinator). */
  dataClaim: string;
  dataMountPath: string;
  /** A ConfigMap whose keys become the pods' environment (REDIS_URL, LITS_HOME, …). */
  envConfigMap?: string;
  ttlSecondsAfterFinished: number;
  activeDeadlineSeconds?: number;
  cpuRequest?: string;
  memoryRequest?: string;
  memoryLimit?: string;
  serviceAccountName?: string;
  /** uid/gid the pods run as (the images' unprivileged user). */
  runAsUser: number;
}

export interface ExperimentJobInput {
  experimentId: string;
  workers: number;
  maxRestarts: number;
  /** `lits worker --threads`: the spec's engine-threads, which the run leases its workers by. */
  engineThreads: number;
}

export const EXPERIMENT_LABEL = 'lits-ddp/experiment-id';
export const EXPERIMENT_ANNOTATION = 'lits-ddp/experiment-id';
export const WORKER_CONTAINER = 'worker';
const INDEX_ANNOTATION = 'batch.kubernetes.io/job-completion-index';
/**
 * `lits worker --exit-when-run-ends` exits with this code when the run failed (gpu-worker's
 * RUN_FAILED_EXIT_CODE; the Job builder test checks they agree). Any other failure, Node's exit 1 for
 * a crash included, is a pod failure that backoffLimit (max-restarts) covers.
 */
export const RUN_FAILED_EXIT_CODE = 3;

const hash8 = (s: string): string => createHash('sha256').update(s).digest('hex').slice(0, 8);

/**
 * The Job's name: `lits-<id>` when the id is already a DNS label, else a lowercased, shortened form
 * with a hash of the id. At most 52 characters, so that pod hostnames `<job>-<index>` stay within 63.
 */
export function experimentJobName(experimentId: string): string {
  const plain = `lits-${experimentId}`;
  if (plain.length <= 52 && /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(plain)) return plain;
  const cleaned = experimentId
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 37)
    .replace(/-+$/, '');
  return `lits-${cleaned ? `${cleaned}-` : ''}${hash8(experimentId)}`;
}

/** A label value for the experiment id (ids that are not valid label values get the Job name's form). */
export function experimentLabelValue(experimentId: string): string {
  return experimentId.length <= 63 && /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/.test(experimentId)
    ? experimentId
    : experimentJobName(experimentId);
}

/** The worker id of each rank: pod `JOB_COMPLETION_INDEX` i runs `lits worker --id <id>-w<i>`. */
export function experimentWorkerIds(experimentId: string, workers: number): string[] {
  return Array.from({ length: workers }, (_, i) => `${experimentId}-w${i}`);
}

/** Refuses inputs no Job can have (the spec's own checks let none through; this guards other callers). */
function checkJobInput(input: ExperimentJobInput): void {
  const { workers, maxRestarts, engineThreads } = input;
  if (!Number.isInteger(workers) || workers < 1)
    throw new JobInputError(`workers must be a positive integer, got ${workers}`);
  if (!Number.isInteger(maxRestarts) || maxRestarts < 0)
    throw new JobInputError(`max-restarts must be a non-negative integer, got ${maxRestarts}`);
  if (!Number.isInteger(engineThreads) || engineThreads < 1)
    throw new JobInputError(`engine-threads must be a positive integer, got ${engineThreads}`);
}

/** The worker's environment: its rank comes from the pod's completion index, and its id from that. */
function workerEnv(experimentId: string, settings: JobSettings): V1EnvVar[] {
  return [
    { name: 'LITS_EXPERIMENT_ID', value: experimentId },
    // Set before LITS_WORKER_ID, so that $(LITS_WORKER_INDEX) expands in it.
    {
      name: 'LITS_WORKER_INDEX',
      valueFrom: { fieldRef: { fieldPath: `metadata.annotations['${INDEX_ANNOTATION}']` } },
    },
    { name: 'LITS_WORKER_ID', value: `${experimentId}-w$(LITS_WORKER_INDEX)` },
    { name: 'TFJS_ENGINE', value: settings.engine },
  ];
}

function workerResources(settings: JobSettings): V1ResourceRequirements {
  const resources: V1ResourceRequirements = {};
  const limits: Record<string, string> = {};
  const requests: Record<string, string> = {};
  if (settings.gpusPerPod > 0) limits['nvidia.com/gpu'] = String(settings.gpusPerPod);
  if (settings.memoryLimit) limits.memory = settings.memoryLimit;
  if (settings.cpuRequest) requests.cpu = settings.cpuRequest;
  if (settings.memoryRequest) requests.memory = settings.memoryRequest;
  if (Object.keys(limits).length > 0) resources.limits = limits;
  if (Object.keys(requests).length > 0) resources.requests = requests;
  return resources;
}

function podFailurePolicy(): V1PodFailurePolicy {
  return {
    rules: [
      // The run itself failed: a new pod cannot help, so the Job fails at once and says why.
      // Crashes (exit 1 included) fall through to backoffLimit and get a replacement pod.
      {
        action: 'FailJob',
        onExitCodes: { containerName: WORKER_CONTAINER, operator: 'In', values: [RUN_FAILED_EXIT_CODE] },
      },
      // Preemption and node drains do not use up the retries.
      { action: 'Ignore', onPodConditions: [{ type: 'DisruptionTarget', status: 'True' }] },
    ],
  };
}

/** One worker pod: `lits worker` serving this experiment only, unprivileged, with the data claim mounted. */
function workerPodSpec(input: ExperimentJobInput, settings: JobSettings): V1PodSpec {
  const { experimentId } = input;
  return {
    restartPolicy: 'Never',
    automountServiceAccountToken: false,
    ...(settings.serviceAccountName ? { serviceAccountName: settings.serviceAccountName } : {}),
    securityContext: {
      runAsNonRoot: true,
      runAsUser: settings.runAsUser,
      runAsGroup: settings.runAsUser,
      fsGroup: settings.runAsUser,
    },
    terminationGracePeriodSeconds: 60,
    containers: [
      {
        name: WORKER_CONTAINER,
        image: settings.image,
        ...(settings.imagePullPolicy ? { imagePullPolicy: settings.imagePullPolicy } : {}),
        args: [
          'worker',
          '--id',
          '$(LITS_WORKER_ID)',
          '--engine',
          settings.engine,
          '--threads',
          String(input.engineThreads),
          '--exit-when-run-ends',
          experimentId,
        ],
        env: workerEnv(experimentId, settings),
        ...(settings.envConfigMap ? { envFrom: [{ configMapRef: { name: settings.envConfigMap } }] } : {}),
        resources: workerResources(settings),
        volumeMounts: [{ name: 'data', mountPath: settings.dataMountPath }],
      },
    ],
    volumes: [{ name: 'data', persistentVolumeClaim: { claimName: settings.dataClaim } }],
  };
}

/**
 * One Indexed Job per experiment: completions = parallelism = workers, one worker pod per index,
 * whose worker id (and so its rank) is derived from JOB_COMPLETION_INDEX and survives pod
 * replacement. The pods serve that experiment only and exit when it ends (`--exit-when-run-ends`).
 */
export function buildExperimentJob(input: ExperimentJobInput, settings: JobSettings): V1Job {
  checkJobInput(input);
  const { experimentId, workers, maxRestarts } = input;
  const labels = {
    'app.kubernetes.io/name': 'lits-worker',
    'app.kubernetes.io/part-of': 'lits-ddp',
    'app.kubernetes.io/component': 'experiment',
    [EXPERIMENT_LABEL]: experimentLabelValue(experimentId),
  };
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: {
      name: experimentJobName(experimentId),
      namespace: settings.namespace,
      labels,
      annotations: { [EXPERIMENT_ANNOTATION]: experimentId },
    },
    spec: {
      completionMode: 'Indexed',
      completions: workers,
      parallelism: workers,
      // Each restart of the run may cost a pod; the run's own max-restarts is the budget.
      backoffLimit: maxRestarts,
      ttlSecondsAfterFinished: settings.ttlSecondsAfterFinished,
      ...(settings.activeDeadlineSeconds ? { activeDeadlineSeconds: settings.activeDeadlineSeconds } : {}),
      podFailurePolicy: podFailurePolicy(),
      template: { metadata: { labels }, spec: workerPodSpec(input, settings) },
    },
  };
}
