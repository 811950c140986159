import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readTokens, resolvePort } from '../src/server/serve-cli.js';

const A = 'token-a-0123456789abcdef';
const B = 'token-b-0123456789abcdef';
const C = 'token-c-0123456789abcdef';

describe('readTokens: LITS_API_TOKEN and the token file', () => {
  let dir: string;
  const file = async (name: string, text: string): Promise<string> => {
    const path = join(dir, name);
    await writeFile(path, text);
    return path;
  };
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lits-tokens-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('splits LITS_API_TOKEN on commas, trimming spaces and dropping empty parts', () => {
    expect(readTokens(A, undefined)).toEqual([A]);
    expect(readTokens(` ${A} ,${B},, ${C},`, undefined)).toEqual([A, B, C]);
    expect(readTokens(undefined, undefined)).toEqual([]);
    expect(readTokens(' , ', undefined)).toEqual([]);
  });

  it('reads one token a line from the file, skipping comments and blank lines, after the env tokens', async () => {
    const path = await file('tokens', `# team tokens\n${B}\r\n\n   # rotated 2024\n  ${C}  \n`);
    expect(readTokens(A, path)).toEqual([A, B, C]);
    expect(readTokens(undefined, path)).toEqual([B, C]);
  });

  it('refuses an empty file, a file of comments only and a missing file, naming the file', async () => {
    const empty = await file('empty', '');
    expect(() => readTokens(A, empty)).toThrow(`token file ${empty} holds no token`);
    const comments = await file('comments', '# nothing here yet\n\n#\n');
    expect(() => readTokens(undefined, comments)).toThrow(`token file ${comments} holds no token`);
    const missing = join(dir, 'missing');
    expect(() => readTokens(A, missing)).toThrow(new RegExp(`^token file ${missing}: ENOENT`));
  });

  it('refuses a short token, or one with spaces, saying where it came from without echoing it', async () => {
    const short = 'short-token';
    expect(() => readTokens(`${A},${short}`, undefined)).toThrow(
      'LITS_API_TOKEN token 2: API tokens must be at least 16 characters without spaces',
    );
    const message = (() => {
      try {
        readTokens(short, undefined);
        return 'accepted';
      } catch (err) {
        return (err as Error).message;
      }
    })();
    expect(message).toMatch(/^LITS_API_TOKEN token 1: /);
    expect(message).not.toContain(short);
    const path = await file('weak', `${A}\n# fine so far\nhas a space in it ok\n`);
    expect(() => readTokens(undefined, path)).toThrow(`token file ${path} line 3: API tokens must be`);
    const fifteen = 'x'.repeat(15);
    expect(() => readTokens(fifteen, undefined)).toThrow(/at least 16/);
    expect(readTokens('x'.repeat(16), undefined)).toEqual(['x'.repeat(16)]);
  });
});

describe('resolvePort: --port, then PORT, then 8080', () => {
  it('takes the flag over PORT, PORT over the default', () => {
    expect(resolvePort(undefined, undefined)).toBe(8080);
    expect(resolvePort(undefined, '')).toBe(8080);
    expect(resolvePort(undefined, '9090')).toBe(9090);
    expect(resolvePort(undefined, ' 9090 ')).toBe(9090);
    expect(resolvePort('7070', '9090')).toBe(7070);
    expect(resolvePort('65535', undefined)).toBe(65535);
    expect(resolvePort('1', undefined)).toBe(1);
  });

  it('refuses what is not a port, naming the flag or the env var it came from', () => {
    for (const bad of ['0', '65536', '80.5', '-1', 'http', '1e3', '0x50'])
      expect(() => resolvePort(undefined, bad), bad).toThrow(
        `PORT must be a port number from 1 to 65535, got ${JSON.stringify(bad)}`,
      );
    expect(() => resolvePort('abc', '9090')).toThrow(
      '--port must be a port number from 1 to 65535, got "abc"',
    );
    expect(() => resolvePort('', '9090')).toThrow('--port must be a port number');
  });
});
