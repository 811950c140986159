// This package must not depend on @lits-ddp/protocol (its schema-checked decoder), so the few JSON files
// and lines it reads are checked here: flat records of strings, numbers, booleans and lists of strings.
import { errorMessage } from '@lits-ddp/errors';

export type FieldType = 'string' | 'number' | 'boolean' | 'string[]';

/** The value type a record field spec stands for. */
export type RecordOf<F extends Record<string, FieldType>> = {
  -readonly [K in keyof F]: F[K] extends 'string'
    ? string
    : F[K] extends 'number'
      ? number
      : F[K] extends 'string[]'
        ? string[]
        : boolean;
};

/** Why `value` is not an object whose `fields` all have their types (the first bad one), or undefined. */
export function recordProblem(value: unknown, fields: Record<string, FieldType>): string | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'not a JSON object';
  const record = value as Record<string, unknown>;
  for (const [name, type] of Object.entries(fields)) {
    const v = record[name];
    const ok =
      type === 'string[]'
        ? Array.isArray(v) && v.every((x) => typeof x === 'string')
        : typeof v === type && (type !== 'number' || Number.isFinite(v));
    if (!ok)
      return `field "${name}" must be a ${type}, got ${v === undefined ? 'nothing' : JSON.stringify(v)}`;
  }
  return undefined;
}

/** `text` parsed as such a record, or why it is not one (not JSON, or the first bad field). */
export function parseRecord<F extends Record<string, FieldType>>(
  text: string,
  fields: F,
): { record: RecordOf<F> } | { problem: string } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return { problem: `not valid JSON (${errorMessage(err)})` };
  }
  const problem = recordProblem(value, fields);
  return problem ? { problem } : { record: value as RecordOf<F> };
}
