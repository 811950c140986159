import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { errorMessage } from '@lits-ddp/errors';
import { DeployFileError } from './errors.js';

export type ComposeEnv = Readonly<Record<string, string | undefined>>;

const VARIABLE =
  /\$(\$|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])((?:[^{}]|\{[^{}]*\})*))?\}|([A-Za-z_][A-Za-z0-9_]*))/g;

/**
 * Compose's interpolation of one string: `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`,
 * `${VAR:?error}`, `${VAR?error}`, `${VAR:+alt}`, `${VAR+alt}`, and `$$` for a literal `$`.
 */
export function interpolate(value: string, env: ComposeEnv, where = ''): string {
  return value.replace(
    VARIABLE,
    (whole, dollar: string, name?: string, op?: string, arg?: string, bare?: string) => {
      if (dollar === '$') return '$';
      if (bare) return env[bare] ?? '';
      const v = env[name as string];
      const unsetOrEmpty = v === undefined || v === '';
      switch (op) {
        case undefined:
          return v ?? '';
        case ':-':
          return unsetOrEmpty ? interpolate(arg ?? '', env, where) : (v as string);
        case '-':
          return v === undefined ? interpolate(arg ?? '', env, where) : v;
        case ':?':
        case '?':
          if (op === ':?' ? unsetOrEmpty : v === undefined)
            throw new DeployFileError(where, `required variable ${name} is missing: ${arg ?? ''}`.trim());
          return v as string;
        case ':+':
          return unsetOrEmpty ? '' : interpolate(arg ?? '', env, where);
        case '+':
          return v === undefined ? '' : interpolate(arg ?? '', env, where);
        default:
          throw new DeployFileError(where, `cannot interpolate ${whole}`);
      }
    },
  );
}

function interpolateTree(node: unknown, env: ComposeEnv, path: string): unknown {
  if (typeof node === 'string') return interpolate(node, env, path);
  if (Array.isArray(node)) return node.map((v, i) => interpolateTree(v, env, `${path}/${i}`));
  if (node && typeof node === 'object')
    return Object.fromEntries(
      Object.entries(node).map(([k, v]) => [k, interpolateTree(v, env, `${path}/${k}`)]),
    );
  return node;
}

/** Reads a `.env` file the way compose does for simple `KEY=value` lines (comments and blanks skipped). */
export function readEnvFile(file: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [i, line] of readFileSync(file, 'utf8').split('\n').entries()) {
    if (/^\s*(#|$)/.test(line)) continue;
    const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$/.exec(line);
    if (!m) throw new DeployFileError(`${file}:${i + 1}`, 'expected KEY=value');
    out[m[1] as string] = (m[2] as string).replace(/^(['"])(.*)\1$/, '$2');
  }
  return out;
}

/**
 * Reads a compose file as `docker compose` does before validating it: YAML 1.2 with `<<` merge keys
 * resolved, then `${…}` interpolated from `env` (a missing `${VAR:?…}` is an error naming the field).
 */
export function readCompose(file: string, env: ComposeEnv = {}): Record<string, unknown> {
  let doc: unknown;
  try {
    doc = parse(readFileSync(file, 'utf8'), { merge: true, uniqueKeys: true });
  } catch (err) {
    throw new DeployFileError(file, errorMessage(err), { cause: err });
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw new DeployFileError(file, 'not a mapping');
  return interpolateTree(doc, env, file) as Record<string, unknown>;
}

/**
 * Merges override files onto a base the way compose does for the fields our files use: mappings
 * merge, `command`/`entrypoint` and other sequences are replaced, except `volumes`/`ports`/
 * `environment` lists, which are concatenated.
 */
export function mergeCompose(
  base: Record<string, unknown>,
  ...overrides: Record<string, unknown>[]
): Record<string, unknown> {
  const merge = (a: unknown, b: unknown, key: string): unknown => {
    if (Array.isArray(a) && Array.isArray(b)) return ['volumes', 'ports'].includes(key) ? [...a, ...b] : b;
    if (a && b && typeof a === 'object' && typeof b === 'object' && !Array.isArray(a) && !Array.isArray(b)) {
      const out: Record<string, unknown> = { ...(a as Record<string, unknown>) };
      for (const [k, v] of Object.entries(b)) out[k] = k in out ? merge(out[k], v, k) : v;
      return out;
    }
    return b;
  };
  return overrides.reduce<Record<string, unknown>>(
    (acc, o) => merge(acc, o, '') as Record<string, unknown>,
    base,
  );
}
