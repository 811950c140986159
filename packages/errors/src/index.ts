/**
 * The base of every error this project throws on purpose. `code` is stable and machine-readable
 * (`DATASET_INVALID`, `PLAN_INVALID`, …), so callers branch on it instead of on message text; the
 * message is one line a user can act on.
 */
export class LitsError extends Error {
  constructor(
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** True when `err` is a `LitsError` with this code. */
export const hasErrorCode = (err: unknown, code: string): err is LitsError =>
  err instanceof LitsError && err.code === code;

/** The message of anything thrown: an Error's message, or the thrown value as text. */
export const errorMessage = (err: unknown): string => (err instanceof Error ? err.message : String(err));
