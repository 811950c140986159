/** Bad input for an evaluation: the message names every file involved and the reason, on one line. */
export class EvaluationError extends Error {
  constructor(
    message: string,
    readonly files: readonly string[],
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'EvaluationError';
  }
}
