import Type from 'typebox';
import {
  ExperimentStatus,
  GENERATION_CHANGES,
  ResolvedSpec,
  RunPlan,
  type GenerationChange,
} from '@lits-ddp/protocol';

/**
 * Schemas of the JSON this service reads back from Redis: what another process (or an older
 * version) wrote is checked before it is used, so a corrupt value names its key instead of
 * surfacing later as `undefined`.
 */

/** The part of a run plan (runKeys.plan) the service reads: the worker of each rank. */
export const PlanRanks = Type.Pick(RunPlan, ['ranks']);

/**
 * Metric values: null is how JSON.stringify writes a NaN or infinite one (a diverged loss). Such a
 * value was always stored and served this way (the API serialises it as 0), so it is accepted here.
 */
const Metrics = Type.Record(Type.String(), Type.Union([Type.Number(), Type.Null()]));

const Time = Type.Number({ minimum: 0 });
const Count = Type.Integer({ minimum: 0 });

/** The JSON fields of an experiment record hash (the rest are strings and numbers). */
export const RECORD_JSON_FIELDS = {
  spec: ResolvedSpec,
  workers: Type.Array(Type.String()),
  latestMetrics: Metrics,
  testMetrics: Metrics,
  waitingForWorkers: Type.Object({
    needed: Count,
    free: Count,
    missing: Count,
    message: Type.String(),
    since: Time,
  }),
  generations: Type.Array(
    Type.Object({
      generation: Type.Integer({ minimum: 1 }),
      worldSize: Type.Integer({ minimum: 1 }),
      workers: Type.Array(Type.String()),
      // A union of the literals, typed as the protocol's (a mapped union's static type is lost).
      change: Type.Unsafe<GenerationChange>(Type.Union(GENERATION_CHANGES.map((c) => Type.Literal(c)))),
      reason: Type.String(),
      resumeEpoch: Count,
      at: Time,
    }),
  ),
} as const;

/** An experiment record once its hash fields are decoded (ExperimentRecord; experiment-store checks they agree). */
export const StoredRecord = Type.Object({
  id: Type.String({ minLength: 1 }),
  status: ExperimentStatus,
  priority: Type.Integer({ minimum: 0, maximum: 100 }),
  spec: ResolvedSpec,
  submittedAt: Time,
  startedAt: Type.Optional(Time),
  endedAt: Type.Optional(Time),
  done: Type.Boolean(),
  error: Type.Optional(Type.String()),
  restarts: Type.Integer({ minimum: 0 }),
  workers: Type.Optional(RECORD_JSON_FIELDS.workers),
  latestMetrics: Type.Optional(Metrics),
  testMetrics: Type.Optional(Metrics),
  modelPath: Type.Optional(Type.String()),
  idempotencyKey: Type.Optional(Type.String()),
  cancelRequested: Type.Optional(Type.String()),
  waitingForWorkers: Type.Optional(RECORD_JSON_FIELDS.waitingForWorkers),
  generations: Type.Optional(RECORD_JSON_FIELDS.generations),
});

/** A capacity-gate reservation: workers held for an admitted experiment since `at`. */
export const Reservation = Type.Object({ needs: Type.Integer({ minimum: 0 }), at: Time });

/** An experiment waiting at the capacity gate (GateEntry plus when it started waiting and its last beat). */
export const WaitingEntry = Type.Object({
  id: Type.String(),
  needs: Type.Integer({ minimum: 0 }),
  priority: Type.Number(),
  submittedAt: Time,
  since: Time,
  beat: Time,
});
