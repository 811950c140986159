import Type, { type Static } from 'typebox';
import { runKeys, RUN_EVENTS_MAXLEN } from './run-keys.js';
import { ENGINE_KINDS, literalChoice, ResolvedSpec } from './spec.js';

// Everything here that one process writes to Redis and another reads back is a TypeBox schema, and its
// type is derived from it: readers check what they read with `decodeJson(Schema, text, source)`.
// Objects accept unknown fields, so a newer writer's extra fields do not break an older reader.

export const WorkerState = Type.Union([Type.Literal('idle'), Type.Literal('busy'), Type.Literal('stopping')]);
export type WorkerState = Static<typeof WorkerState>;

/** The machine a worker runs on: our analogue of the seed's system-intelligence report. */
export const SystemInfo = Type.Object({
  hostname: Type.String(),
  os: Type.String(),
  cpuModel: Type.String(),
  cpuCount: Type.Number(),
  memoryBytes: Type.Number(),
  node: Type.String(),
  tfjs: Type.String(),
  gpus: Type.Array(
    Type.Object({
      name: Type.String(),
      // nvidia-smi prints [N/A] for some devices: NaN, which JSON writes as null.
      memoryBytes: Type.Optional(Type.Union([Type.Number(), Type.Null()])),
      driver: Type.Optional(Type.String()),
    }),
  ),
});
export type SystemInfo = Static<typeof SystemInfo>;

/** TensorFlow's thread pools in a native worker (their sizes change the bits of its results). */
export const EngineThreads = Type.Object({ intraOp: Type.Integer(), interOp: Type.Integer() });
export type EngineThreads = Static<typeof EngineThreads>;

/** The engine every rank of a run runs: leased by it, and checked by every rank before training. */
export const RunEngine = Type.Object({
  name: literalChoice(ENGINE_KINDS),
  /** Native thread pools; null for the pure-JS cpu engine (sequential kernels). */
  threads: Type.Union([EngineThreads, Type.Null()]),
});
export type RunEngine = Static<typeof RunEngine>;

/**
 * What a worker registers about itself (GET /v1/workers shows it): one field of the hash
 * workerKeys.info per property, each holding the property's JSON.
 */
export const WorkerInfo = Type.Object({
  id: Type.String(),
  host: Type.String(),
  pid: Type.Integer(),
  /** The tfjs engine that runs: 'cpu', 'node' or 'gpu'. */
  engine: Type.String(),
  /** Its thread pools (native engines); null for cpu. Absent from workers older than this field. */
  engineThreads: Type.Optional(Type.Union([EngineThreads, Type.Null()])),
  /** libtensorflow's version (native engines). */
  libtensorflow: Type.Optional(Type.Union([Type.String(), Type.Null()])),
  /** Why the worker's `auto` engine is not the one it preferred (e.g. the native addon did not load). */
  engineFallback: Type.Optional(Type.Union([Type.String(), Type.Null()])),
  /**
   * The GPU variables its native engine loaded with (CUDA_VISIBLE_DEVICES, CUDA_DEVICE_ORDER,
   * TF_FORCE_GPU_ALLOW_GROWTH, the deterministic kernels' TF_* and NVIDIA_TF32_OVERRIDE); null for cpu.
   */
  engineEnvironment: Type.Optional(Type.Union([Type.Record(Type.String(), Type.String()), Type.Null()])),
  /** GPU name (or CPU model) and memory in bytes when known. */
  device: Type.String(),
  memoryBytes: Type.Optional(Type.Number()),
  startedAt: Type.Number(),
  state: WorkerState,
  runId: Type.Optional(Type.String()),
  rank: Type.Optional(Type.Integer({ minimum: 0 })),
  system: SystemInfo,
});
export type WorkerInfo = Static<typeof WorkerInfo>;

/** Where a run's shared files live (a folder every worker and the coordinator can reach). */
export const RunPaths = Type.Object({
  runDir: Type.String(),
  cacheDir: Type.String(),
  checkpointDir: Type.String(),
});
export type RunPaths = Static<typeof RunPaths>;

export const CaseRef = Type.Object({
  caseId: Type.Integer(),
  /** File name of the cube in the cache folder. */
  cacheFile: Type.String(),
});
export type CaseRef = Static<typeof CaseRef>;

/** runs/<id>/split.json: the data split a run trains and tests on, written once its data are prepared. */
export const RunSplitFile = Type.Object({
  split: Type.Union([Type.Literal('lits'), Type.Literal('seeded')]),
  trainCases: Type.Array(CaseRef),
  testCases: Type.Array(CaseRef),
  cacheDir: Type.String(),
});
export type RunSplitFile = Static<typeof RunSplitFile>;

