import Type, { type Static } from 'typebox';
import { GENERATION_CHANGES } from './run-messages.js';
import { ExperimentSpecInput, literalChoice } from './spec.js';

/**
 * The coordinator's REST API, described once: the service validates requests and serialises replies with these
 * schemas (and builds its OpenAPI document, /docs/json, from them); the client checks every reply against them.
 * Objects allow unknown fields, so a client still accepts the replies of a coordinator that added some.
 */

/** Experiment ids double as BullMQ job ids and Redis key parts: no ':' and never all digits. */
export const EXPERIMENT_ID_PATTERN = '^[A-Za-z][A-Za-z0-9._-]{0,127}$';

export const ExperimentStatus = Type.Union(
  [
    Type.Literal('queued'),
    Type.Literal('preparing'),
    Type.Literal('running'),
    Type.Literal('restarting'),
    Type.Literal('finished'),
    Type.Literal('failed'),
    Type.Literal('cancelled'),
  ],
  {
    description:
      'queued, then preparing → running (→ restarting → running …) → finished | failed | cancelled',
  },
);
export type ExperimentStatus = Static<typeof ExperimentStatus>;

const Metrics = Type.Record(Type.String(), Type.Number());
const Links = Type.Record(Type.String(), Type.String());

/** The body of every non-2xx reply; `errors` lists the bad fields of a 400. */
export const ErrorReply = Type.Object(
  {
    statusCode: Type.Integer(),
    error: Type.String(),
    message: Type.String(),
    errors: Type.Optional(Type.Array(Type.Object({ path: Type.String(), message: Type.String() }))),
  },
  { title: 'Error' },
);
export type ErrorReply = Static<typeof ErrorReply>;

/** `POST /v1/experiments`: the spec itself, or the envelope with a client-chosen id and a priority. */
export const ExperimentSubmission = Type.Union(
  [
    Type.Object(
      {
        spec: ExperimentSpecInput,
        id: Type.Optional(
          Type.String({
            pattern: EXPERIMENT_ID_PATTERN,
            description: 'client-chosen id: submitted once only',
          }),
        ),
        priority: Type.Optional(
          Type.Integer({ minimum: 0, maximum: 100, default: 50, description: 'higher starts first' }),
        ),
      },
      { additionalProperties: false, title: 'SubmissionEnvelope' },
    ),
    ExperimentSpecInput,
  ],
  { description: 'the experiment spec, or {spec, id?, priority?}' },
);
export type ExperimentSubmission = Static<typeof ExperimentSubmission>;

export const ExperimentIdParams = Type.Object({ id: Type.String({ maxLength: 128 }) });

export const SubmissionAccepted = Type.Object({ id: Type.String(), status: ExperimentStatus, links: Links });
export type SubmissionAccepted = Static<typeof SubmissionAccepted>;

export const CancelReply = Type.Object({
  id: Type.String(),
  status: Type.Union([Type.Literal('cancelled'), Type.Literal('cancelling')]),
});
export type CancelReply = Static<typeof CancelReply>;

export const ExperimentListQuery = Type.Object({
  status: Type.Optional(ExperimentStatus),
  offset: Type.Integer({ minimum: 0, default: 0 }),
  limit: Type.Integer({ minimum: 1, maximum: 200, default: 50 }),
});

export const ExperimentSummary = Type.Object({
  id: Type.String(),
  status: ExperimentStatus,
  priority: Type.Integer(),
  workers: Type.Integer({ description: 'workers the experiment needs' }),
  experimentName: Type.String(),
  runName: Type.Optional(Type.String()),
  submittedAt: Type.String({ format: 'date-time' }),
  startedAt: Type.Optional(Type.String({ format: 'date-time' })),
  endedAt: Type.Optional(Type.String({ format: 'date-time' })),
  restarts: Type.Integer(),
  worldSize: Type.Optional(
    Type.Integer({
      description:
        'ranks of the latest generation (the one running, or the last one before a restart); absent before the first starts',
    }),
  ),
  latestMetrics: Type.Optional(Metrics),
});
export type ExperimentSummary = Static<typeof ExperimentSummary>;

