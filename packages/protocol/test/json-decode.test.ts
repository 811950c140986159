import Type from 'typebox';
import { describe, expect, it } from 'vitest';
import { decodeJson, JsonDecodeError } from '../src/index.js';

const Plan = Type.Object({ ranks: Type.Array(Type.String()), generation: Type.Integer({ minimum: 1 }) });

describe('decodeJson', () => {
  it('returns the typed value when the JSON matches its schema', () => {
    expect(decodeJson(Plan, '{"ranks":["w1","w2"],"generation":2}', 'plan')).toEqual({
      ranks: ['w1', 'w2'],
      generation: 2,
    });
  });

  it('names the source and the first bad field, with a stable code', () => {
    const bad = (): unknown =>
      decodeJson(Plan, '{"ranks":["w1",3],"generation":2}', 'run plan lits:run:r1:plan');
    expect(bad).toThrow(JsonDecodeError);
    expect(bad).toThrow(/^run plan lits:run:r1:plan: field \/ranks\/1 /);
    try {
      bad();
    } catch (err) {
      expect((err as JsonDecodeError).code).toBe('JSON_INVALID');
    }
  });

  it('names text that is not JSON at all', () => {
    expect(() => decodeJson(Plan, '{"ranks":', 'split.json')).toThrow(/^split\.json: not valid JSON/);
  });
});
