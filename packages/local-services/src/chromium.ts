import { InstallError } from './errors.js';
import { aptInstall, findExecutable, isRoot } from './system-packages.js';

export const CHROMIUM_INSTALL_HINT = 'sudo apt-get install -y chromium';

/**
 * The path of Debian's `chromium` for headless browser tests, installed with apt-get when missing
 * and running as root; otherwise an error that says how to install it.
 */
export function ensureChromium(opts: { install?: boolean; log?: (line: string) => void } = {}): string {
  const found = findExecutable('chromium') ?? findExecutable('chromium-browser');
  if (found) return found;
  if (opts.install === false || !isRoot())
    throw new InstallError(
      `chromium is not installed (needed for the dashboard test). Install it: ${CHROMIUM_INSTALL_HINT}`,
    );
  aptInstall(['chromium'], opts.log ?? ((line) => process.stderr.write(`${line}\n`)));
  const installed = findExecutable('chromium');
  if (!installed)
    throw new InstallError(`apt-get installed chromium but no chromium executable is on the PATH`);
  return installed;
}