/** The `end` event of a stream whose experiment's record is gone: only these two fields. */
export const ExperimentGoneSummary = Type.Object({ id: Type.String(), status: Type.Literal('unknown') });
export type ExperimentGoneSummary = Static<typeof ExperimentGoneSummary>;

export const ExperimentListReply = Type.Object({
  total: Type.Integer(),
  offset: Type.Integer(),
  limit: Type.Integer(),
  items: Type.Array(ExperimentSummary),
});
export type ExperimentListReply = Static<typeof ExperimentListReply>;

export const ExperimentProgress = Type.Object({
  epoch: Type.Integer({ description: '0-based' }),
  epochs: Type.Integer(),
  step: Type.Integer({ description: '0-based step within the epoch' }),
  stepsPerEpoch: Type.Integer(),
  fraction: Type.Number({ minimum: 0, maximum: 1 }),
  loss: Type.Number(),
  ranks: Type.Array(
    Type.Object({ rank: Type.Integer(), epoch: Type.Integer(), step: Type.Integer(), loss: Type.Number() }),
    {
      description:
        "the newest step of each rank of the current generation (an earlier generation's ranks are gone)",
    },
  ),
});
export type ExperimentProgress = Static<typeof ExperimentProgress>;

/** One generation of a run (its `generation` event): who runs it, and why it has that size. */
export const GenerationView = Type.Object(
  {
    generation: Type.Integer({
      minimum: 1,
      description: '1 for the first, one more for each restart or growth',
    }),
    worldSize: Type.Integer({ minimum: 1, description: 'its ranks' }),
    workers: Type.Array(Type.String(), { description: 'the worker of each rank' }),
    change: literalChoice(GENERATION_CHANGES, {
      description:
        'start (the first), restart (the same size after a failure), shrink (fewer: a lost worker not replaced in time), grow (more: idle workers at a checkpoint)',
    }),
    reason: Type.String({ description: 'why it has this size: the failure, the lost worker, the idle ones' }),
    resumeEpoch: Type.Integer({
      minimum: 0,
      description: "the epoch it starts at (after its checkpoint's), or 0",
    }),
    at: Type.String({ format: 'date-time', description: 'when its ranks were assigned' }),
  },
  { title: 'Generation' },
);
export type GenerationView = Static<typeof GenerationView>;

/** The trained model, in the two forms a run leaves (`model` of ExperimentDetail). */
const ExperimentModel = Type.Object(
  {
    checkpoint: Type.Optional(
      Type.Object(
        {
          path: Type.String({
            description:
              'checkpoint folder (checkpoint.json + weights) on the shared folder: `lits predict --model <path>`',
          }),
          kind: Type.Union([Type.Literal('best'), Type.Literal('final'), Type.Literal('last')], {
            description:
              'best (lowest train loss of the test epochs), else final, else last: what `lits predict --model <run folder>` picks',
          }),
          artifact: Type.Optional(Type.String({ description: 'MLflow artifact URI of this checkpoint' })),
        },
        { description: 'what `lits predict` loads; present once training wrote one' },
      ),
    ),
    tfjsExport: Type.Optional(
      Type.Object(
        {
          path: Type.String({
            description: 'tfjs export folder (model.json + weight shards) on the shared folder',
          }),
          artifact: Type.Optional(Type.String({ description: 'MLflow artifact URI of the export' })),
          files: Type.Array(Type.Object({ name: Type.String(), bytes: Type.Integer(), url: Type.String() })),
        },
        {
          description:
            'the final weights for tf.loadLayersModel (browser, tfjs-node); `lits predict` cannot load it. Present once the run finished',
        },
      ),
    ),
  },
  { description: 'the trained model, in the two forms the run leaves' },
);

