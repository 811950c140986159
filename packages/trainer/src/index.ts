export {
  RUN_FAILED_EXIT_CODE,
  runWorkerCli,
  runWorkerProcess,
  type WorkerProcessOptions,
} from './worker-main.js';
export { WorkerAgent, type WorkerAgentOptions } from './worker-agent.js';
export { collectSystemInfo } from './system-info.js';
export { runTraining, TrainingStopped, type TrainingContext } from './training/train-run.js';
