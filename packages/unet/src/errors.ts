// The errors @lits-ddp/unet throws on purpose that a user can meet; callers branch on `code`. Broken internal
// invariants (a parameter missing from the layout, micro-batches averaged out of order) and invalid arguments to
// the API (architecture, loss, Adam, micro-batch validators) stay plain Error / RangeError / TypeError.
import { LitsError } from '@lits-ddp/errors';
import type { EngineKind } from '@lits-ddp/protocol';

/** One engine `loadEngine` tried, and why it did not load. */
export interface EngineAttempt {
  readonly engine: EngineKind;
  readonly packageName: string;
  readonly error: string;
  /** False when the package is simply not installed (an expected miss, not a fallback worth a warning). */
  readonly installed: boolean;
}

/** TFJS_ENGINE, `--engine` or a thread count that is not a valid value. Code `ENGINE_CONFIG_INVALID`. */
export class EngineConfigError extends LitsError {
  constructor(message: string) {
    super('ENGINE_CONFIG_INVALID', message);
  }
}

/**
 * An engine package that loaded but cannot run: it does not export the TensorFlow.js API, or its backend did not
 * start. Code `ENGINE_LOAD_FAILED`. `loadEngine` records it in `attempts` and goes on to the next engine.
 */
export class EngineLoadError extends LitsError {
  constructor(
    readonly packageName: string,
    message: string,
  ) {
    super('ENGINE_LOAD_FAILED', message);
  }
}

/**
 * Native TensorFlow is already loaded in this process with other thread-pool sizes (they are fixed at load).
 * Code `ENGINE_THREADS_PINNED`.
 */
export class EngineThreadsPinnedError extends LitsError {
  constructor(message: string) {
    super('ENGINE_THREADS_PINNED', message);
  }
}

/**
 * No engine of those requested could be loaded; `attempts` says what each one failed with. Code
 * `ENGINE_UNAVAILABLE`.
 */
export class EngineUnavailableError extends LitsError {
  constructor(
    message: string,
    readonly attempts: readonly EngineAttempt[],
  ) {
    super('ENGINE_UNAVAILABLE', message);
  }
}

/** An engine identity read from a checkpoint or Redis that lacks a field or holds a bad one. Code `ENGINE_IDENTITY_INVALID`. */
export class EngineIdentityError extends LitsError {
  constructor(message: string) {
    super('ENGINE_IDENTITY_INVALID', message);
  }
}

/**
 * A checkpoint that cannot be read, is corrupt, or does not fit this build: `path` is the file (checkpoint.json or
 * the blob), the message `checkpoint <path>: <reason>` names the field. Code `CHECKPOINT_INVALID`.
 */
export class CheckpointError extends LitsError {
  constructor(
    readonly path: string,
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super('CHECKPOINT_INVALID', `checkpoint ${path}: ${reason}`, options);
  }
}

/** tfjs did not produce what the export writes (no weight data). Code `MODEL_EXPORT_FAILED`. */
export class ModelExportError extends LitsError {
  constructor(
    readonly dir: string,
    readonly reason: string,
  ) {
    super('MODEL_EXPORT_FAILED', `export to ${dir}: ${reason}`);
  }
}

/**
 * An exported model (model.json + weights) that cannot be read or whose model.json lacks a field or holds a bad
 * one: the message `<file>: <reason>` names the file and the field. Code `EXPORTED_MODEL_INVALID`.
 */
export class ExportedModelError extends LitsError {
  constructor(
    readonly path: string,
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super('EXPORTED_MODEL_INVALID', `${path}: ${reason}`, options);
  }
}

/** A `lits-unet` command line that is wrong (unknown command, missing or bad flag); exit code 2. Code `USAGE_INVALID`. */
export class UnetUsageError extends LitsError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('USAGE_INVALID', message, options);
  }
}
