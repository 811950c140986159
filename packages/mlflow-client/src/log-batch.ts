import { MlflowValidationError } from './errors.js';
import { MLFLOW_LIMITS, type Metric, type Param, type Tag } from './types.js';
import { toWireJson } from './wire.js';

export interface BatchContent {
  metrics?: Metric[];
  params?: Param[];
  tags?: Tag[];
}

export interface BatchRequest {
  metrics: Metric[];
  params: Param[];
  tags: Tag[];
}

// MLflow (Python) counts lengths in code points; JavaScript's .length counts UTF-16 units.
const codePoints = (text: string): number => {
  let n = 0;
  for (const _ of text) n++;
  return n;
};

export function checkKey(kind: string, key: string): void {
  if (key.length === 0) throw new MlflowValidationError(`${kind} key`, 'must not be empty');
  const length = key.length > MLFLOW_LIMITS.keyLength ? codePoints(key) : key.length;
  if (length > MLFLOW_LIMITS.keyLength) {
    throw new MlflowValidationError(
      `${kind} key "${Array.from(key).slice(0, 40).join('')}…"`,
      `is ${length} characters; MLflow allows ${MLFLOW_LIMITS.keyLength}`,
    );
  }
}

/**
 * Over-long values are cut to MLflow's limit (as the server itself does by default) and reported.
 * Counted and cut in code points, as the server counts, so a surrogate pair is never split.
 */
export function fitValue(
  entity: Tag,
  limit: number,
  onTruncate?: (key: string, length: number) => void,
): Tag {
  if (entity.value.length <= limit) return entity;
  const points = Array.from(entity.value);
  if (points.length <= limit) return entity;
  onTruncate?.(entity.key, points.length);
  return { key: entity.key, value: points.slice(0, limit).join('') };
}

/** UTF-8 bytes of one entity inside a log-batch body, as sent, with room for the separating comma. */
export const wireSizeOf = (entity: Metric | Tag): number => Buffer.byteLength(toWireJson(entity), 'utf8') + 1;

// The body's frame (`{"run_id":"…","metrics":[],…}`) plus a margin below MLflow's 1 MB check.
const FRAME_BYTES = 64;
const MARGIN_BYTES = 1024;
const PER_KIND = {
  metrics: MLFLOW_LIMITS.metricsPerBatch,
  params: MLFLOW_LIMITS.paramsPerBatch,
  tags: MLFLOW_LIMITS.tagsPerBatch,
} as const;

/** What one log-batch request already holds, against MLflow's per-request limits. */
export class RequestBudget {
  private readonly counts = { metrics: 0, params: 0, tags: 0 };
  private entities = 0;
  private bytes = FRAME_BYTES;

  /** Counts the entity in when it fits; an empty request takes any one entity. */
  tryAdd(kind: keyof BatchRequest, entity: Metric | Tag): boolean {
    const size = wireSizeOf(entity);
    if (
      this.entities > 0 &&
      (this.counts[kind] >= PER_KIND[kind] ||
        this.entities >= MLFLOW_LIMITS.entitiesPerBatch ||
        this.bytes + size > MLFLOW_LIMITS.batchBytes - MARGIN_BYTES)
    )
      return false;
    this.counts[kind]++;
    this.entities++;
    this.bytes += size;
    return true;
  }
}

/**
 * Splits one logical batch into requests the server accepts: at most 1000 metrics, 100 params,
 * 100 tags and 1000 entities in all, and a body under 1 MB (UTF-8 bytes). Order within each kind is kept.
 */
export function splitBatch(content: BatchContent): BatchRequest[] {
  const requests: BatchRequest[] = [];
  let cur: BatchRequest = { metrics: [], params: [], tags: [] };
  let budget = new RequestBudget();
  const push = <K extends keyof BatchRequest>(kind: K, entity: BatchRequest[K][number]): void => {
    if (!budget.tryAdd(kind, entity)) {
      requests.push(cur);
      cur = { metrics: [], params: [], tags: [] };
      budget = new RequestBudget();
      budget.tryAdd(kind, entity);
    }
    (cur[kind] as BatchRequest[K][number][]).push(entity);
  };
  for (const p of content.params ?? []) push('params', p);
  for (const t of content.tags ?? []) push('tags', t);
  for (const m of content.metrics ?? []) push('metrics', m);
  if (cur.metrics.length + cur.params.length + cur.tags.length > 0) requests.push(cur);
  return requests;
}
