import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, rmSync, type WriteStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { ServiceUnavailableError } from './errors.js';

/** Everything started here, so a crash or a signal still kills it and removes its folder. */
const liveGroups = new Set<number>();
const liveDirs = new Set<string>();
let hooksInstalled = false;

function cleanupSync(): void {
  for (const pgid of liveGroups) {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  liveGroups.clear();
  for (const dir of liveDirs) rmSync(dir, { recursive: true, force: true });
  liveDirs.clear();
}

function installExitHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', cleanupSync);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = (): void => {
      // When the host has its own handler it owns shutdown and will exit, which runs cleanupSync.
      if (process.listenerCount(signal) > 1) return;
      process.off(signal, onSignal);
      cleanupSync();
      // Re-raise so the exit status says which signal ended us.
      process.kill(process.pid, signal);
    };
    process.on(signal, onSignal);
  }
}

export function trackDir(dir: string): void {
  installExitHooks();
  liveDirs.add(dir);
}

export function untrackDir(dir: string): void {
  liveDirs.delete(dir);
  rmSync(dir, { recursive: true, force: true });
}

export interface SpawnedServer {
  readonly child: ChildProcess;
  readonly logFile: string;
  /** Resolves with the exit code (or signal name) once the process is gone. */
  readonly exited: Promise<number | string>;
}

/** Spawns a server in its own process group with output sent to a log file. */
export function spawnServer(
  command: string,
  args: string[],
  logFile: string,
  env?: NodeJS.ProcessEnv,
): SpawnedServer {
  installExitHooks();
  const log: WriteStream = createWriteStream(logFile, { flags: 'a' });
  const child = spawn(command, args, {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: env ?? process.env,
  });
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  if (child.pid !== undefined) liveGroups.add(child.pid);
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => {
      if (child.pid !== undefined) liveGroups.delete(child.pid);
      resolve(code ?? signal ?? 'unknown');
    });
    child.once('error', (err) => {
      if (child.pid !== undefined) liveGroups.delete(child.pid);
      resolve(err.message);
    });
  });
  // `exited` never rejects; the catch only keeps a failing log stream end from going unhandled.
  exited.finally(() => log.end()).catch(() => undefined);
  return { child, logFile, exited };
}

/** SIGTERM the whole group, then SIGKILL after `graceMs`. */
export async function stopServer(server: SpawnedServer, graceMs = 5000): Promise<void> {
  const pid = server.child.pid;
  if (pid === undefined || server.child.exitCode !== null || server.child.signalCode !== null) {
    await server.exited;
    return;
  }
  try {
    process.kill(-pid, 'SIGTERM');
  } catch {
    // already gone
  }
  const timer = setTimeout(() => {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }, graceMs);
  await server.exited;
  clearTimeout(timer);
  // Children of the leader (uvicorn workers) may outlive it.
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // group empty
  }
}

export async function logTail(logFile: string, lines = 20): Promise<string> {
  try {
    const text = await readFile(logFile, 'utf8');
    return text.split('\n').slice(-lines).join('\n');
  } catch {
    // The tail only decorates an error message; a missing log file must not replace that error.
    return '(no log)';
  }
}

export async function waitFor(
  what: string,
  probe: () => Promise<boolean>,
  opts: { timeoutMs: number; intervalMs?: number; exited?: Promise<number | string>; logFile?: string },
): Promise<void> {
  const deadline = Date.now() + opts.timeoutMs;
  let exitedWith: number | string | undefined;
  // `exited` never rejects (spawnServer resolves it on 'error' too); a probe that throws means "not healthy yet".
  opts.exited?.then((code) => (exitedWith = code)).catch(() => undefined);
  for (;;) {
    if (await probe().catch(() => false)) return;
    if (exitedWith !== undefined) {
      const tail = opts.logFile ? await logTail(opts.logFile) : '';
      throw new ServiceUnavailableError(`${what} exited (${exitedWith}) before it became healthy.\n${tail}`);
    }
    if (Date.now() > deadline) {
      const tail = opts.logFile ? await logTail(opts.logFile) : '';
      throw new ServiceUnavailableError(`${what} was not healthy after ${opts.timeoutMs} ms.\n${tail}`);
    }
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 100));
  }
}
