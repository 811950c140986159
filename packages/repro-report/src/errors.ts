import { LitsError } from '@lits-ddp/errors';

/**
 * A runs.json (or one record in it) that the report cannot use: the message names the file, the run's position and
 * the field (`runs.json: runs[4].iou: …`). Code `RUN_RECORD_INVALID`.
 */
export class RunRecordError extends LitsError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('RUN_RECORD_INVALID', message, options);
  }
}
