export {
  RUN_FAILED_EXIT_CODE,
  runWorkerCli,
  runWorkerProcess,
  type WorkerProcessOptions,
} from './worker-main.js';
export { WorkerAgent, type WorkerAgentOptions } from './worker-agent.js';
export { collectSystemInfo } from './system-info.js';
export * from './gpu-devices.js';
export { runTraining } from './training/train-run.js';
export type { TrainingContext } from './training/training-loop.js';
export * from './errors.js';
