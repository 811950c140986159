import { existsSync, readFileSync } from 'node:fs';
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

/** The root package.json's `allowScripts`: npm's policy for dependencies' install scripts. */
export function rootAllowScripts(): Record<string, boolean> {
  const pkg = JSON.parse(readFileSync(repoPath('package.json'), 'utf8')) as {
    allowScripts?: Record<string, boolean>;
  };
  return pkg.allowScripts ?? {};
}
