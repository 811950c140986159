import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ResolvedSpec } from '@lits-ddp/protocol';
import { discoverGpus, gpuPinningEnv, type GpuDevice } from '@lits-ddp/trainer';
import { UsageError } from '../errors.js';

export interface WorkerProcessSpec {
  redisUrl: string;
  engine: string;
  /** A native engine's intra-op threads (the spec's engine-threads). */
  threads: number;
  heartbeatIntervalS: number;
  logDir: string;
}

/**
 * The ids of a local run's worker processes, in rank order: one per rank of its largest generation,
 * max(workers, max-workers). Those beyond `workers` idle until the run grows onto them at a checkpoint.
 */
export function localWorkerIds(runId: string, spec: Pick<ResolvedSpec, 'workers' | 'max-workers'>): string[] {
  return Array.from({ length: Math.max(spec.workers, spec['max-workers']) }, (_, r) => `${runId}-w${r}`);
}

/**
 * The environment of the worker at `index`: REDIS_URL, and with GPUs visible one GPU per worker, round robin over
 * `gpus` (the launcher's visible GPUs: CUDA_VISIBLE_DEVICES = that GPU's index, CUDA_DEVICE_ORDER = PCI_BUS_ID).
 * Without one the worker inherits the launcher's CUDA variables.
 */
export function workerEnv(
  base: NodeJS.ProcessEnv,
  redisUrl: string,
  index: number,
  gpus: readonly GpuDevice[],
): NodeJS.ProcessEnv {
  return { ...base, REDIS_URL: redisUrl, ...gpuPinningEnv(gpus, index) };
}

/**
 * Refuses more `engine: gpu` workers than visible GPUs: two on one GPU share its memory and its kernels' time,
 * which a user asking for the gpu engine does not expect (`auto` may share: it loads what is there).
 */
export function checkGpuWorkerCount(engine: string, workers: number, gpus: readonly GpuDevice[]): void {
  if (engine !== 'gpu' || workers <= gpus.length) return;
  const visible = process.env.CUDA_VISIBLE_DEVICES;
  throw new UsageError(
    `engine gpu: ${workers} workers need ${workers} visible GPUs, found ${gpus.length}` +
      `${visible !== undefined ? ` (CUDA_VISIBLE_DEVICES=${visible})` : ' (nvidia-smi)'}: ` +
      `lower --workers (and max-workers) to ${gpus.length || 'a GPU count'}, or use engine auto, node or cpu`,
  );
}

/**
 * The local launcher's worker processes, like torchrun --nproc-per-node: one `lits worker` per
 * rank (see localWorkerIds), each pinned to one GPU with CUDA_VISIBLE_DEVICES when GPUs are present, output
 * to a log file. `restart` starts a dead worker again under the same id.
 */
export class WorkerProcesses {
  private readonly children = new Map<string, ChildProcess>();
  /** The GPUs this launcher may use: an inherited CUDA_VISIBLE_DEVICES restricts them. */
  private readonly gpus = discoverGpus();
  /**
   * This CLI's built entry (dist/main.js, two folders up from src/launcher or dist/launcher alike, so tests that
   * load the sources start the built CLI): each worker is `lits worker …`, the same shell as a hand-started one.
   */
  private readonly entry = fileURLToPath(new URL('../../dist/main.js', import.meta.url));

  constructor(
    readonly ids: readonly string[],
    private readonly spec: WorkerProcessSpec,
  ) {
    checkGpuWorkerCount(spec.engine, ids.length, this.gpus);
    mkdirSync(spec.logDir, { recursive: true });
  }

  startAll(): void {
    for (const id of this.ids) this.start(id);
  }

  start(id: string): void {
    const index = this.ids.indexOf(id);
    const env = workerEnv(process.env, this.spec.redisUrl, index, this.gpus);
    const child = spawn(
      process.execPath,
      [
        this.entry,
        'worker',
        '--id',
        id,
        '--engine',
        this.spec.engine,
        '--threads',
        String(this.spec.threads),
        '--heartbeat-s',
        String(this.spec.heartbeatIntervalS),
      ],
      { env, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const log = createWriteStream(join(this.spec.logDir, `${id}.log`), { flags: 'a' });
    child.stdout?.pipe(log);
    child.stderr?.pipe(log);
    child.once('exit', () => {
      if (this.children.get(id) === child) this.children.delete(id);
    });
    this.children.set(id, child);
  }

  /**
   * Restarts the given workers once their processes are gone. One that is still exiting (it reported
   * a SIGTERM) gets `graceMs` to finish; one still alive after that is left alone.
   */
  async restart(ids: readonly string[], graceMs = 10_000): Promise<void> {
    await Promise.all(ids.map((id) => this.exited(id, graceMs)));
    for (const id of ids) if (!this.children.has(id)) this.start(id);
  }

  private exited(id: string, timeoutMs: number): Promise<void> {
    const child = this.children.get(id);
    if (!child) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      child.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  pid(id: string): number | undefined {
    return this.children.get(id)?.pid;
  }

  /** SIGTERM every worker (they finish or abort the collective), SIGKILL after `graceMs`. */
  async stopAll(graceMs = 10_000): Promise<void> {
    const waits = [...this.children.values()].map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
          child.once('exit', () => {
            clearTimeout(timer);
            resolve();
          });
          child.kill('SIGTERM');
        }),
    );
    await Promise.all(waits);
  }
}
