// The worker thread `prepareData` starts: validation and preprocessing read, inflate and resample whole volumes
// synchronously, case after case, so they run here and the coordinator's event loop (REST, SSE, BullMQ lock renewal)
// stays free. It posts progress as it goes and ends with one `prepared` or `failed` message.
import { parentPort, workerData } from 'node:worker_threads';
import { prepareDataOnThisThread } from './data-preparation.js';
import {
  encodePrepareError,
  type PrepareThreadInput,
  type PrepareThreadMessage,
} from './prepare-thread-messages.js';

const port = parentPort;
if (!port) throw new Error('prepare-thread.js runs as a worker thread of prepareData, not on its own');
const post = (message: PrepareThreadMessage): void => port.postMessage(message);
const input = workerData as PrepareThreadInput;

prepareDataOnThisThread(input.spec, {
  datasetPath: input.datasetPath,
  cacheDir: input.cacheDir,
  dataSeed: input.dataSeed,
  onValidate: (done, total) => post({ type: 'validate', done, total }),
  onPreprocess: (progress) => post({ type: 'preprocess', progress }),
}).then(
  (result) => post({ type: 'prepared', result }),
  (error: unknown) => post({ type: 'failed', error: encodePrepareError(error) }),
);
