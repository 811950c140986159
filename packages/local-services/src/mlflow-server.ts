import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  spawnServer,
  stopServer,
  trackDir,
  untrackDir,
  waitFor,
  type SpawnedServer,
} from './managed-process.js';
import { InstallError } from './errors.js';
import { freePort } from './ports.js';
import { findExecutable } from './system-packages.js';
import type { InstallReport, LocalService } from './service.js';

/** The MLflow release every test, benchmark and the demo run against. */
export const MLFLOW_VERSION = '3.17.2';

export interface MlflowServerOptions {
  port?: number;
  version?: string;
  startTimeoutMs?: number;
  log?: (line: string) => void;
}

/** Per-user cache outside the clone, so fresh CI clones on one machine share one venv. */
export function cacheRoot(): string {
  if (process.env.LITS_CACHE_DIR) return process.env.LITS_CACHE_DIR;
  return join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'lits-ddp');
}

function venvPython(venv: string): string {
  return join(venv, 'bin', 'python');
}

/**
 * Serialises installs across processes with an exclusive lock folder; a lock older than 30 min is stale.
 * `fn` may be async: the lock is held until its promise settles.
 */
export async function withInstallLock<T>(lockDir: string, fn: () => T | Promise<T>): Promise<T> {
  for (;;) {
    try {
      mkdirSync(lockDir);
      break;
    } catch (err) {
      // EEXIST: another process holds the lock, so wait; anything else (no permission…) would never clear.
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      try {
        if (Date.now() - statSync(lockDir).mtimeMs > 30 * 60_000)
          rmSync(lockDir, { recursive: true, force: true });
      } catch {
        // the lock vanished between mkdir and stat: the next mkdir takes it
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(lockDir, { recursive: true, force: true });
  }
}

/**
 * Makes sure `mlflow==version` sits in a venv under the cache root. The venv is built in a temp
 * folder and renamed into place, so an interrupted install never looks complete. The server is
 * run as `python -m mlflow`, which survives that rename (entry-point scripts would not).
 */
export async function ensureMlflow(
  opts: { version?: string; log?: (line: string) => void } = {},
): Promise<InstallReport> {
  const version = opts.version ?? MLFLOW_VERSION;
  const started = Date.now();
  const root = cacheRoot();
  const venv = join(root, `mlflow-${version}`);
  const marker = join(venv, '.lits-complete');
  if (existsSync(marker)) return { path: venvPython(venv), installed: false, ms: Date.now() - started };
  mkdirSync(root, { recursive: true });
  const python = findExecutable('python3') ?? findExecutable('python');
  if (!python) throw new InstallError('python3 not found: MLflow needs Python 3.10+ with pip and venv');
  return withInstallLock(`${venv}.lock`, () => {
    if (existsSync(marker)) return { path: venvPython(venv), installed: false, ms: Date.now() - started };
    const staging = `${venv}.partial-${process.pid}`;
    rmSync(staging, { recursive: true, force: true });
    const log = opts.log ?? (() => undefined);
    log(`creating ${venv} and installing mlflow==${version} (first run only)`);
    const run = (cmd: string, args: string[]): void => {
      const result = spawnSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
      if (result.status !== 0) {
        rmSync(staging, { recursive: true, force: true });
        const tail = `${result.stderr ?? ''}${result.error?.message ?? ''}`
          .trim()
          .split('\n')
          .slice(-5)
          .join('\n');
        throw new InstallError(`${cmd} ${args.join(' ')} failed (status ${result.status}):\n${tail}`);
      }
    };
    run(python, ['-m', 'venv', staging]);
    run(venvPython(staging), [
      '-m',
      'pip',
      'install',
      '-q',
      '--disable-pip-version-check',
      `mlflow==${version}`,
    ]);
    writeFileSync(join(staging, '.lits-complete'), `${new Date().toISOString()}\n`);
    rmSync(venv, { recursive: true, force: true });
    renameSync(staging, venv);
    return { path: venvPython(venv), installed: true, ms: Date.now() - started };
  });
}

export class MlflowServer implements LocalService {
  readonly name = 'mlflow';
  private server: SpawnedServer | undefined;
  startupMs = 0;

  private constructor(
    readonly python: string,
    readonly port: number,
    readonly dir: string,
    private readonly opts: MlflowServerOptions,
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.server?.child.pid;
  }

  get running(): boolean {
    return (
      this.server !== undefined &&
      this.server.child.exitCode === null &&
      this.server.child.signalCode === null
    );
  }

  get backendStoreUri(): string {
    return `sqlite:///${join(this.dir, 'mlflow.db')}`;
  }

  get artifactsDir(): string {
    return join(this.dir, 'artifacts');
  }

  static async start(opts: MlflowServerOptions = {}): Promise<MlflowServer> {
    const { path } = await ensureMlflow({ version: opts.version, log: opts.log });
    const dir = await mkdtemp(join(tmpdir(), 'lits-mlflow-'));
    trackDir(dir);
    const port = opts.port ?? (await freePort());
    const server = new MlflowServer(path, port, dir, opts);
    try {
      await server.start();
    } catch (err) {
      untrackDir(dir);
      throw err;
    }
    return server;
  }

  /** (Re)starts on the same port with the same SQLite store and artifacts folder. */
  async start(): Promise<void> {
    if (this.running) return;
    const started = Date.now();
    const allowedHosts = [`127.0.0.1:${this.port}`, `localhost:${this.port}`, '127.0.0.1', 'localhost'].join(
      ',',
    );
    const args = [
      '-m',
      'mlflow',
      'server',
      '--host',
      '127.0.0.1',
      '--port',
      String(this.port),
      '--backend-store-uri',
      this.backendStoreUri,
      '--artifacts-destination',
      this.artifactsDir,
      '--serve-artifacts',
      '--allowed-hosts',
      allowedHosts,
      '--workers',
      '1',
    ];
    const env = {
      ...process.env,
      MLFLOW_DISABLE_TELEMETRY: 'true',
      DO_NOT_TRACK: 'true',
      PYTHONUNBUFFERED: '1',
    };
    this.server = spawnServer(this.python, args, join(this.dir, 'mlflow.log'), env);
    await waitFor(`mlflow server on port ${this.port}`, () => this.healthy(), {
      timeoutMs: this.opts.startTimeoutMs ?? 120_000,
      intervalMs: 250,
      exited: this.server.exited,
      logFile: this.server.logFile,
    });
    this.startupMs = Date.now() - started;
  }

  async stop(): Promise<void> {
    if (this.server) await stopServer(this.server);
  }

  async dispose(): Promise<void> {
    await this.stop();
    untrackDir(this.dir);
  }

  async healthy(): Promise<boolean> {
    try {
      const res = await fetch(`${this.url}/health`, { signal: AbortSignal.timeout(1000) });
      return res.ok;
    } catch {
      // refused, reset or timed out: not healthy (yet); waitFor reports the log when it never becomes so
      return false;
    }
  }
}