export const ExperimentDetail = Type.Object({
  ...ExperimentSummary.properties,
  spec: Type.Record(Type.String(), Type.Unknown()),
  progress: Type.Optional(ExperimentProgress),
  testMetrics: Type.Optional(Metrics),
  error: Type.Optional(Type.String()),
  queuePosition: Type.Optional(Type.Integer({ description: 'place among experiments waiting for workers' })),
  workerIds: Type.Optional(
    Type.Array(Type.String(), {
      description:
        'the live worker list: worker of each rank; while restarting, those still with the run (the lost ones are gone)',
    }),
  ),
  waitingForWorkers: Type.Optional(
    Type.Object(
      {
        needed: Type.Integer({ description: 'workers the next generation needs' }),
        free: Type.Integer({ description: 'free, live workers it could lease now' }),
        missing: Type.Integer({ description: 'how many more must register or become free' }),
        message: Type.String({ description: 'the engine waited for and the live workers seen' }),
        since: Type.String({ format: 'date-time' }),
      },
      {
        description:
          'present while the run waits for workers before a generation starts (after a restart, or at the start); it fails after the wait-for-workers limit',
      },
    ),
  ),
  generations: Type.Optional(
    Type.Array(GenerationView, {
      description: 'the generations so far, oldest first (the last 50); the last is the current one',
    }),
  ),
  resuming: Type.Optional(
    Type.Object(
      {
        generation: Type.Integer(),
        worldSize: Type.Integer(),
        resumeEpoch: Type.Integer({ description: 'the epoch its ranks start at' }),
        since: Type.String({ format: 'date-time' }),
      },
      {
        description:
          'present while the current generation runs but none of its ranks has reported a step yet (loading the checkpoint, compiling); `progress` is then absent',
      },
    ),
  ),
  tracking: Type.Optional(
    Type.Object({
      kind: Type.Union([Type.Literal('mlflow'), Type.Literal('local')]),
      runId: Type.String(),
      url: Type.String({ description: 'the MLflow run page, or the local run folder' }),
    }),
  ),
  model: Type.Optional(ExperimentModel),
  links: Links,
});
export type ExperimentDetail = Static<typeof ExperimentDetail>;

export const MetricHistoryReply = Type.Object({
  id: Type.String(),
  metrics: Type.Record(
    Type.String(),
    Type.Array(Type.Object({ step: Type.Integer(), value: Type.Number() })),
  ),
});
export type MetricHistoryReply = Static<typeof MetricHistoryReply>;

export const ExperimentEventsQuery = Type.Object({
  lastEventId: Type.Optional(
    Type.String({
      pattern: '^\\d+-\\d+$',
      description: 'resume after this id (as the Last-Event-ID header)',
    }),
  ),
});

export const WorkerView = Type.Object({
  id: Type.String(),
  host: Type.String(),
  engine: Type.String(),
  engineThreads: Type.Optional(
    Type.Object(
      { intraOp: Type.Integer(), interOp: Type.Integer() },
      { description: "a native engine's thread pools: runs lease workers by them (spec engine-threads)" },
    ),
  ),
  libtensorflow: Type.Optional(Type.String()),
  engineFallback: Type.Optional(
    Type.String({ description: "why the worker's auto engine is not the one it prefers" }),
  ),
  device: Type.String(),
  state: Type.String({ description: 'idle | busy | stopping | dead (no heartbeat)' }),
  runId: Type.Optional(Type.String()),
  rank: Type.Optional(Type.Integer()),
  leasedTo: Type.Optional(Type.String()),
  heartbeatAgeMs: Type.Optional(Type.Number()),
  lastHeartbeatAt: Type.Optional(Type.String({ format: 'date-time' })),
  startedAt: Type.String({ format: 'date-time' }),
});
export type WorkerView = Static<typeof WorkerView>;

export const WorkersReply = Type.Object({ workers: Type.Array(WorkerView) });
export type WorkersReply = Static<typeof WorkersReply>;

export const HealthReply = Type.Object({
  status: Type.String(),
  message: Type.Optional(
    Type.String({ description: 'when not ready: which dependency is unreachable, and why' }),
  ),
  checks: Type.Optional(Type.Record(Type.String(), Type.String())),
});
export type HealthReply = Static<typeof HealthReply>;
