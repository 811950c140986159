import { ApiException, BatchV1Api, CoreV1Api, KubeConfig, type V1Job } from '@kubernetes/client-node';
import Type from 'typebox';
import { errorMessage } from '@lits-ddp/errors';
import { decodeJson, JsonDecodeError } from '@lits-ddp/protocol';
import { KubernetesApiError } from '../errors.js';
import {
  buildExperimentJob,
  experimentJobName,
  experimentWorkerIds,
  type ExperimentJobInput,
  type JobSettings,
} from './experiment-job.js';

/** What a launcher does for the queue processor: start an experiment's workers, watch them, stop them. */
export interface ExperimentLauncher {
  /** Worker ids in rank order; the run leases these and no others. */
  workerIds(experimentId: string, workers: number): string[];
  /** Creates the experiment's workers; a second call for the same experiment (adoption) is a no-op. */
  ensure(input: ExperimentJobInput): Promise<void>;
  /** Why the workers can no longer run (the Job failed or vanished), or undefined while they can. */
  failure(experimentId: string): Promise<string | undefined>;
  /** Problems worth a log line while waiting (pods that cannot pull their image, …). */
  warnings(experimentId: string): Promise<string[]>;
  /** Stops the workers of a run that ended other than finished (cancelled, failed). Absent already is fine. */
  remove(experimentId: string): Promise<void>;
}

/** Pod waiting reasons that will not resolve by themselves. */
const STUCK = new Set([
  'ErrImagePull',
  'ImagePullBackOff',
  'InvalidImageName',
  'CreateContainerConfigError',
  'CreateContainerError',
]);

const status = (err: unknown): number | undefined => (err instanceof ApiException ? err.code : undefined);

const failedCondition = (job: V1Job) =>
  job.status?.conditions?.find((c) => c.type === 'Failed' && c.status === 'True');

/** The part of a Kubernetes `Status` error body worth showing. */
const ApiStatusBody = Type.Object({ message: Type.Optional(Type.String()) });

/** The `message` of a Status body; undefined when the body is something else (plain text, a proxy's page). */
function statusMessage(body: string): string | undefined {
  try {
    return decodeJson(ApiStatusBody, body, 'Kubernetes API error body').message;
  } catch (err) {
    if (err instanceof JsonDecodeError) return undefined;
    throw err;
  }
}

function describe(err: unknown): string {
  if (err instanceof ApiException) {
    const body = typeof err.body === 'string' ? err.body : JSON.stringify(err.body);
    return `HTTP ${err.code}: ${statusMessage(body) ?? body}`;
  }
  return errorMessage(err);
}

/** One Indexed Job per experiment, through the Kubernetes API (in-cluster credentials or a kubeconfig). */
export class KubernetesJobLauncher implements ExperimentLauncher {
  private readonly batch: BatchV1Api;
  private readonly core: CoreV1Api;

  constructor(
    readonly settings: JobSettings,
    kubeConfig: KubeConfig = KubernetesJobLauncher.defaultConfig(),
  ) {
    this.batch = kubeConfig.makeApiClient(BatchV1Api);
    this.core = kubeConfig.makeApiClient(CoreV1Api);
  }

  /** In a pod: its service account; elsewhere: KUBECONFIG or ~/.kube/config. */
  static defaultConfig(): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromDefault();
    return kc;
  }

  workerIds(experimentId: string, workers: number): string[] {
    return experimentWorkerIds(experimentId, workers);
  }

  job(input: ExperimentJobInput): V1Job {
    return buildExperimentJob(input, this.settings);
  }

  async ensure(input: ExperimentJobInput): Promise<void> {
    const body = this.job(input);
    try {
      await this.batch.createNamespacedJob({ namespace: this.settings.namespace, body });
    } catch (err) {
      if (status(err) === 409) return; // created before (a coordinator that took the run over)
      throw new KubernetesApiError(
        `could not create Kubernetes Job ${body.metadata?.name} in namespace ${this.settings.namespace}: ${describe(err)}`,
        err,
      );
    }
  }

  async failure(experimentId: string): Promise<string | undefined> {
    const name = experimentJobName(experimentId);
    let job: V1Job;
    try {
      job = await this.batch.readNamespacedJob({ name, namespace: this.settings.namespace });
    } catch (err) {
      if (status(err) === 404)
        return `Kubernetes Job ${name} no longer exists (deleted outside the coordinator)`;
      return undefined; // the API being unreachable for a moment is no reason to fail a run
    }
    const failed = failedCondition(job);
    if (!failed) return undefined;
    return `Kubernetes Job ${name} failed: ${failed.reason ?? 'Failed'}${failed.message ? ` (${failed.message})` : ''}`;
  }

  async warnings(experimentId: string): Promise<string[]> {
    const name = experimentJobName(experimentId);
    try {
      const pods = await this.core.listNamespacedPod({
        namespace: this.settings.namespace,
        labelSelector: `job-name=${name}`,
      });
      return pods.items.flatMap((pod) =>
        (pod.status?.containerStatuses ?? []).flatMap((c) => {
          const waiting = c.state?.waiting;
          return waiting?.reason && STUCK.has(waiting.reason)
            ? [
                `pod ${pod.metadata?.name}: ${waiting.reason}${waiting.message ? ` (${waiting.message})` : ''}`,
              ]
            : [];
        }),
      );
    } catch {
      return [];
    }
  }

  /**
   * Deletes the Job, so that none of its pods (pending ones too) starts after the run ended. A Job
   * Kubernetes has failed itself runs no pod any more: it is kept until ttlSecondsAfterFinished, so
   * that `kubectl logs` still shows why its pods failed. Finished runs never get here (their Jobs
   * complete and go after the TTL).
   */
  async remove(experimentId: string): Promise<void> {
    const name = experimentJobName(experimentId);
    try {
      const job = await this.batch.readNamespacedJob({ name, namespace: this.settings.namespace });
      if (failedCondition(job)) return;
    } catch (err) {
      if (status(err) === 404) return;
      // Cannot tell whether it failed: deleting is the safe side.
    }
    try {
      // Background: the Job goes now, the garbage collector removes its pods.
      await this.batch.deleteNamespacedJob({
        name,
        namespace: this.settings.namespace,
        propagationPolicy: 'Background',
      });
    } catch (err) {
      if (status(err) === 404) return;
      throw new KubernetesApiError(`could not delete Kubernetes Job ${name}: ${describe(err)}`, err);
    }
  }
}
