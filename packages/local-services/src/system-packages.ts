import { execFileSync, spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { errorMessage } from '@lits-ddp/errors';
import { InstallError } from './errors.js';

/** The first `name` on PATH, as a shell finds it (so a PATH without it means "not installed"). */
export function findExecutable(name: string): string | undefined {
  const dirs = (process.env.PATH ?? '').split(delimiter).filter(Boolean);
  for (const dir of dirs) {
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not there, or not executable: keep looking, as a shell does
    }
  }
  return undefined;
}

export const isRoot = (): boolean => typeof process.getuid === 'function' && process.getuid() === 0;

/**
 * Installs Debian packages with apt-get. A fresh machine has empty package lists,
 * so `apt-get update` runs first.
 */
export function aptInstall(packages: string[], log: (line: string) => void): void {
  if (!isRoot()) {
    throw new InstallError(
      `cannot install ${packages.join(' ')}: not root. Run: sudo apt-get install -y ${packages.join(' ')}`,
    );
  }
  if (!findExecutable('apt-get')) {
    throw new InstallError(
      `cannot install ${packages.join(' ')}: apt-get not found (this tool supports Debian/Ubuntu)`,
    );
  }
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  log(`apt-get update && apt-get install -y ${packages.join(' ')}`);
  const update = spawnSync('apt-get', ['update', '-q'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  if (update.status !== 0) {
    throw new InstallError(
      `apt-get update failed: ${update.stderr.toString().trim().split('\n').slice(-3).join(' ')}`,
    );
  }
  try {
    execFileSync('apt-get', ['install', '-y', '-q', '--no-install-recommends', ...packages], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  } catch (err) {
    throw new InstallError(`apt-get install ${packages.join(' ')} failed: ${errorMessage(err)}`, {
      cause: err,
    });
  }
}
