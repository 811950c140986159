// For test files that exercise the native engine: run where it is built, skip with the reason where it is not,
// and never skip in our own CI (.ci/run sets LITS_STRICT_TESTS=1). Not CI=true: a user's clone on a runner that
// cannot build the engine (no compiler, not linux-x64) sets that too, and its suite must still pass on cpu.
import { nativeEngineStatus } from './engine.js';
import { NativeEngineRequiredError } from './errors.js';
import type { EngineFlavour } from './flavour.js';

const strict = (): boolean => process.env.LITS_STRICT_TESTS === '1';
const printed = new Set<string>();

/**
 * True when the native engine is provisioned here. Otherwise prints why the `what` tests skip (once per
 * reason) and returns false, or throws under LITS_STRICT_TESTS=1 so the file fails instead of skipping.
 */
export function nativeEngineReady(what = 'native-engine tests', flavour: EngineFlavour = 'cpu'): boolean {
  const status = nativeEngineStatus({ flavour });
  if (status.ready) return true;
  const reason = status.reason ?? 'unknown';
  if (strict())
    throw new NativeEngineRequiredError(
      `LITS_STRICT_TESTS=1 but the native engine is not ready (${reason}); ${what} must run`,
    );
  if (!printed.has(reason)) {
    printed.add(reason);
    process.stderr.write(
      `skipping ${what}: ${reason} (build it with: npm run lits -- engine install${flavour === 'gpu' ? ' --gpu' : ''})\n`,
    );
  }
  return false;
}
