export { demoSpec, DEMO_PHANTOMS } from './commands/demo.js';
export { launchLocalRun, newRunId, type LocalRunOptions } from './launcher/local-run.js';
export { seedMetrics } from './commands/result-output.js';
export { WorkerProcesses } from './launcher/worker-processes.js';
