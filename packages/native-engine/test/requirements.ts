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
