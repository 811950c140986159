import { Worker } from 'node:worker_threads';
import type { ResolvedSpec } from '@lits-ddp/protocol';
import type { PreparationOptions, PreparedData } from './data-preparation.js';
import {
  decodePrepareError,
  type PrepareThreadInput,
  type PrepareThreadMessage,
} from './prepare-thread-messages.js';

export { DatasetInvalidError } from '../errors.js';
export {
  labelMapOf,
  preprocessConfigOf,
  type PreparationOptions,
  type PreparedData,
} from './data-preparation.js';

export interface PrepareOptions extends PreparationOptions {
  /**
   * Aborting stops the preparation thread at once and `prepareData` rejects with the signal's reason. The cubes
   * written so far stay valid (each is renamed into place whole), so a later preparation reuses them.
   */
  signal?: AbortSignal;
}

// Built, the thread's JavaScript sits beside this file. Run from the TypeScript sources (vitest imports src/), a
// worker thread still needs JavaScript: the package's built copy, which the test task builds first.
const THREAD_ENTRY = import.meta.url.endsWith('.ts')
  ? new URL('../../dist/orchestration/prepare-thread.js', import.meta.url)
  : new URL('./prepare-thread.js', import.meta.url);

const abortReasonOf = (signal: AbortSignal): Error =>
  signal.reason instanceof Error ? signal.reason : new Error(String(signal.reason ?? 'aborted'));

/**
 * Validates the data set with the rules of `lits data validate|preprocess` for this spec's preprocessing and
 * label map (every failing file named; one invalid case refuses the whole set, as a silently smaller set would
 * change the split), splits it (the seed's 13 LiTS test ids on the full LiTS set, a seeded split otherwise),
 * and preprocesses every case once into the shared cache.
 *
 * The work runs in a worker thread, so the caller's event loop stays free (the coordinator keeps answering HTTP and
 * renewing its queue locks while a data set is preprocessed); progress callbacks run on the caller's thread, in
 * order. A refused set rejects with `DatasetInvalidError`, a file or cache-folder problem with lits-data's
 * `LitsDataError`, as on one thread. A callback that throws stops the preparation and rejects with its error.
 */
export async function prepareData(spec: ResolvedSpec, opts: PrepareOptions): Promise<PreparedData> {
  const { signal } = opts;
  if (signal?.aborted) throw abortReasonOf(signal);
  const input: PrepareThreadInput = {
    spec,
    datasetPath: opts.datasetPath,
    cacheDir: opts.cacheDir,
    dataSeed: opts.dataSeed,
  };
  const thread = new Worker(THREAD_ENTRY, { workerData: input });
  return new Promise<PreparedData>((resolve, reject) => {
    let settled = false;
    const settle = (outcome: () => void): void => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener('abort', onAbort);
      // A thread that posted its last message ends on its own; one still working is stopped here.
      void thread.terminate();
      outcome();
    };
    const onAbort = (): void => settle(() => reject(abortReasonOf(signal as AbortSignal)));
    signal?.addEventListener('abort', onAbort, { once: true });

    thread.on('message', (message: PrepareThreadMessage) => {
      if (settled) return;
      try {
        if (message.type === 'validate') opts.onValidate?.(message.done, message.total);
        else if (message.type === 'preprocess') opts.onPreprocess?.(message.progress);
        else if (message.type === 'prepared') settle(() => resolve(message.result));
        else settle(() => reject(decodePrepareError(message.error)));
      } catch (error) {
        settle(() => reject(error));
      }
    });
    thread.on('error', (error) => settle(() => reject(error)));
    thread.on('messageerror', (error) => settle(() => reject(error)));
    thread.on('exit', (code) =>
      settle(() =>
        reject(new Error(`the data preparation thread stopped (exit code ${code}) before it finished`)),
      ),
    );
  });
}
