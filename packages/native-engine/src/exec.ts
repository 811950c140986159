import { spawn } from 'node:child_process';

export interface CommandResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** stdout and stderr interleaved, as a terminal would show them (the end kept when long). */
  output: string;
  /** stdout alone, for commands whose answer is on stdout. */
  stdout: string;
  error?: Error;
}

const KEEP_CHARS = 256 * 1024;

/** Runs a command to completion without blocking the event loop; never throws (see `code`/`error`). */
export function runCommand(
  cmd: string,
  args: readonly string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<CommandResult> {
  return new Promise((resolve) => {
    let output = '';
    let stdout = '';
    const keep = (s: string): string => (s.length > KEEP_CHARS ? s.slice(-KEEP_CHARS) : s);
    const child = spawn(cmd, args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: opts.timeoutMs,
    });
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      output = keep(output + d);
      stdout = keep(stdout + d);
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => (output = keep(output + d)));
    child.once('error', (error) => resolve({ code: null, signal: null, output, stdout, error }));
    child.once('close', (code, signal) => resolve({ code, signal, output, stdout }));
  });
}

/** The last `n` non-empty lines, for error messages. */
export function lastLines(text: string, n: number): string {
  return text
    .split('\n')
    .map((l) => l.trimEnd())
    .filter(Boolean)
    .slice(-n)
    .join('\n');
}

/** How a finished command failed, in words. */
export function describeExit(r: CommandResult): string {
  if (r.error) return r.error.message;
  return r.signal ? `killed by ${r.signal}` : `exit ${r.code}`;
}
