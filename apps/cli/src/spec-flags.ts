import { readFile } from 'node:fs/promises';
import Type from 'typebox';
import { errorMessage } from '@lits-ddp/errors';
import { decodeJson, ExperimentSpecInput } from '@lits-ddp/protocol';
import { UsageError } from './errors.js';

/** A spec flag given on the command line, e.g. `--max_epochs 5` or `--dropout-rate=0.1`. */
function schemaTypeOf(field: string): string | undefined {
  const props = (
    ExperimentSpecInput as unknown as { properties: Record<string, { type?: string; anyOf?: unknown[] }> }
  ).properties;
  const schema = props[field];
  if (!schema) return undefined;
  return schema.type ?? (schema.anyOf ? 'string' : undefined);
}

/**
 * A spec file is any JSON object here: `resolveSpec` checks its fields afterwards, together with the flags, and
 * names each bad one.
 */
const SpecFileJson = Type.Record(Type.String(), Type.Unknown());

/** The JSON object of a spec file; a `UsageError` naming the file when it cannot be read or is not an object. */
export async function readSpecFile(file: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new UsageError(`${file}: ${errorMessage(err)}`, { cause: err });
  }
  try {
    return decodeJson(SpecFileJson, text, file);
  } catch (err) {
    // A bad file is a bad command line; the decoder's message already starts with the file name.
    throw new UsageError(errorMessage(err), { cause: err });
  }
}

/**
 * Builds a raw spec from `--config FILE` plus `--<field> <value>` flags (flags win). Values are
 * coerced by the schema type of the field; the spec's own validation reports the rest.
 */
export async function specFromArgs(
  args: string[],
  extraFlags: Set<string>,
): Promise<{
  spec: Record<string, unknown>;
  rest: Record<string, string | boolean>;
}> {
  const spec: Record<string, unknown> = {};
  const rest: Record<string, string | boolean> = {};
  const flags: Array<[string, string | undefined]> = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    if (!arg.startsWith('--')) throw new UsageError(`unexpected argument "${arg}"`);
    const eq = arg.indexOf('=');
    const name = eq > 0 ? arg.slice(2, eq) : arg.slice(2);
    const inline = eq > 0 ? arg.slice(eq + 1) : undefined;
    const next = args[i + 1];
    if (inline !== undefined) flags.push([name, inline]);
    else if (next !== undefined && !next.startsWith('--')) {
      flags.push([name, next]);
      i++;
    } else flags.push([name, undefined]);
  }
  for (const [name, value] of flags) {
    if (name === 'config') {
      if (!value) throw new UsageError('--config needs a file');
      Object.assign(spec, await readSpecFile(value));
    }
  }
  for (const [name, value] of flags) {
    if (name === 'config') continue;
    if (extraFlags.has(name)) {
      rest[name] = value ?? true;
      continue;
    }
    const type = schemaTypeOf(name);
    if (!type)
      throw new UsageError(`unknown flag --${name} (not a spec field nor an option of this command)`);
    if (value === undefined) throw new UsageError(`--${name} needs a value`);
    if (type === 'integer' || type === 'number') {
      const n = Number(value);
      spec[name] = Number.isNaN(n) ? value : n;
    } else spec[name] = value;
  }
  return { spec, rest };
}
