import type { Static, TSchema } from 'typebox';
import Value from 'typebox/value';
import { JsonDecodeError } from './errors.js';

export { JsonDecodeError } from './errors.js';

/** Parses `text` and checks it against `schema`; a `JsonDecodeError` naming `source` otherwise. */
export function decodeJson<T extends TSchema>(schema: T, text: string, source: string): Static<T> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new JsonDecodeError(source, `not valid JSON (${(err as Error).message})`);
  }
  return checkJson(schema, value, source);
}

/** Checks an already-parsed value against `schema`; a `JsonDecodeError` naming `source` otherwise. */
export function checkJson<T extends TSchema>(schema: T, value: unknown, source: string): Static<T> {
  if (Value.Check(schema, value)) return value as Static<T>;
  const [first] = Value.Errors(schema, value);
  const where = first?.instancePath ? `field ${first.instancePath}` : 'the value';
  throw new JsonDecodeError(source, `${where} ${first?.message ?? 'does not match its schema'}`);
}
