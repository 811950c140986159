import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync } from 'node:fs';
import { link, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { freePort } from '@lits-ddp/local-services';
import { generatePhantomDataset } from '@lits-ddp/lits-data';
import { readEvents, type StreamedEvent } from '@lits-ddp/orchestrator';
import type { CoordinatorClient } from '@lits-ddp/coordinator-client';
import { runKeys, type ExperimentSpecInput, type RunEvent } from '@lits-ddp/protocol';
import { appBin } from './app-bins.js';

export const TOKEN = 'test-token-0123456789abcdef';
const COORDINATOR_MAIN = appBin('@lits-ddp/coordinator', 'lits-coordinator');
const WORKER_MAIN = appBin('@lits-ddp/gpu-worker', 'lits-worker');

/** A folder holding the data root (8 phantom cases of 32×32×16) and the coordinator home. */
export async function phantomHome(): Promise<{ dataRoot: string; home: string; logs: string }> {
  const base = await mkdtemp(join(tmpdir(), 'coord-e2e-'));
  const dataRoot = join(base, 'data');
  await generatePhantomDataset({ outDir: join(dataRoot, 'phantoms'), cases: 8, size: [32, 32, 16], seed: 7 });
  const logs = join(base, 'logs');
  mkdirSync(logs, { recursive: true });
  return { dataRoot, home: join(base, 'home'), logs };
}

/**
 * A LiTS-format folder of `copies` cases that are hard links to one phantom case of `size`: quick to make, while a
 * run's preparation validates (inflates and checks) every copy. The copies share the source's identity, so
 * preprocessing makes one cube, which every case of the split then reads.
 */
export async function phantomCopies(
  outDir: string,
  copies: number,
  size: [number, number, number],
): Promise<void> {
  await generatePhantomDataset({ outDir, cases: 1, size, seed: 11 });
  for (let id = 1; id < copies; id++)
    for (const kind of ['volume', 'segmentation'])
      await link(join(outDir, `${kind}-0.nii.gz`), join(outDir, `${kind}-${id}.nii.gz`));
}

/** The tiny training config of apps/cli/test/phantom-runs.ts: 16³ cubes, width 2, K = 4 micro-batches. */
export const tinySpec = (extra: ExperimentSpecInput = {}): ExperimentSpecInput => ({
  'dataset-path': 'phantoms',
  max_epochs: 3,
  'test-epochs': 1,
  'global-batch-size': 4,
  'micro-batch-size': 1,
  workers: 2,
  'unet-width': 2,
  'cube-size': 16,
  'preprocess-slices': 32,
  'preprocess-downscale': 2,
  'test-percent': 0.25,
  lr: 0.01,
  determinism: 'deterministic',
  engine: 'cpu',
  'collective-timeout-s': 20,
  'heartbeat-interval-s': 1,
  'max-restarts': 2,
  ...extra,
});

function logTo(child: ChildProcess, file: string): void {
  const out = createWriteStream(file, { flags: 'a' });
  child.stdout?.pipe(out);
  child.stderr?.pipe(out);
}

const exited = (child: ChildProcess): Promise<void> =>
  child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve()
    : new Promise((r) => child.once('exit', () => r()));

/** A `lits-coordinator` process (the same entry point as `lits serve`), restartable on its port. */
export class CoordinatorProcess {
  child: ChildProcess | undefined;
  /** How many times it was started (its logs are coordinator-<n>.log). */
  starts = 0;

  private constructor(
    readonly port: number,
    private readonly env: NodeJS.ProcessEnv,
    private readonly args: string[],
    private readonly logs: string,
  ) {}

  static async start(opts: {
    redisUrl: string;
    trackingUri?: string;
    dataRoot: string;
    home: string;
    logs: string;
    keyPrefix: string;
    extraArgs?: string[];
  }): Promise<CoordinatorProcess> {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      REDIS_URL: opts.redisUrl,
      LITS_API_TOKEN: TOKEN,
      LITS_KEY_PREFIX: opts.keyPrefix,
      LOG_LEVEL: 'info',
    };
    if (opts.trackingUri) env.MLFLOW_TRACKING_URI = opts.trackingUri;
    else delete env.MLFLOW_TRACKING_URI;
    const port = await freePort();
    const c = new CoordinatorProcess(
      port,
      env,
      ['--port', String(port), '--data-root', opts.dataRoot, '--home', opts.home, ...(opts.extraArgs ?? [])],
      opts.logs,
    );
    await c.restart();
    return c;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async restart(): Promise<void> {
    this.child = spawn(process.execPath, [COORDINATOR_MAIN, ...this.args], {
      env: this.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    logTo(this.child, join(this.logs, `coordinator-${++this.starts}.log`));
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (this.child.exitCode !== null) throw new Error(`coordinator exited with ${this.child.exitCode}`);
      try {
        if ((await fetch(`${this.url}/healthz`)).ok) return;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error('coordinator did not answer /healthz within 60 s');
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  async kill(signal: NodeJS.Signals): Promise<void> {
    const child = this.child;
    if (!child) return;
    child.kill(signal);
    await exited(child);
  }
}

/** `lits-worker` processes on the cpu engine, as docker-compose would run them. */
export class Workers {
  readonly children = new Map<string, ChildProcess>();

  constructor(
    private readonly env: NodeJS.ProcessEnv,
    private readonly logs: string,
  ) {}

  /** `engine`: cpu (pure JS), or node (the native engine, where it is built). */
  start(id: string, engine: 'cpu' | 'node' = 'cpu'): void {
    const child = spawn(
      process.execPath,
      [WORKER_MAIN, '--id', id, '--engine', engine, '--heartbeat-s', '1'],
      {
        env: this.env,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    logTo(child, join(this.logs, `${id}.log`));
    this.children.set(id, child);
  }

  async stopAll(): Promise<void> {
    await Promise.all(
      [...this.children.values()].map(async (child) => {
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        child.kill('SIGTERM');
        await exited(child);
        clearTimeout(timer);
      }),
    );
  }
}

/** Polls `fn` until it returns a value (not undefined) or the time runs out. */
export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined>,
  timeoutMs = 120_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** The id of the newest event in a run's stream in Redis ('0' when it has none): where a wait for the next begins. */
export async function lastRunEventId(redis: Redis, runId: string): Promise<string> {
  const [newest] = await redis.xrevrange(runKeys.events(runId), '+', '-', 'COUNT', 1);
  return newest?.[0] ?? '0';
}

/**
 * Waits for the first event after `afterId` in a run's stream that `match` accepts. It reads Redis, not the
 * coordinator, so it also sees what the workers publish while no coordinator is up. `redis` should be a connection
 * of its own: each read blocks it for up to a second.
 */
export async function waitForRunEvent(
  redis: Redis,
  runId: string,
  afterId: string,
  what: string,
  match: (event: RunEvent) => boolean,
  timeoutMs = 120_000,
): Promise<StreamedEvent> {
  const deadline = Date.now() + timeoutMs;
  for (let cursor = afterId; ;) {
    for (const entry of await readEvents(redis, runId, cursor, 1000)) {
      if (match(entry.event)) return entry;
      cursor = entry.id;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} in the events of run ${runId}`);
  }
}

/** The first progress event of `epoch` or a later one: the run is training, past the checkpoint of the epoch before. */
export const waitForEpoch = (
  redis: Redis,
  runId: string,
  epoch: number,
  afterId = '0',
): Promise<StreamedEvent> =>
  waitForRunEvent(
    redis,
    runId,
    afterId,
    `a progress event of epoch ${epoch}`,
    (e) => e.type === 'progress' && e.epoch >= epoch,
  );

/** Waits until `count` registered workers are idle (each test's workers, started before). */
export const waitForIdleWorkers = (client: CoordinatorClient, count: number): Promise<true> =>
  waitFor(`${count} idle workers`, async () => {
    const { workers: list } = await client.workers();
    return list.filter((w) => w.state === 'idle').length === count ? true : undefined;
  });
