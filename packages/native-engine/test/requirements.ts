import { errorMessage } from '@lits-ddp/errors';
import { findExecutable } from '@lits-ddp/local-services';
import { locateTfjsNode } from '../src/index.js';
import { platformProblem } from '../src/toolchain.js';

const strict = process.env.LITS_STRICT_TESTS === '1';

/** Why the tests that build the engine cannot run here, or undefined when they can. */
export function buildUnavailable(): string | undefined {
  const platform = platformProblem();
  if (platform) return platform;
  try {
    locateTfjsNode();
  } catch (err) {
    return errorMessage(err).split('\n')[0];
  }
  const tool = ['python3', 'g++', 'make'].find((t) => !findExecutable(t));
  return tool ? `${tool} is not on PATH` : undefined;
}

/**
 * Whether a suite that needs `reason` absent should run. Under LITS_STRICT_TESTS=1 it always runs
 * (and fails on the missing requirement); elsewhere it skips with the reason printed.
 */
export function shouldRun(suite: string, reason: string | undefined): boolean {
  if (!reason || strict) return true;
  process.stderr.write(`skipping "${suite}": ${reason}\n`);
  return false;
}

/**
 * Why the GPU engine's install test does not run here, or undefined when it does. It downloads 2.4 GB and
 * needs about 6.5 GB of disk on a cold cache, so it runs only when asked: LITS_GPU_ENGINE_TESTS=1, or
 * LITS_STRICT_TESTS=1 (our CI), where nothing skips.
 */
export function gpuBuildUnavailable(): string | undefined {
  if (process.env.LITS_GPU_ENGINE_TESTS !== '1' && !strict) {
    return 'set LITS_GPU_ENGINE_TESTS=1 (or LITS_STRICT_TESTS=1) to run it: a cold cache downloads 2.4 GB from PyPI';
  }
  const platform = platformProblem();
  if (platform) return platform;
  try {
    locateTfjsNode('gpu');
  } catch (err) {
    return errorMessage(err).split('\n')[0];
  }
  const tool = ['python3', 'g++', 'make'].find((t) => !findExecutable(t));
  return tool ? `${tool} is not on PATH` : undefined;
}
