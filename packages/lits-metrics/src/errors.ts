import { LitsError } from '@lits-ddp/errors';

/** Bad input for an evaluation: the message names every file involved and the reason, on one line. */
export class EvaluationError extends LitsError {
  constructor(
    message: string,
    readonly files: readonly string[],
    options?: { cause?: unknown },
  ) {
    super('EVALUATION_INPUT_INVALID', message, options);
  }
}
