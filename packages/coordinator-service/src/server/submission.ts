import { realpathSync } from 'node:fs';
import { dirname, isAbsolute, relative, resolve, sep } from 'node:path';
import { errorMessage } from '@lits-ddp/errors';
import { resolveSpec, type ResolvedSpec, type SpecFieldError } from '@lits-ddp/protocol';
import { isExperimentId } from '../queue/experiment-store.js';

export interface Submission {
  spec: ResolvedSpec;
  id?: string;
  priority: number;
}

const inside = (root: string, path: string): boolean => {
  const rel = relative(root, path);
  return rel === '' || (!rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel));
};

// realpath(3) directly: one system call, no trip through libuv's small thread pool under load.
const realpath = (path: string): string => realpathSync.native(path);

/** Not there (yet): any other failure (a symlink loop, no permission) is a real one. */
const isMissing = (err: unknown): boolean => {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
};

/** The nearest existing ancestor's real path, joined with the rest (for paths still to be created). */
function realpathOfExisting(path: string): string {
  try {
    return realpath(path);
  } catch (err) {
    if (!isMissing(err)) throw err;
    const parent = dirname(path);
    if (parent === path) return path;
    return resolve(realpathOfExisting(parent), relative(parent, path));
  }
}

/**
 * The real path of `root`/`given` when it lies under `root` as written, else undefined. A real path
 * holds no symbolic link, so one under `root` means `root` holds none either and is its own real
 * path: then this one system call is the whole check (the usual case). Otherwise (a root reached
 * through a link, a path that leaves it or is missing) confinePath works it out in full.
 */
function realPathUnderPlainRoot(root: string, given: string, mustExist: boolean): string | undefined {
  const plainRoot = resolve(root);
  const candidate = resolve(plainRoot, given);
  if (!inside(plainRoot, candidate)) return undefined;
  let real: string;
  try {
    real = mustExist ? realpath(candidate) : realpathOfExisting(candidate);
  } catch {
    return undefined;
  }
  return inside(plainRoot, real) ? real : undefined;
}

type Confined = { path: string } | SpecFieldError;
interface ConfineOptions {
  mustExist: boolean;
  rootName: string;
}

/**
 * confinePath's answers in this turn of the event loop, dropped when the turn ends. A burst's submissions
 * are parsed in one turn and nearly all name the same data set: it is confined once, where the path
 * arithmetic and the system call of every submission were a tenth of a POST's event-loop time (issue 18,
 * finding 8). No answer outlives the turn, so none is older than the requests it answers.
 */
const confinedThisTurn = new Map<string, Confined>();

/**
 * Resolves a client-given path inside `root`: relative to it, or absolute under it. `..` segments
 * are refused outright, and the real path (symlinks followed) must stay inside the root too.
 */
export async function confinePath(
  root: string,
  given: string,
  field: string,
  opts: ConfineOptions,
): Promise<Confined> {
  const key = `${root}\0${given}\0${field}\0${opts.mustExist}\0${opts.rootName}`;
  let confined = confinedThisTurn.get(key);
  if (confined === undefined) {
    if (confinedThisTurn.size === 0) setImmediate(() => confinedThisTurn.clear());
    confined = confine(root, given, field, opts);
    confinedThisTurn.set(key, confined);
  }
  return confined;
}

function confine(root: string, given: string, field: string, opts: ConfineOptions): Confined {
  if (given.includes('\0')) return { path: field, message: 'must not contain NUL characters' };
  if (given.split(/[\\/]+/).includes('..')) return { path: field, message: "must not contain '..' segments" };
  const quick = realPathUnderPlainRoot(root, given, opts.mustExist);
  if (quick !== undefined) return { path: quick };
  let realRoot: string;
  let candidate: string;
  let real: string;
  try {
    realRoot = realpathOfExisting(resolve(root));
    candidate = isAbsolute(given) ? resolve(given) : resolve(realRoot, given);
    if (!inside(resolve(root), candidate) && !inside(realRoot, candidate))
      return { path: field, message: `must lie inside the ${opts.rootName} ${root} (got ${given})` };
    real = opts.mustExist ? realpath(candidate) : realpathOfExisting(candidate);
  } catch (err) {
    // The client's path cannot be resolved: its field says why (a 400, never a 500).
    if (opts.mustExist && isMissing(err))
      return { path: field, message: `${given} does not exist in the ${opts.rootName}` };
    return {
      path: field,
      message: `${given} cannot be resolved in the ${opts.rootName}: ${errorMessage(err)}`,
    };
  }
  if (!inside(realRoot, real))
    return { path: field, message: `${given} leaves the ${opts.rootName} through a symbolic link` };
  return { path: real };
}

/**
 * A POST body: the spec itself, or `{spec, id?, priority?}`. Spec errors come from `resolveSpec`
 * with their JSON pointers (prefixed `/spec` in the envelope form), then the paths are confined.
 */
export async function parseSubmission(
  body: unknown,
  roots: { dataRoot: string; home: string },
): Promise<{ ok: true; value: Submission } | { ok: false; errors: SpecFieldError[] }> {
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    return {
      ok: false,
      errors: [{ path: '/', message: 'the body must be a JSON object (the experiment spec)' }],
    };
  const raw = body as Record<string, unknown>;
  const envelope = typeof raw.spec === 'object' && raw.spec !== null && !Array.isArray(raw.spec);
  const prefix = envelope ? '/spec' : '';
  const errors: SpecFieldError[] = [];
  let id: string | undefined;
  let priority = 50;
  if (envelope) {
    for (const k of Object.keys(raw))
      if (!['spec', 'id', 'priority'].includes(k)) errors.push({ path: `/${k}`, message: 'unknown field' });
    if (raw.id !== undefined) {
      if (typeof raw.id !== 'string' || !isExperimentId(raw.id))
        errors.push({
          path: '/id',
          message: 'must start with a letter and hold up to 128 letters, digits, _ . - (no ":")',
        });
      else id = raw.id;
    }
    if (raw.priority !== undefined) {
      if (
        typeof raw.priority !== 'number' ||
        !Number.isInteger(raw.priority) ||
        raw.priority < 0 ||
        raw.priority > 100
      )
        errors.push({ path: '/priority', message: 'must be an integer from 0 to 100' });
      else priority = raw.priority;
    }
  }
  const resolved = resolveSpec(envelope ? raw.spec : raw);
  if (!resolved.ok)
    errors.push(
      ...resolved.errors.map((e) => ({
        path: `${prefix}${e.path === '/' ? '' : e.path}` || '/',
        message: e.message,
      })),
    );
  if (errors.length > 0 || !resolved.ok) return { ok: false, errors };
  const { spec } = resolved;
  const dataset = await confinePath(roots.dataRoot, spec['dataset-path'], `${prefix}/dataset-path`, {
    mustExist: true,
    rootName: 'data root',
  });
  if ('message' in dataset) errors.push(dataset);
  else spec['dataset-path'] = dataset.path;
  if (spec['cache-path'] !== undefined) {
    const cache = await confinePath(roots.home, spec['cache-path'], `${prefix}/cache-path`, {
      mustExist: false,
      rootName: 'coordinator home',
    });
    if ('message' in cache) errors.push(cache);
    else spec['cache-path'] = cache.path;
  }
  if (errors.length > 0) return { ok: false, errors };
  return { ok: true, value: { spec, priority, ...(id ? { id } : {}) } };
}