/** The seeds a run actually uses (random mode draws fresh ones). */
export const RunSeeds = Type.Object({
  data: Type.Integer({ minimum: 0 }),
  model: Type.Integer({ minimum: 0 }),
});
export type RunSeeds = Static<typeof RunSeeds>;

/** The coordinator's plan for one generation of a run (runKeys.plan). */
export const RunPlan = Type.Object({
  runId: Type.String(),
  generation: Type.Integer({ minimum: 1 }),
  spec: ResolvedSpec,
  /** Seeds actually used (random mode draws fresh ones). */
  seeds: RunSeeds,
  /** Worker id of each rank. */
  ranks: Type.Array(Type.String()),
  /** The engine every rank runs (fixed by the run's first generation); absent from older coordinators' plans. */
  engine: Type.Optional(RunEngine),
  /** Cache keys of the cubes, in data-set order. */
  trainCases: Type.Array(CaseRef),
  testCases: Type.Array(CaseRef),
  paths: RunPaths,
  /** Checkpoint to resume from (restarts), and the epoch it ends. */
  resumeFrom: Type.Optional(Type.Object({ path: Type.String(), epoch: Type.Integer() })),
});
export type RunPlan = Static<typeof RunPlan>;

/** What a worker pops from its inbox (workerKeys.inbox). */
export const WorkerCommand = Type.Union([
  Type.Object({
    type: Type.Literal('assign'),
    runId: Type.String(),
    generation: Type.Integer(),
    rank: Type.Integer({ minimum: 0 }),
  }),
  Type.Object({
    type: Type.Literal('abort'),
    runId: Type.String(),
    generation: Type.Integer(),
    reason: Type.String(),
  }),
  Type.Object({ type: Type.Literal('shutdown'), reason: Type.String() }),
]);
export type WorkerCommand = Static<typeof WorkerCommand>;

/** Where a run is tracked: an MLflow run, or a local run folder. */
export const RunTrackerRef = Type.Object({
  kind: Type.Union([Type.Literal('mlflow'), Type.Literal('local')]),
  runId: Type.String(),
  location: Type.String(),
});
export type RunTrackerRef = Static<typeof RunTrackerRef>;

export const RunRecordPhase = Type.Union([
  Type.Literal('preparing'),
  Type.Literal('training'),
  Type.Literal('finishing'),
  Type.Literal('done'),
]);
export type RunRecordPhase = Static<typeof RunRecordPhase>;

/**
 * The hash of a run record (runKeys.record) as Redis returns it: `seeds` (RunSeeds JSON) and `phase`
 * are written together first, `tracker` (RunTrackerRef JSON) next, `result` (the experiment result's
 * JSON) once the phase is done.
 */
export const RunRecordHash = Type.Object({
  seeds: Type.String(),
  phase: RunRecordPhase,
  tracker: Type.Optional(Type.String()),
  result: Type.Optional(Type.String()),
});
export type RunRecordHash = Static<typeof RunRecordHash>;

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
  | {
      type: 'status';
      status: RunStatus;
      message?: string;
      restarts: number;
      /**
       * `running`: the generation that runs; `restarting`: the one that comes next. Absent from older
       * coordinators' events, where it was restarts + 1 (before a run could grow without a restart).
       */
      generation?: number;
      /** `running`: the worker of each rank of the new generation. */
      workers?: string[];
      /** `restarting`: the workers found dead or leaving, which the next generation replaces. */
      lost?: string[];
    }
  | {
      /** A generation's ranks are assigned: published just before its `running` status. */
      type: 'generation';
      generation: number;
      worldSize: number;
      /** The worker of each rank. */
      workers: string[];
      change: GenerationChange;
      /** Why it has this size (the failure it restarts after, the lost worker, the idle ones it grows by). */
      reason: string;
      /** The epoch it starts at: after its checkpoint's, or 0. */
      resumeEpoch: number;
    }
  | {
      /**
       * The supervisor waits for free, live workers (before a generation starts; published when what it
       * waits for changes). `missing` = `needed` − `free`; `message` names the engine and the live workers.
       */
      type: 'waiting';
      generation: number;
      needed: number;
      free: number;
      missing: number;
      message: string;
    };

/**
 * Why a generation runs on the workers it has: the run's first (`start`), the same size again after a
 * failure (`restart`), fewer after a worker was lost and none replaced it in time (`shrink`), or more
 * at a checkpoint where idle workers were free (`grow`).
 */
export const GENERATION_CHANGES = ['start', 'restart', 'shrink', 'grow'] as const;
export type GenerationChange = (typeof GENERATION_CHANGES)[number];

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
  'waiting',
  'generation',
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
