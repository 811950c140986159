import { describe, expect, it } from 'vitest';
import {
  CollectiveKeys,
  collectiveClientName,
  encodeFrameHeader,
  frameChunkCount,
  parseAbortRecord,
  parseFrameHeader,
  parseProgressRecord,
  rankOfClientName,
  validateRunId,
} from '@lits-ddp/protocol';

describe('collective keys and messages (packages/protocol)', () => {
  it('namespaces keys by run, generation, sequence, op, phase, step, chunk and edge', () => {
    const keys = new CollectiveKeys('run-1', 3, 'lits');
    expect(keys.base).toBe('lits:run:run-1:coll:g3');
    expect(keys.abort).toBe('lits:run:run-1:coll:g3:abort');
    expect(keys.progress).toBe('lits:run:run-1:coll:g3:progress');
    expect(
      keys.message({ sequence: 12, op: 'allreduce-sum', phase: 'rs', step: 1, chunk: 4, from: 2, to: 3 }),
    ).toBe('lits:run:run-1:coll:g3:m:12:allreduce-sum:rs:1:4:2>3');
    expect(keys.pattern).toBe('lits:run:run-1:coll:g3:*');
    expect(CollectiveKeys.runPattern('run-1', 'lits')).toBe('lits:run:run-1:coll:*');
    expect(keys.scratch('star-up', 2)).toBe('lits:run:run-1:coll:g3:x:star-up:2');
    expect(() => new CollectiveKeys('bad id', 0)).toThrow(/runId must be 1-128 characters/);
    expect(() => new CollectiveKeys('ok', -1)).toThrow(/generation must be a non-negative integer/);
    expect(() => validateRunId('a*b')).toThrow(/runId/);
  });

  it('client names carry the rank, and only this run generation matches', () => {
    const name = collectiveClientName('run-1', 3, 17, 'recv0');
    expect(rankOfClientName(name, 'run-1', 3)).toBe(17);
    expect(rankOfClientName(name, 'run-1', 4)).toBeUndefined();
    expect(rankOfClientName(name, 'run-12', 3)).toBeUndefined();
  });

  it('validates abort and progress records read from Redis, naming the field', () => {
    expect(parseAbortRecord('{"by":2,"reason":"x","at":1,"generation":0,"suspects":[1]}', 'k')).toEqual({
      by: 2,
      reason: 'x',
      at: 1,
      generation: 0,
      suspects: [1],
    });
    expect(() => parseAbortRecord('{"by":2,"at":1,"generation":0}', 'k')).toThrow(
      /abort record at k: field "reason"/,
    );
    expect(() => parseAbortRecord('nope', 'k')).toThrow(/abort record at k is not JSON/);
    expect(() => parseProgressRecord('{"sequence":1,"label":"a","state":"x","at":1}', 'of rank 1')).toThrow(
      /progress record of rank 1: field "state"/,
    );
  });

  it('frames: header round trip, chunk count, and bad magic', () => {
    const h = encodeFrameHeader({ totalBytes: 100, chunkBytes: 64 });
    expect(parseFrameHeader(h, 'x')).toEqual({ totalBytes: 100, chunkBytes: 64 });
    expect(frameChunkCount({ totalBytes: 48, chunkBytes: 64 })).toBe(1);
    expect(frameChunkCount({ totalBytes: 49, chunkBytes: 64 })).toBe(2);
    expect(frameChunkCount({ totalBytes: 48 + 128, chunkBytes: 64 })).toBe(3);
    const bad = Buffer.from(h);
    bad[0] = 0;
    expect(() => parseFrameHeader(bad, 'from rank 1')).toThrow(/from rank 1: bad frame magic/);
    expect(() => parseFrameHeader(Buffer.alloc(3), 'y')).toThrow(/shorter than the 16-byte frame header/);
  });
});
