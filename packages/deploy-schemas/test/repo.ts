import { existsSync } from 'node:fs';
import { join } from 'node:path';

/** The repository root (this file is packages/deploy-schemas/test/repo.ts). */
export const repoRoot = new URL('../../../', import.meta.url).pathname;
export const repoPath = (...parts: string[]): string => join(repoRoot, ...parts);

/** The built `lits` entry point; the root build (npm test, CI) makes it before any package's tests. */
export function litsMain(): string {
  const main = repoPath('apps/cli/dist/main.js');
  if (!existsSync(main)) throw new Error(`${main} is missing: build the cli first (npx turbo run build)`);
  return main;
}

/** A token that passes the coordinator's checks, for interpolating the compose files. */
export const TEST_TOKEN = 'deploy-schemas-test-token-0123';
