import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);

/**
 * The built entry point of an app's bin, as a user's shell would run it. The system tests start
 * apps only as processes: no workspace imports an app.
 */
export function appBin(app: string, bin: string): string {
  const manifestPath = require.resolve(`${app}/package.json`);
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as { bin?: Record<string, string> };
  const entry = manifest.bin?.[bin];
  if (!entry) throw new Error(`${app} declares no bin named ${bin}`);
  return join(dirname(manifestPath), entry);
}
