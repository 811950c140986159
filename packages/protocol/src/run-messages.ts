import { runKeys, RUN_EVENTS_MAXLEN } from './run-keys.js';
import type { ResolvedSpec } from './spec.js';

export type WorkerState = 'idle' | 'busy' | 'stopping';

/** The machine a worker runs on: our analogue of the seed's system-intelligence report. */
export interface SystemInfo {
  hostname: string;
  os: string;
  cpuModel: string;
  cpuCount: number;
  memoryBytes: number;
  node: string;
  tfjs: string;
  gpus: Array<{ name: string; memoryBytes?: number; driver?: string }>;
}

/** TensorFlow's thread pools in a native worker (their sizes change the bits of its results). */
export interface EngineThreads {
  intraOp: number;
  interOp: number;
}

/** The engine every rank of a run runs: leased by it, and checked by every rank before training. */
export interface RunEngine {
  name: 'gpu' | 'node' | 'cpu';
  /** Native thread pools; null for the pure-JS cpu engine (sequential kernels). */
  threads: EngineThreads | null;
}

/** What a worker registers about itself (GET /v1/workers shows it). */
export interface WorkerInfo {
  id: string;
  host: string;
  pid: number;
  /** The tfjs engine that runs: 'cpu', 'node' or 'gpu'. */
  engine: string;
  /** Its thread pools (native engines); null for cpu. Absent from workers older than this field. */
  engineThreads?: EngineThreads | null;
  /** libtensorflow's version (native engines). */
  libtensorflow?: string | null;
  /** Why the worker's `auto` engine is not the one it preferred (e.g. the native addon did not load). */
  engineFallback?: string | null;
  /** GPU name (or CPU model) and memory in bytes when known. */
  device: string;
  memoryBytes?: number;
  startedAt: number;
  state: WorkerState;
  runId?: string;
  rank?: number;
  system: SystemInfo;
}

/** Where a run's shared files live (a folder every worker and the coordinator can reach). */
export interface RunPaths {
  runDir: string;
  cacheDir: string;
  checkpointDir: string;
}

/** The coordinator's plan for one generation of a run. */
export interface RunPlan {
  runId: string;
  generation: number;
  spec: ResolvedSpec;
  /** Seeds actually used (random mode draws fresh ones). */
  seeds: { data: number; model: number };
  /** Worker id of each rank. */
  ranks: string[];
  /** The engine every rank runs (fixed by the run's first generation). */
  engine: RunEngine;
  /** Cache keys of the cubes, in data-set order. */
  trainCases: CaseRef[];
  testCases: CaseRef[];
  paths: RunPaths;
  /** Checkpoint to resume from (restarts), and the epoch it ends. */
  resumeFrom?: { path: string; epoch: number };
}

export interface CaseRef {
  caseId: number;
  /** File name of the cube in the cache folder. */
  cacheFile: string;
}

export type WorkerCommand =
  | { type: 'assign'; runId: string; generation: number; rank: number }
  | { type: 'abort'; runId: string; generation: number; reason: string }
  | { type: 'shutdown'; reason: string };

export interface StepTimings {
  computeMs: number;
  allReduceMs: number;
  dataMs: number;
  otherMs: number;
}

/** Events on a run's stream. `rank` is the sender; the coordinator sends with rank -1. */
export type RunEvent =
  | { type: 'started'; generation: number; rank: number; engine: string; weightHash: string }
  | {
      type: 'progress';
      generation: number;
      rank: number;
      epoch: number;
      step: number;
      stepsPerEpoch: number;
      loss: number;
      timings: StepTimings;
      bytesSent?: number;
      bytesReceived?: number;
      /** Present when LITS_VERIFY_WEIGHTS=1: the weights after this step, for cross-rank checks. */
      weightHash?: string;
    }
  | {
      type: 'metrics';
      generation: number;
      epoch: number;
      /** Tracking step; the epoch when absent (epoch e is logged at step e). */
      step?: number;
      metrics: Record<string, number>;
    }
  | {
      type: 'checkpoint';
      generation: number;
      epoch: number;
      path: string;
      kind: 'last' | 'best';
      trainLoss: number;
    }
  | { type: 'log'; rank: number; level: 'info' | 'warn' | 'error'; message: string }
  | { type: 'failed'; generation: number; rank: number; error: string; lateRank?: number }
  | {
      type: 'finished';
      generation: number;
      rank: number;
      weightHash: string;
      testMetrics: Record<string, number>;
      modelPath: string;
    }
  | { type: 'status'; status: RunStatus; message?: string; restarts: number };

export type RunStatus =
  'queued' | 'preparing' | 'running' | 'restarting' | 'finished' | 'failed' | 'cancelled';

/** The field of a run-stream entry that holds the RunEvent JSON. */
export const RUN_EVENT_FIELD = 'e';

/** The XADD arguments that append `event` to a run's stream, capped at about RUN_EVENTS_MAXLEN entries. */
export function runEventXadd(
  runId: string,
  event: RunEvent,
): [key: string, 'MAXLEN', '~', number, '*', field: string, json: string] {
  return [
    runKeys.events(runId),
    'MAXLEN',
    '~',
    RUN_EVENTS_MAXLEN,
    '*',
    RUN_EVENT_FIELD,
    JSON.stringify(event),
  ];
}

const RUN_EVENT_TYPES: ReadonlySet<string> = new Set<RunEvent['type']>([
  'started',
  'progress',
  'metrics',
  'checkpoint',
  'log',
  'failed',
  'finished',
  'status',
]);

/** Run events come from other processes: accept only well-formed JSON with a known type. */
export function decodeRunEvent(raw: string | undefined): RunEvent | undefined {
  if (!raw) return undefined;
  try {
    const e = JSON.parse(raw) as { type?: unknown };
    return typeof e.type === 'string' && RUN_EVENT_TYPES.has(e.type) ? (e as RunEvent) : undefined;
  } catch {
    return undefined;
  }
}

/** The RunEvent JSON of one stream entry's flat [field, value, …] list. */
export function runEventOfFields(fields: readonly string[]): RunEvent | undefined {
  const at = fields.indexOf(RUN_EVENT_FIELD);
  return at >= 0 ? decodeRunEvent(fields[at + 1]) : undefined;
}
