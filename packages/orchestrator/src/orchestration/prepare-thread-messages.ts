// What crosses between `prepareData` and its worker thread. Structured cloning keeps plain data but not classes: an
// Error arrives as a bare Error without its own fields, so errors travel as data and are rebuilt as the classes
// callers test for (`DatasetInvalidError` with its problems, `LitsDataError` with its file and reason).
import { LitsDataError, type PreprocessProgress } from '@lits-ddp/lits-data';
import type { ResolvedSpec } from '@lits-ddp/protocol';
import { DatasetInvalidError } from '../errors.js';
import type { PreparedData } from './data-preparation.js';

/** The thread's `workerData`. */
export interface PrepareThreadInput {
  spec: ResolvedSpec;
  datasetPath: string;
  cacheDir: string;
  dataSeed: number;
}

export type PrepareThreadError =
  | { kind: 'dataset-invalid'; root: string; problems: DatasetInvalidError['problems'] }
  | { kind: 'lits-data'; file: string; reason: string; stack?: string; cause?: PrepareThreadError }
  | {
      kind: 'error';
      name: string;
      message: string;
      code?: string;
      stack?: string;
      cause?: PrepareThreadError;
    };

/** Thread → caller, in the order they happen; `prepared` or `failed` is the last. */
export type PrepareThreadMessage =
  | { type: 'validate'; done: number; total: number }
  | { type: 'preprocess'; progress: PreprocessProgress }
  | { type: 'prepared'; result: PreparedData }
  | { type: 'failed'; error: PrepareThreadError };

// A cause chain is short (an fs error under a LitsDataError); the cap only guards against a cycle.
const MAX_CAUSE_DEPTH = 4;

/** `error` as data that survives `postMessage`, its class told by `kind`. */
export function encodePrepareError(error: unknown, depth = 0): PrepareThreadError {
  const cause =
    error instanceof Error && error.cause !== undefined && depth < MAX_CAUSE_DEPTH
      ? { cause: encodePrepareError(error.cause, depth + 1) }
      : {};
  const stack = error instanceof Error && error.stack !== undefined ? { stack: error.stack } : {};
  if (error instanceof DatasetInvalidError)
    return { kind: 'dataset-invalid', root: error.root, problems: error.problems };
  if (error instanceof LitsDataError)
    return { kind: 'lits-data', file: error.file, reason: error.reason, ...stack, ...cause };
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return {
      kind: 'error',
      name: error.name,
      message: error.message,
      ...(typeof code === 'string' ? { code } : {}),
      ...stack,
      ...cause,
    };
  }
  return { kind: 'error', name: 'Error', message: String(error) };
}

/** The error `encodePrepareError` encoded, as its class again; its stack is the thread's, where it was thrown. */
export function decodePrepareError(wire: PrepareThreadError): Error {
  if (wire.kind === 'dataset-invalid') return new DatasetInvalidError(wire.root, wire.problems);
  const options = wire.cause ? { cause: decodePrepareError(wire.cause) } : undefined;
  const error =
    wire.kind === 'lits-data'
      ? new LitsDataError(wire.file, wire.reason, options)
      : Object.assign(new Error(wire.message, options), {
          name: wire.name,
          ...(wire.code !== undefined ? { code: wire.code } : {}),
        });
  if (wire.stack !== undefined) error.stack = wire.stack;
  return error;
}
