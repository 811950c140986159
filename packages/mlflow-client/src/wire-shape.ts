// A small check of MLflow's JSON responses against the fields this client reads, so a proxy's HTML page or
// an incompatible server is an error naming the endpoint and the field, not a TypeError deep in a converter.

/**
 * What a response field must be when present. Every field is optional: the converters in wire.ts default
 * absent (or null) ones. `number` also takes a numeric string (int64s, and "NaN"/"Infinity" in protobuf JSON).
 */
export type WireShape =
  'string' | 'boolean' | 'number' | readonly [item: WireShape] | { readonly [field: string]: WireShape };

const isList = (shape: WireShape): shape is readonly [WireShape] => Array.isArray(shape);

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

const numeric = (v: unknown): boolean =>
  typeof v === 'number' ||
  (typeof v === 'string' && v.trim() !== '' && (v === 'NaN' || !Number.isNaN(Number(v))));

function describe(v: unknown): string {
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return `the string ${JSON.stringify(v.slice(0, 40))}`;
  return typeof v === 'object' ? 'an object' : `${typeof v} ${String(v)}`;
}

function fieldProblem(value: unknown, shape: WireShape, at: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (shape === 'string' || shape === 'boolean') {
    return typeof value === shape ? undefined : `field ${at} must be a ${shape}, got ${describe(value)}`;
  }
  if (shape === 'number') {
    return numeric(value) ? undefined : `field ${at} must be a number, got ${describe(value)}`;
  }
  if (isList(shape)) {
    if (!Array.isArray(value)) return `field ${at} must be an array, got ${describe(value)}`;
    for (const [i, item] of value.entries()) {
      const problem = fieldProblem(item, shape[0], `${at}[${i}]`);
      if (problem) return problem;
    }
    return undefined;
  }
  if (!isRecord(value)) return `field ${at} must be an object, got ${describe(value)}`;
  return recordProblem(value, shape, `${at}.`);
}

function recordProblem(
  value: Record<string, unknown>,
  shape: { readonly [field: string]: WireShape },
  prefix: string,
): string | undefined {
  for (const [name, fieldShape] of Object.entries(shape)) {
    const problem = fieldProblem(value[name], fieldShape, `${prefix}${name}`);
    if (problem) return problem;
  }
  return undefined;
}

/** Why a parsed response body does not fit `shape` (the first bad field), or undefined when it does. */
export function responseShapeProblem(
  body: unknown,
  shape: { readonly [field: string]: WireShape },
): string | undefined {
  if (!isRecord(body)) return `the response must be a JSON object, got ${describe(body)}`;
  return recordProblem(body, shape, '');
}
