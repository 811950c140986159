import { Compile } from 'typebox/compile';
import Value from 'typebox/value';
import { parseLabelMapText } from './label-map.js';
import { ExperimentSpecInput, type ResolvedSpec } from './spec.js';

/** One problem with a submitted spec, located by a JSON pointer such as `/lr`. */
export interface SpecFieldError {
  path: string;
  message: string;
}

export type SpecResult = { ok: true; spec: ResolvedSpec } | { ok: false; errors: SpecFieldError[] };

interface RawError {
  keyword: string;
  instancePath: string;
  schemaPath: string;
  params: Record<string, unknown>;
  message: string;
}

/**
 * Compiled once: a valid spec (nearly every submission) is accepted by one generated check, and the
 * error list, which TypeBox builds by walking the schema, is only built for an invalid one. Building
 * it for every spec was the largest single cost of a POST /v1/experiments (issue 18, finding 8).
 */
const specInput = Compile(ExperimentSpecInput);

/** The fields resolveSpec always sets, derived from others when a spec leaves them out. */
const DERIVED_FIELDS = ['workers', 'min-workers', 'max-workers', 'global-batch-size'] as const;

/**
 * Every field's default, and a slot for each derived field, computed once. The spec is flat (primitive
 * values, no unknown fields), so a checked spec with its defaults is one copy of this object with the given
 * fields written over it. Built by Object.fromEntries, it has V8's fast properties: Value.Default's result
 * is a dictionary-mode object, each copy of which cost 6 µs, and adding the derived fields to a copy made
 * a new hidden class per spec (8 µs more); both were most of a POST's spec check (issue 18, finding 8).
 */
const SPEC_TEMPLATE: Readonly<Record<string, unknown>> = Object.fromEntries([
  ...Object.entries(Value.Default(ExperimentSpecInput, {}) as Record<string, unknown>),
  ...DERIVED_FIELDS.map((field) => [field, undefined]),
]);

/**
 * The checked spec with its defaults: a field left out, or given as undefined by a program, gets its default.
 * The derived fields stay undefined here for resolveSpec to fill.
 */
function withDefaults(raw: object): Record<string, unknown> {
  const out: Record<string, unknown> = { ...SPEC_TEMPLATE };
  const given = raw as Record<string, unknown>;
  for (const key of Object.keys(given)) {
    const value = given[key];
    if (value !== undefined) out[key] = value;
  }
  return out;
}

/** TypeBox errors → one readable message per field (unions of literals say which values are allowed). */
function schemaErrors(raw: unknown): SpecFieldError[] {
  const byPath = new Map<string, string>();
  const list = [...Value.Errors(ExperimentSpecInput, raw)] as unknown as RawError[];
  for (const e of list) {
    if (e.keyword === 'boolean') continue;
    if (e.keyword === 'additionalProperties') {
      const names = (e.params.additionalProperties as string[] | undefined) ?? [];
      for (const name of names) byPath.set(`${e.instancePath}/${name}`, 'unknown field');
      continue;
    }
    if (e.keyword === 'const') {
      const allowed = list
        .filter((x) => x.keyword === 'const' && x.instancePath === e.instancePath)
        .map((x) => JSON.stringify(x.params.allowedValue));
      byPath.set(e.instancePath, `must be one of ${allowed.join(', ')}`);
      continue;
    }
    if (e.keyword === 'anyOf' && byPath.has(e.instancePath)) continue;
    if (!byPath.has(e.instancePath)) byPath.set(e.instancePath || '/', e.message);
  }
  return [...byPath].map(([path, message]) => ({ path, message }));
}

/** Parses '0.2, 1.0, 2.5' into numbers; undefined when malformed. */
export function parseClassWeights(text: string, nClass: number): number[] | string {
  const parts = text.split(',').map((p) => p.trim());
  if (parts.length !== nClass)
    return `needs ${nClass} comma-separated numbers (one per class), got ${parts.length}`;
  const weights = parts.map(Number);
  if (weights.some((w) => !Number.isFinite(w) || w < 0))
    return `"${text}" holds a value that is not a number ≥ 0`;
  if (weights.reduce((a, b) => a + b, 0) <= 0) return 'weights must not all be 0';
  return weights;
}

/** Validates a submitted spec, fills defaults and checks the rules that span fields. */
export function resolveSpec(raw: unknown): SpecResult {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    return { ok: false, errors: [{ path: '/', message: 'the spec must be a JSON object' }] };
  }
  const errors = specInput.Check(raw) ? [] : schemaErrors(raw);
  if (errors.length > 0) return { ok: false, errors };
  const s = withDefaults(raw) as Partial<ResolvedSpec> & Record<string, unknown>;
  const gpus = s.gpus as number;
  const workers = s.workers ?? Math.max(gpus, 1);
  const minWorkers = s['min-workers'] ?? workers;
  const maxWorkersGiven = s['max-workers'] !== undefined;
  const maxWorkers = s['max-workers'] ?? workers;
  const globalBatch = s['global-batch-size'] ?? (s['training-batch-size'] as number) * Math.max(gpus, 1);
  const micro = s['micro-batch-size'] as number;
  // Written in place (the template has their slots): a spread here would make a new object and shape.
  s.workers = workers;
  s['min-workers'] = minWorkers;
  s['max-workers'] = maxWorkers;
  s['global-batch-size'] = globalBatch;
  const spec = s as ResolvedSpec;

  const weights = parseClassWeights(spec['class-weights'], spec['n-class']);
  if (typeof weights === 'string') errors.push({ path: '/class-weights', message: weights });
  if (globalBatch % micro !== 0) {
    errors.push({
      path: '/micro-batch-size',
      message: `must divide the global batch (${globalBatch} cubes): ${micro} does not`,
    });
  } else if (maxWorkers > globalBatch / micro) {
    // Ranks share a step's micro-batches round-robin (unevenly when N does not divide them): each needs one.
    const [path, value] = maxWorkersGiven ? ['/max-workers', maxWorkers] : ['/workers', workers];
    errors.push({
      path,
      message: `must be at most the ${globalBatch / micro} micro-batches per step (global batch ${globalBatch} / micro-batch ${micro}), got ${value}`,
    });
  }
  if (minWorkers > workers) {
    errors.push({ path: '/min-workers', message: `must be at most workers (${workers}), got ${minWorkers}` });
  }
  if (maxWorkers < workers) {
    errors.push({
      path: '/max-workers',
      message: `must be at least workers (${workers}), got ${maxWorkers}`,
    });
  }
  if (spec['cube-size'] % 4 !== 0) {
    errors.push({
      path: '/cube-size',
      message: `must be divisible by 4 (two stride-2 down-samplings), got ${spec['cube-size']}`,
    });
  }
  const labelMap = spec['label-map'];
  if (labelMap !== undefined) {
    const parsed = parseLabelMapText(labelMap);
    if (!parsed.ok) errors.push({ path: '/label-map', message: parsed.problem });
  }
  if (spec['test-epochs'] > spec.max_epochs) {
    errors.push({
      path: '/test-epochs',
      message: `must be ≤ max_epochs (${spec.max_epochs}) so at least one test epoch picks a best checkpoint`,
    });
  }
  return errors.length > 0 ? { ok: false, errors } : { ok: true, spec };
}

/** Micro-batches per optimiser step (K) of a resolved spec. */
export const microBatchesPerStep = (spec: ResolvedSpec): number =>
  spec['global-batch-size'] / spec['micro-batch-size'];
