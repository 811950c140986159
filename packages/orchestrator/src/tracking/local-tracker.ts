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
import type { FinalStatus, RunTracker, TrackerFinish } from './run-tracker.js';

/**
 * A run folder under ./runs/<runId>/ for when no MLflow server is configured:
 * meta.json, params.json, tags.json, metrics.jsonl (one {key, value, step, timestamp} per line)
 * and artifacts/. Writes are synchronous and small, so nothing is queued and nothing can be lost.
 */
export class LocalRunTracker implements RunTracker {
  readonly kind = 'local' as const;
  private readonly params: Record<string, string> = {};
  private readonly tags: Record<string, string> = {};
  private readonly meta: {
    runId: string;
    runName: string;
    status: string;
    startTime: number;
    endTime?: number;
  };

  constructor(
    readonly runDir: string,
    readonly trackingRunId: string,
    runName: string,
    resume = false,
  ) {
    mkdirSync(join(runDir, 'artifacts'), { recursive: true });
    const read = (name: string): Record<string, unknown> | undefined =>
      resume && existsSync(join(runDir, name))
        ? (JSON.parse(readFileSync(join(runDir, name), 'utf8')) as Record<string, unknown>)
        : undefined;
    Object.assign(this.params, read('params.json'));
    Object.assign(this.tags, read('tags.json'));
    const meta = read('meta.json') as LocalRunTracker['meta'] | undefined;
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
        const m = JSON.parse(line) as { key: string; step: number };
        if (keys.has(m.key)) out.add(`${m.key}@${m.step}`);
      } catch {
        // a line cut short by a crash: that point is logged again
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
