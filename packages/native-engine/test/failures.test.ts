import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findExecutable } from '@lits-ddp/local-services';
import { afterAll, describe, expect, it } from 'vitest';
import {
  ensureNativeEngine,
  NativeEngineUnavailableError,
  TENSORFLOW_WHEEL,
  TENSORFLOW_WHEEL_SHA256,
} from '../src/index.js';
import { copyTfjsNode } from './package-copy.js';
import { buildUnavailable, shouldRun } from './requirements.js';

const roots: string[] = [];
afterAll(() => roots.forEach((r) => rmSync(r, { recursive: true, force: true })));

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'lits-native-engine-'));
  roots.push(dir);
  return dir;
}

/** The interpreter itself: pyenv-style shims on PATH need the rest of PATH to work. */
function realPython(): string {
  const r = spawnSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' });
  return r.stdout.trim();
}

async function failure(run: Promise<unknown>): Promise<NativeEngineUnavailableError> {
  try {
    await run;
  } catch (err) {
    if (err instanceof NativeEngineUnavailableError) return err;
    throw err;
  }
  throw new Error('expected NativeEngineUnavailableError, but it succeeded');
}

const suite = 'failures name what is missing and how to get it';

describe.runIf(shouldRun(suite, buildUnavailable()))(suite, () => {
  it('names g++ and the apt-get command when PATH has node, python3 and make but no g++', async () => {
    const bin = join(tempDir(), 'bin');
    mkdirSync(bin);
    symlinkSync(process.execPath, join(bin, 'node'));
    symlinkSync(realPython(), join(bin, 'python3'));
    symlinkSync(findExecutable('make') ?? '/usr/bin/make', join(bin, 'make'));
    const packageDir = copyTfjsNode(tempDir());
    const path = process.env.PATH;
    process.env.PATH = bin;
    let err: NativeEngineUnavailableError;
    try {
      err = await failure(ensureNativeEngine({ packageDir }));
    } finally {
      process.env.PATH = path;
    }
    expect(err.missing).toBe('g++');
    expect(err.message).toContain('g++ not found on PATH');
    expect(err.remedy).toBe('Install them: apt-get install -y g++ make');
    expect(err.message).toContain('apt-get install -y g++ make');
    // Nothing was touched before the check failed.
    expect(readdirSync(packageDir)).not.toContain('deps');
  });

  it('rejects a wheel whose sha256 is not the pinned one, naming both hashes and the wheel', async () => {
    const cacheDir = tempDir();
    const packageDir = copyTfjsNode(tempDir());
    const wrong = 'f'.repeat(64);
    const err = await failure(ensureNativeEngine({ packageDir, cacheDir, expectedSha256: wrong }));
    expect(err.missing).toBe('wheel-sha256');
    expect(err.message).toContain(TENSORFLOW_WHEEL);
    expect(err.message).toContain(`has sha256 ${TENSORFLOW_WHEEL_SHA256}, expected ${wrong}`);
    // No half-extracted cache is left to be mistaken for a good one, and the package is untouched.
    expect(readdirSync(cacheDir)).toEqual([]);
    expect(readdirSync(packageDir)).not.toContain('deps');
  });
});
