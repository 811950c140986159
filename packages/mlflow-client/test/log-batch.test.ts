import { describe, expect, it } from 'vitest';
import { MLFLOW_LIMITS, MlflowValidationError, splitBatch, type Metric } from '../src/index.js';
import { checkKey, fitValue } from '../src/log-batch.js';
import { toWireJson } from '../src/wire.js';

// What the transport sends: the same serializer, measured in UTF-8 bytes.
const bodyBytes = (r: object): number =>
  Buffer.byteLength(toWireJson({ run_id: 'x'.repeat(32), ...r }), 'utf8');

const metrics = (n: number, key = 'loss'): Metric[] =>
  Array.from({ length: n }, (_, i) => ({ key, value: i / 7, step: i, timestamp: 1_700_000_000_000 + i }));

describe('splitBatch', () => {
  it('keeps a small batch in one request', () => {
    const reqs = splitBatch({ metrics: metrics(10), params: [{ key: 'lr', value: '1e-4' }] });
    expect(reqs).toHaveLength(1);
    expect(reqs[0]?.metrics).toHaveLength(10);
    expect(reqs[0]?.params).toHaveLength(1);
  });

  it('splits at 1000 metrics, 100 params, 100 tags and 1000 entities, keeping order', () => {
    const params = Array.from({ length: 250 }, (_, i) => ({ key: `p${i}`, value: String(i) }));
    const tags = Array.from({ length: 120 }, (_, i) => ({ key: `t${i}`, value: String(i) }));
    const reqs = splitBatch({ metrics: metrics(2500), params, tags });
    for (const r of reqs) {
      expect(r.metrics.length).toBeLessThanOrEqual(MLFLOW_LIMITS.metricsPerBatch);
      expect(r.params.length).toBeLessThanOrEqual(MLFLOW_LIMITS.paramsPerBatch);
      expect(r.tags.length).toBeLessThanOrEqual(MLFLOW_LIMITS.tagsPerBatch);
      expect(r.metrics.length + r.params.length + r.tags.length).toBeLessThanOrEqual(
        MLFLOW_LIMITS.entitiesPerBatch,
      );
    }
    expect(reqs.flatMap((r) => r.metrics.map((m) => m.step))).toEqual(metrics(2500).map((m) => m.step));
    expect(reqs.flatMap((r) => r.params.map((p) => p.key))).toEqual(params.map((p) => p.key));
    expect(reqs.flatMap((r) => r.tags.map((t) => t.key))).toEqual(tags.map((t) => t.key));
  });

  it('keeps every request body under 1 MB', () => {
    // 100 params of 6000 and 100 tags of 8000 characters fit the count limits but not 1 MB.
    const params = Array.from({ length: 100 }, (_, i) => ({ key: `p${i}`, value: 'x'.repeat(6000) }));
    const tags = Array.from({ length: 100 }, (_, i) => ({ key: `t${i}`, value: 'x'.repeat(8000) }));
    const reqs = splitBatch({ params, tags });
    expect(reqs.length).toBe(2);
    for (const r of reqs) expect(bodyBytes(r)).toBeLessThan(MLFLOW_LIMITS.batchBytes);
  });

  it('counts the 1 MB limit in UTF-8 bytes, not characters', () => {
    // 3-byte '€' values and 4-byte '😀' tags: about 0.9 M characters but 2.1 MB on the wire.
    const params = Array.from({ length: 100 }, (_, i) => ({ key: `p€${i}`, value: '€'.repeat(3000) }));
    const tags = Array.from({ length: 100 }, (_, i) => ({ key: `t😀${i}`, value: '😀'.repeat(3000) }));
    const reqs = splitBatch({ params, tags });
    expect(reqs.length).toBeGreaterThanOrEqual(3);
    for (const r of reqs) expect(bodyBytes(r)).toBeLessThan(MLFLOW_LIMITS.batchBytes);
    expect(reqs.flatMap((r) => r.params.map((p) => p.key))).toEqual(params.map((p) => p.key));
    expect(reqs.flatMap((r) => r.tags.map((t) => t.key))).toEqual(tags.map((t) => t.key));
  });

  it('splits 1000 metrics with 250-character 4-byte keys by bytes', () => {
    const key = (i: number): string => `${i}`.padStart(4, '0') + '𝔵'.repeat(246);
    const ms = Array.from({ length: 1000 }, (_, i) => ({ key: key(i), value: NaN, step: i, timestamp: i }));
    const reqs = splitBatch({ metrics: ms });
    expect(reqs).toHaveLength(2); // ~1.05 MB in all; the old count of UTF-16 units said 0.55 M
    for (const r of reqs) expect(bodyBytes(r)).toBeLessThan(MLFLOW_LIMITS.batchBytes);
    expect(reqs.flatMap((r) => r.metrics.map((m) => m.step))).toEqual(ms.map((m) => m.step));
  });
});

describe('key and value limits', () => {
  it('rejects empty and over-long keys with the field named', () => {
    expect(() => checkKey('metric', '')).toThrow(MlflowValidationError);
    expect(() => checkKey('param', 'k'.repeat(251))).toThrow(/param key .*251 characters; MLflow allows 250/);
    expect(() => checkKey('tag', 'k'.repeat(250))).not.toThrow();
  });

  it('counts key lengths in characters (code points) as MLflow does, not UTF-16 units', () => {
    expect(() => checkKey('metric', '😀'.repeat(250))).not.toThrow();
    expect(() => checkKey('metric', '😀'.repeat(251))).toThrow(/251 characters; MLflow allows 250/);
  });

  it('cuts a multibyte value to the limit in characters without splitting a surrogate pair', () => {
    const seen: Array<[string, number]> = [];
    const out = fitValue({ key: 'note', value: '😀'.repeat(7000) }, 6000, (k, n) => seen.push([k, n]));
    expect(out.value).toBe('😀'.repeat(6000));
    expect(seen).toEqual([['note', 7000]]);
    // 4000 emoji are 8000 UTF-16 units but only 4000 characters: within the limit, kept whole.
    expect(fitValue({ key: 'n', value: '😀'.repeat(4000) }, 6000).value).toHaveLength(8000);
  });

  it('truncates over-long values to the limit and reports it', () => {
    const seen: Array<[string, number]> = [];
    const out = fitValue({ key: 'spec', value: 'v'.repeat(7000) }, 6000, (k, n) => seen.push([k, n]));
    expect(out.value).toHaveLength(6000);
    expect(seen).toEqual([['spec', 7000]]);
  });
});
