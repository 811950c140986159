import {
  appendFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { basename, join } from 'node:path';
import Type, { type Static, type TSchema } from 'typebox';
import { decodeJson, JsonDecodeError } from '@lits-ddp/protocol';
import type { FinalStatus, RunTracker, TrackerFinish } from './run-tracker.js';

const StringMap = Type.Record(Type.String(), Type.String());
const RunMeta = Type.Object({
  runId: Type.String(),
  runName: Type.String(),
  status: Type.String(),
  startTime: Type.Number(),
  endTime: Type.Optional(Type.Number()),
});
type RunMeta = Static<typeof RunMeta>;
/** The part of a metrics.jsonl line that says which point it logged. */
const MetricPoint = Type.Object({ key: Type.String(), step: Type.Number() });

/**
 * A run folder under ./runs/<runId>/ for when no MLflow server is configured:
 * meta.json, params.json, tags.json, metrics.jsonl (one {key, value, step, timestamp} per line)
 * and artifacts/. Writes are synchronous and small, so nothing is queued and nothing can be lost.
 */
export class LocalRunTracker implements RunTracker {
  readonly kind = 'local' as const;
  private readonly params: Record<string, string> = {};
  private readonly tags: Record<string, string> = {};
  private readonly meta: RunMeta;

  constructor(
    readonly runDir: string,
    readonly trackingRunId: string,
    runName: string,
    resume = false,
  ) {
    mkdirSync(join(runDir, 'artifacts'), { recursive: true });
    const read = <T extends TSchema>(name: string, schema: T): Static<T> | undefined => {
      const file = join(runDir, name);
      return resume && existsSync(file) ? decodeJson(schema, readFileSync(file, 'utf8'), file) : undefined;
    };
    Object.assign(this.params, read('params.json', StringMap));
    Object.assign(this.tags, read('tags.json', StringMap));
    const meta = read('meta.json', RunMeta);
    this.meta = meta ?? { runId: trackingRunId, runName, status: 'RUNNING', startTime: Date.now() };
    this.writeJson('meta.json', this.meta);
  }

  /** Continues the run folder of a run whose coordinator stopped. */
  static attach(runDir: string, trackingRunId: string): LocalRunTracker {
    return new LocalRunTracker(runDir, trackingRunId, trackingRunId, true);
  }

  async loggedMetricSteps(keys: ReadonlySet<string>): Promise<Set<string>> {
    const file = join(this.runDir, 'metrics.jsonl');
    const out = new Set<string>();
    if (!existsSync(file)) return out;
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      if (!line.trim()) continue;
      try {
        const m = decodeJson(MetricPoint, line, file);
        if (keys.has(m.key)) out.add(`${m.key}@${m.step}`);
      } catch (err) {
        // A line cut short by a crash (and the line appended to it on resume): not logged, so
        // those points are logged again.
        if (!(err instanceof JsonDecodeError)) throw err;
      }
    }
    return out;
  }

  async flush(): Promise<void> {}

  get location(): string {
    return this.runDir;
  }

  logParams(params: Record<string, string | number | boolean>): void {
    for (const [k, v] of Object.entries(params)) this.params[k] = String(v);
    this.writeJson('params.json', this.params);
  }

  setTags(tags: Record<string, string>): void {
    Object.assign(this.tags, tags);
    this.writeJson('tags.json', this.tags);
  }

  logMetrics(metrics: Record<string, number>, step: number): void {
    const timestamp = Date.now();
    const lines = Object.entries(metrics).map(([key, value]) =>
      JSON.stringify({ key, value, step, timestamp }),
    );
    if (lines.length > 0) appendFileSync(join(this.runDir, 'metrics.jsonl'), `${lines.join('\n')}\n`);
  }

  logArtifact(localPath: string, artifactPath = ''): void {
    const destDir = join(this.runDir, 'artifacts', artifactPath);
    mkdirSync(destDir, { recursive: true });
    const isDir = statSync(localPath).isDirectory();
    cpSync(localPath, isDir ? destDir : join(destDir, basename(localPath)), { recursive: isDir });
  }

  async finish(status: FinalStatus): Promise<TrackerFinish> {
    this.meta.status = status;
    this.meta.endTime = Date.now();
    this.writeJson('meta.json', this.meta);
    return { delivered: true, pending: 0 };
  }

  private writeJson(name: string, value: unknown): void {
    writeFileSync(join(this.runDir, name), `${JSON.stringify(value, null, 2)}\n`);
  }
}
