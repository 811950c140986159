import Type, { type Static } from 'typebox';
import { decodeJson, RunEngine, RunSeeds, RunTrackerRef } from '@lits-ddp/protocol';

/** A metric's value. JSON writes NaN (a diverged loss) as null: `decodeExperimentResult` turns it back. */
const MetricValue = Type.Unsafe<number>(Type.Union([Type.Number(), Type.Null()]));
const Metrics = Type.Record(Type.String(), MetricValue);

/** How a run ended, as its supervisor saw it. */
export const RunOutcome = Type.Object({
  status: Type.Union([Type.Literal('finished'), Type.Literal('failed'), Type.Literal('cancelled')]),
  restarts: Type.Integer({ minimum: 0 }),
  generation: Type.Integer({ minimum: 0 }),
  error: Type.Optional(Type.String()),
  testMetrics: Type.Optional(Metrics),
  /** Final weight hash of each rank (all equal when the run is healthy). */
  weightHashes: Type.Optional(Type.Array(Type.String())),
  modelPath: Type.Optional(Type.String()),
  bestCheckpoint: Type.Optional(Type.String()),
  lastCheckpoint: Type.Optional(Type.Object({ path: Type.String(), epoch: Type.Integer() })),
  /** The latest value of every metric logged (train_*, val_*, test_*, lr). */
  latestMetrics: Type.Optional(Metrics),
  /** Worker id of each rank in the last generation. */
  workers: Type.Optional(Type.Array(Type.String())),
  /** The engine every rank ran (unset when no generation started). */
  engine: Type.Optional(RunEngine),
  /** libtensorflow's version on a native engine. */
  libtensorflow: Type.Optional(Type.String()),
  /** Why `auto` did not get the engine it prefers. */
  engineFallback: Type.Optional(Type.String()),
});
export type RunOutcome = Static<typeof RunOutcome>;

/** What `runExperiment` returns, and keeps as JSON in the run record once the run is done. */
export const ExperimentResult = Type.Object({
  ...RunOutcome.properties,
  runId: Type.String(),
  runDir: Type.String(),
  seeds: RunSeeds,
  tracker: Type.Object({ ...RunTrackerRef.properties, delivered: Type.Boolean() }),
});
export type ExperimentResult = Static<typeof ExperimentResult>;

/** A stored experiment result, checked, with its NaN metrics (null in JSON) restored. */
export function decodeExperimentResult(text: string, source: string): ExperimentResult {
  const result = decodeJson(ExperimentResult, text, source);
  for (const metrics of [result.testMetrics, result.latestMetrics]) {
    for (const [key, value] of Object.entries(metrics ?? {}))
      if ((value as number | null) === null) (metrics as Record<string, number>)[key] = Number.NaN;
  }
  return result;
}
