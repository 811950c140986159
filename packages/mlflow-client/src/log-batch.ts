import { MlflowValidationError } from './errors.js';
import { MLFLOW_LIMITS, type Metric, type Param, type Tag } from './types.js';

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

export function checkKey(kind: string, key: string): void {
  if (key.length === 0) throw new MlflowValidationError(`${kind} key`, 'must not be empty');
  if (key.length > MLFLOW_LIMITS.keyLength) {
    throw new MlflowValidationError(
      `${kind} key "${key.slice(0, 40)}…"`,
      `is ${key.length} characters; MLflow allows ${MLFLOW_LIMITS.keyLength}`,
    );
  }
}

/** Over-long values are cut to MLflow's limit (as the server itself does by default) and reported. */
export function fitValue(
  entity: Tag,
  limit: number,
  onTruncate?: (key: string, length: number) => void,
): Tag {
  if (entity.value.length <= limit) return entity;
  onTruncate?.(entity.key, entity.value.length);
  return { key: entity.key, value: entity.value.slice(0, limit) };
}

// JSON size of one entity inside a log-batch body, with room for the separating comma.
const sizeOf = (entity: Metric | Tag): number => JSON.stringify(entity).length + 1;

/**
 * Splits one logical batch into requests the server accepts: at most 1000 metrics, 100 params,
 * 100 tags and 1000 entities in all, and a body under 1 MB. Order within each kind is kept.
 */
export function splitBatch(content: BatchContent): BatchRequest[] {
  const requests: BatchRequest[] = [];
  let cur: BatchRequest = { metrics: [], params: [], tags: [] };
  let bytes = 64;
  const count = (): number => cur.metrics.length + cur.params.length + cur.tags.length;
  const push = <K extends keyof BatchRequest>(
    kind: K,
    entity: BatchRequest[K][number],
    perKind: number,
  ): void => {
    const size = sizeOf(entity);
    if (
      cur[kind].length >= perKind ||
      count() >= MLFLOW_LIMITS.entitiesPerBatch ||
      bytes + size > MLFLOW_LIMITS.batchBytes - 1024
    ) {
      requests.push(cur);
      cur = { metrics: [], params: [], tags: [] };
      bytes = 64;
    }
    (cur[kind] as BatchRequest[K][number][]).push(entity);
    bytes += size;
  };
  for (const p of content.params ?? []) push('params', p, MLFLOW_LIMITS.paramsPerBatch);
  for (const t of content.tags ?? []) push('tags', t, MLFLOW_LIMITS.tagsPerBatch);
  for (const m of content.metrics ?? []) push('metrics', m, MLFLOW_LIMITS.metricsPerBatch);
  if (count() > 0) requests.push(cur);
  return requests;
}
