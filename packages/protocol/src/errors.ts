import { LitsError } from '@lits-ddp/errors';

/**
 * JSON read from Redis or disk that does not match its schema: `source` names where it came from
 * (`run plan lits:run:<id>:plan`, `runs/<id>/split.json`), the message names the first bad field.
 */
export class JsonDecodeError extends LitsError {
  constructor(
    readonly source: string,
    readonly problem: string,
  ) {
    super('JSON_INVALID', `${source}: ${problem}`);
  }
}
