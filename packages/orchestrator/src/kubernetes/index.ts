// The Job builder and settings load nothing heavy; the launcher (with @kubernetes/client-node, about
// a second to import) loads only in k8s mode.
export {
  buildExperimentJob,
  experimentJobName,
  experimentLabelValue,
  experimentWorkerIds,
  EXPERIMENT_LABEL,
  EXPERIMENT_ANNOTATION,
  WORKER_CONTAINER,
  RUN_FAILED_EXIT_CODE,
  type ExperimentJobInput,
  type JobSettings,
} from './experiment-job.js';
export { readJobSettings, launcherKind } from './job-settings.js';
export type { ExperimentLauncher, KubernetesJobLauncher } from './job-launcher.js';

/** The launcher class, imported on demand. */
export async function loadKubernetesJobLauncher(): Promise<
  typeof import('./job-launcher.js').KubernetesJobLauncher
> {
  return (await import('./job-launcher.js')).KubernetesJobLauncher;
}
