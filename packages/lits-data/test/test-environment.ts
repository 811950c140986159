import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

/** The repository root (packages/lits-data/test → ../../..). */
export const repoRoot = resolve(here, '..', '..', '..');

/** The built CLI; tests run after `build` (turbo's test task depends on it). */
export const cliPath = resolve(here, '..', 'dist', 'cli.js');

/**
 * True under our own CI (.ci/run sets LITS_STRICT_TESTS=1): nothing may skip there. Not CI=true, which a user's
 * clone sets too, where the shared folder is legitimately absent.
 */
export const strictTests = (): boolean => process.env.LITS_STRICT_TESTS === '1';

/**
 * The shared NIfTI conformance files, read in place (never copied into the project). Returns null when the folder is
 * absent; under LITS_STRICT_TESTS=1 that is an error, so the conformance tests can never be skipped in our CI.
 */
export function conformanceDir(): string | null {
  const dir = resolve(repoRoot, '..', 'shared', 'testdata', 'nifti-conformance');
  if (existsSync(dir)) return dir;
  if (strictTests())
    throw new Error(
      `LITS_STRICT_TESTS=1 but the NIfTI conformance folder ${dir} is missing; the conformance tests must run in CI`,
    );
  process.stderr.write(`lits-data: skipping conformance tests: ${dir} is absent\n`);
  return null;
}

/** A fresh temporary folder and its cleanup. */
export function tempDir(prefix: string): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), `lits-data-${prefix}-`));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
