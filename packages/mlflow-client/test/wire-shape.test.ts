import { describe, expect, it } from 'vitest';
import { RESPONSE_SHAPES } from '../src/wire.js';
import { responseShapeProblem } from '../src/wire-shape.js';

describe('response shape check', () => {
  it('accepts what MLflow sends: int64s as strings, "NaN" values, absent and null fields', () => {
    const run = {
      info: { run_id: 'r', start_time: '1700000000000', end_time: null, status: 'RUNNING' },
      data: { metrics: [{ key: 'loss', value: 'NaN', timestamp: 1, step: '3' }], tags: [] },
    };
    expect(responseShapeProblem({ runs: [run], next_page_token: 'x' }, RESPONSE_SHAPES.runs)).toBeUndefined();
    expect(responseShapeProblem({}, RESPONSE_SHAPES.runs)).toBeUndefined();
    expect(responseShapeProblem({ run: { extra: [1] } }, RESPONSE_SHAPES.run)).toBeUndefined();
  });

  it('names the first field that does not fit', () => {
    expect(responseShapeProblem({ runs: {} }, RESPONSE_SHAPES.runs)).toBe(
      'field runs must be an array, got an object',
    );
    expect(responseShapeProblem({ runs: [{ info: { start_time: 'soon' } }] }, RESPONSE_SHAPES.runs)).toBe(
      'field runs[0].info.start_time must be a number, got the string "soon"',
    );
    expect(responseShapeProblem({ files: [{ is_dir: 'yes' }] }, RESPONSE_SHAPES.files)).toBe(
      'field files[0].is_dir must be a boolean, got the string "yes"',
    );
    expect(responseShapeProblem([1], RESPONSE_SHAPES.files)).toBe(
      'the response must be a JSON object, got an array',
    );
  });
});
