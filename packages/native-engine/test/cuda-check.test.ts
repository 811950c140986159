// The CUDA libraries' dlopen check on its own, against real files: no download, so it runs wherever python3 does.
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findExecutable } from '@lits-ddp/local-services';
import { afterAll, describe, expect, it } from 'vitest';
import { checkCudaLibraries, cudaPinsDigest } from '../src/cuda-libraries.js';
import { CUDA_WHEELS, NativeEngineUnavailableError, type CudaWheelPin } from '../src/index.js';
import { shouldRun } from './requirements.js';

const roots: string[] = [];
afterAll(() => roots.forEach((r) => rmSync(r, { recursive: true, force: true })));

const python = findExecutable('python3');
const suite = 'the CUDA libraries’ dlopen check';

describe.runIf(shouldRun(suite, python ? undefined : 'python3 is not on PATH'))(suite, () => {
  it('names every pinned library that does not load, with the loader’s message', async () => {
    const libDir = mkdtempSync(join(tmpdir(), 'lits-cuda-check-'));
    roots.push(libDir);
    writeFileSync(join(libDir, 'libcudart.so.12'), 'not an ELF file');
    const err = await checkCudaLibraries(python ?? 'python3', libDir, CUDA_WHEELS).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NativeEngineUnavailableError);
    const e = err as NativeEngineUnavailableError;
    expect(e.missing).toBe('cuda-libraries');
    expect(e.message).toMatch(/libcudart\.so\.12 \([^)]*(invalid ELF header|file too short)/);
    expect(e.message).toMatch(/libcudnn\.so\.9 \([^)]*No such file/);
    expect(e.remedy).toMatch(/lits engine install --gpu --force/);
  });

  it('passes a library that loads, and reports the driver without requiring it', async () => {
    // Any real shared library stands in for a pinned one: the check is about loading, not about CUDA.
    const libDir = mkdtempSync(join(tmpdir(), 'lits-cuda-check-'));
    roots.push(libDir);
    const libz = ['/lib/x86_64-linux-gnu/libz.so.1', '/usr/lib/x86_64-linux-gnu/libz.so.1'].find((p) => {
      try {
        copyFileSync(p, join(libDir, 'libstandin.so.1'));
        return true;
      } catch {
        // Not at this path on this system: try the next.
        return false;
      }
    });
    expect(libz, 'libz.so.1 (which cuDNN needs too) is not in /lib or /usr/lib').toBeDefined();
    const standIn: CudaWheelPin = { ...(CUDA_WHEELS[0] as CudaWheelPin), libraries: ['libstandin.so.1'] };
    const check = await checkCudaLibraries(python ?? 'python3', libDir, [standIn]);
    expect(check.loaded).toEqual(['libstandin.so.1']);
    expect(typeof check.driver.found).toBe('boolean');
    if (!check.driver.found) expect(check.driver.detail).toMatch(/libcuda\.so\.1/);
  });

  it('a different pin set has a different digest (an addon built from other wheels is stale)', () => {
    const changed = CUDA_WHEELS.map((w, i) => (i === 0 ? { ...w, sha256: '0'.repeat(64) } : w));
    expect(cudaPinsDigest(changed)).not.toBe(cudaPinsDigest(CUDA_WHEELS));
    expect(cudaPinsDigest(CUDA_WHEELS)).toMatch(/^[0-9a-f]{64}$/);
  });
});
