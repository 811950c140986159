import { connect } from 'node:net';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
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
import { aptInstall, findExecutable } from './system-packages.js';
import type { InstallReport, LocalService } from './service.js';

export interface RedisServerOptions {
  /** Loopback port; a free one is picked when absent. */
  port?: number;
  /** Append-only file persistence (everysec). Off by default: tests want speed, not durability. */
  aof?: boolean;
  /** Install Debian's redis-server with apt-get when the binary is missing (root only). Default true. */
  install?: boolean;
  startTimeoutMs?: number;
  log?: (line: string) => void;
}

export const REDIS_INSTALL_HINT = 'apt-get update && apt-get install -y redis-server';

/** Finds redis-server, installing Debian's package when allowed. */
export function ensureRedisServer(
  opts: { install?: boolean; log?: (line: string) => void } = {},
): InstallReport {
  const started = Date.now();
  const existing = findExecutable('redis-server');
  if (existing) return { path: existing, installed: false, ms: Date.now() - started };
  if (opts.install === false) {
    throw new InstallError(`redis-server not found on PATH. Install it with: ${REDIS_INSTALL_HINT}`);
  }
  aptInstall(['redis-server'], opts.log ?? (() => undefined));
  const path = findExecutable('redis-server');
  if (!path)
    throw new InstallError(`redis-server still missing after apt-get install. Try: ${REDIS_INSTALL_HINT}`);
  return { path, installed: true, ms: Date.now() - started };
}

/** Sends PING over a raw socket; no client library needed for a health probe. */
export function pingRedis(port: number, host = '127.0.0.1', timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host });
    let reply = '';
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      reply += chunk.toString();
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
    });
  });
}

export class RedisServer implements LocalService {
  readonly name = 'redis';
  private server: SpawnedServer | undefined;
  startupMs = 0;

  private constructor(
    readonly binary: string,
    readonly port: number,
    readonly dir: string,
    private readonly opts: RedisServerOptions,
  ) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
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

  static async start(opts: RedisServerOptions = {}): Promise<RedisServer> {
    const { path } = ensureRedisServer({ install: opts.install, log: opts.log });
    const dir = await mkdtemp(join(tmpdir(), 'lits-redis-'));
    trackDir(dir);
    const port = opts.port ?? (await freePort());
    const redis = new RedisServer(path, port, dir, opts);
    try {
      await redis.start();
    } catch (err) {
      untrackDir(dir);
      throw err;
    }
    return redis;
  }

  /** (Re)starts on the same port and folder, so AOF data survives a restart. */
  async start(): Promise<void> {
    if (this.running) return;
    const started = Date.now();
    const args = [
      '--port',
      String(this.port),
      '--bind',
      '127.0.0.1',
      '--dir',
      this.dir,
      '--save',
      '',
      '--appendonly',
      this.opts.aof ? 'yes' : 'no',
      '--appendfsync',
      'everysec',
      '--maxmemory-policy',
      'noeviction',
      '--protected-mode',
      'yes',
      '--daemonize',
      'no',
    ];
    this.server = spawnServer(this.binary, args, join(this.dir, 'redis.log'));
    await waitFor(`redis-server on port ${this.port}`, () => pingRedis(this.port), {
      timeoutMs: this.opts.startTimeoutMs ?? 15_000,
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
    return pingRedis(this.port);
  }
}
