import { describe, expect, it } from 'vitest';
import { errorMessage, hasErrorCode, LitsError } from '../src/index.js';

class PlanInvalidError extends LitsError {
  constructor(detail: string) {
    super('PLAN_INVALID', `run plan: ${detail}`);
  }
}

describe('LitsError', () => {
  it('carries a stable code, the subclass name and the cause', () => {
    const cause = new Error('socket closed');
    const err = new LitsError('REDIS_UNREACHABLE', 'Redis at redis://x:6379 is unreachable', { cause });
    expect(err.code).toBe('REDIS_UNREACHABLE');
    expect(err.name).toBe('LitsError');
    expect(err.cause).toBe(cause);
    const sub = new PlanInvalidError('ranks is missing');
    expect(sub.name).toBe('PlanInvalidError');
    expect(hasErrorCode(sub, 'PLAN_INVALID')).toBe(true);
    expect(hasErrorCode(sub, 'OTHER')).toBe(false);
    expect(hasErrorCode(new Error('x'), 'PLAN_INVALID')).toBe(false);
  });

  it('errorMessage reads an Error, a string and any other thrown value', () => {
    expect(errorMessage(new PlanInvalidError('ranks is missing'))).toBe('run plan: ranks is missing');
    expect(errorMessage('plain text')).toBe('plain text');
    expect(errorMessage(42)).toBe('42');
    expect(errorMessage(undefined)).toBe('undefined');
  });
});
