// The doctor's probes run as child node processes of this package's compiled entry files.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export interface ChildOutcome {
  stdout: string;
  stderr: string;
  /** null when it was killed (by the timeout or a crash signal). */
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
}

/** The compiled entry file `name` beside this module (dist/doctor/<name>.js). */
export const entryFile = (name: string): string => fileURLToPath(new URL(`./${name}.js`, import.meta.url));

/** Runs `node entry args…`; never rejects: a failure to run is an outcome the caller reports. */
export function runNodeChild(
  entry: string,
  args: readonly string[],
  opts: { timeoutMs: number; env?: NodeJS.ProcessEnv },
): Promise<ChildOutcome> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [entry, ...args],
      { timeout: opts.timeoutMs, env: opts.env ?? process.env, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const e = err as (NodeJS.ErrnoException & { killed?: boolean; signal?: NodeJS.Signals }) | null;
        resolve({
          stdout,
          stderr,
          code: e ? (typeof e.code === 'number' ? e.code : null) : 0,
          signal: e?.signal ?? null,
          timedOut: e?.killed === true && e.signal === 'SIGTERM',
        });
      },
    );
  });
}

/** The last non-empty stderr line: where a crashed child says why. */
export function lastLine(text: string): string | undefined {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '')
    .at(-1);
}
