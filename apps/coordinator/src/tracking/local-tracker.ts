import { appendFileSync, cpSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
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
  ) {
    mkdirSync(join(runDir, 'artifacts'), { recursive: true });
    this.meta = { runId: trackingRunId, runName, status: 'RUNNING', startTime: Date.now() };
    this.writeJson('meta.json', this.meta);
  }

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
