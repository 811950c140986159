import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CounterRng } from '@lits-ddp/counter-rng';
import { serviceUrl } from '@lits-ddp/local-services/vitest';
import { abortRun, cleanupRun } from '../src/index.js';
import { newRunId, runKeys } from './group.js';

const redisUrl = serviceUrl('redis');
const FIXTURE = new URL('./fixtures/rank.mjs', import.meta.url).pathname;
const SEED = 77;

interface RankEvent {
  rank: number;
  at: number;
  event: 'ready' | 'enter' | 'done' | 'error' | 'aborting';
  i?: number;
  name?: string;
  message?: string;
  suspects?: number[];
  abortedBy?: number | string;
}

/** N rank processes of one run; collects their events. */
class Ranks {
  readonly children: ChildProcess[];
  readonly events: RankEvent[] = [];
  readonly stderr: string[] = [];
  private listeners: (() => void)[] = [];

  constructor(worldSize: number, config: (rank: number) => object) {
    this.children = Array.from({ length: worldSize }, (_, rank) => {
      const child = spawn(process.execPath, [FIXTURE, JSON.stringify({ rank, worldSize, ...config(rank) })], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
        this.events.push(JSON.parse(line) as RankEvent);
        for (const l of this.listeners) l();
      });
      child.stderr?.on('data', (d: Buffer) => this.stderr.push(d.toString()));
      return child;
    });
  }

  /** Resolves with the first event matching `match`, or fails after `ms`. */
  waitFor(match: (e: RankEvent) => boolean, ms = 60_000): Promise<RankEvent> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const found = this.events.find(match);
        if (found) {
          clearTimeout(timer);
          this.listeners = this.listeners.filter((l) => l !== check);
          resolve(found);
        }
      };
      const timer = setTimeout(
        () => reject(new Error(`no matching rank event within ${ms} ms; stderr: ${this.stderr.join('')}`)),
        ms,
      );
      this.listeners.push(check);
      check();
    });
  }

  async exited(): Promise<void> {
    await Promise.all(
      this.children.map((c) =>
        c.exitCode !== null || c.signalCode !== null ? undefined : new Promise((r) => c.once('exit', r)),
      ),
    );
  }

  kill(): void {
    for (const c of this.children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  }
}

describe.skipIf(!redisUrl)('ranks as separate processes against a real redis-server', () => {
  let outDir: string;
  let ranks: Ranks | undefined;
  beforeAll(async () => {
    outDir = await mkdtemp(join(tmpdir(), 'allreduce-proc-'));
  });
  afterEach(() => ranks?.kill());
  afterAll(async () => {
    await rm(outDir, { recursive: true, force: true });
  });

  it('3 processes: results are bitwise identical and match a float64 reference', async () => {
    const runId = newRunId('proc');
    const cases = [
      { length: 1, op: 'sum' },
      { length: 16383, op: 'mean' },
      { length: 16385, op: 'max' },
      { length: 1_048_583, op: 'sum' },
    ];
    ranks = new Ranks(3, () => ({
      redis: redisUrl,
      runId,
      timeoutS: 30,
      chunkBytes: 65536,
      scenario: 'cases',
      cases,
      seed: SEED,
      outDir,
    }));
    for (let r = 0; r < 3; r++)
      await ranks.waitFor((e) => e.rank === r && (e.event === 'done' || e.event === 'error'));
    expect(ranks.events.filter((e) => e.event === 'error')).toEqual([]);
    for (const [i, c] of cases.entries()) {
      const files = await Promise.all([0, 1, 2].map((r) => readFile(join(outDir, `r${r}-c${i}.bin`))));
      expect(files[1]?.equals(files[0] as Buffer)).toBe(true);
      expect(files[2]?.equals(files[0] as Buffer)).toBe(true);
      const f = files[0] as Buffer;
      const got = new Float32Array(f.buffer, f.byteOffset, c.length);
      const xs = [0, 1, 2].map((r) =>
        CounterRng.derive(SEED, 'process-test', i, r).fillUniform(new Float32Array(c.length), -1, 1),
      );
      for (let k = 0; k < c.length; k++) {
        let sum = 0;
        let abs = 0;
        let max = -Infinity;
        for (const x of xs) {
          const v = x[k] as number;
          sum += v;
          abs += Math.abs(v);
          if (v > max) max = v;
        }
        const ref = c.op === 'max' ? max : c.op === 'mean' ? sum / 3 : sum;
        const bound = c.op === 'max' ? 0 : 2 * 2 ** -24 * abs + 2 ** -24 * Math.abs(ref);
        if (Math.abs((got[k] as number) - ref) > bound)
          throw new Error(`case ${i} index ${k}: ${got[k]} vs ${ref}`);
      }
    }
    await ranks.exited();
    const left = await runKeys(redisUrl as string, runId);
    expect([...left.keys()].every((k) => k.endsWith(':progress'))).toBe(true);
    await cleanupRun({ redis: redisUrl as string, runId });
    expect((await runKeys(redisUrl as string, runId)).size).toBe(0);
  });

  it('kill -9 of one rank mid-reduce: its neighbour times out naming it, the abort releases the rest; no keys after cleanup', async () => {
    const runId = newRunId('kill');
    // Rank 3 pops from rank 2, so it is the one that sees the death. Ranks 0 and 1 wait far longer than that: if
    // they reject in time, the abort released them, not their own timeouts.
    const detectorTimeoutS = 5;
    const othersTimeoutS = 30;
    const loop = {
      redis: redisUrl,
      runId,
      chunkBytes: 262144,
      scenario: 'loop',
      length: 1 << 20,
      iterations: 10_000,
      seed: SEED,
    };
    ranks = new Ranks(4, (rank) => ({
      ...loop,
      timeoutS: rank === 3 ? detectorTimeoutS : othersTimeoutS,
    }));
    await ranks.waitFor((e) => e.rank === 2 && e.event === 'enter' && e.i === 3);
    await new Promise((r) => setTimeout(r, 20));
    const killedAt = Date.now();
    ranks.children[2]?.kill('SIGKILL');
    const [detector, ...released] = await Promise.all(
      [3, 0, 1].map((r) => (ranks as Ranks).waitFor((e) => e.rank === r && e.event === 'error', 45_000)),
    );
    const d = detector as RankEvent;
    expect(d.name).toBe('CollectiveTimeoutError');
    expect(d.at - killedAt).toBeLessThanOrEqual(detectorTimeoutS * 1000 + 1000);
    expect(d.message).toMatch(/timed out on rank 3 after 5 s waiting for rank 2/);
    expect(d.message).toMatch(/rank 2 has no connection to Redis/);
    expect(d.suspects).toEqual([2]);
    for (const e of released) {
      expect(e.name).toBe('CollectiveAbortedError');
      expect(e.abortedBy).toBe(3);
      expect(e.at - killedAt).toBeLessThanOrEqual(detectorTimeoutS * 1000 + 1500);
      expect(e.message).toMatch(/the group was aborted by rank 3: .*rank 2 has no connection to Redis/);
      expect(e.suspects).toEqual([2]);
    }
    await ranks.exited();
    const left = await runKeys(redisUrl as string, runId);
    expect([...left.keys()].some((k) => k.endsWith(':abort'))).toBe(true);
    for (const [key, ttl] of left) expect(ttl, key).toBeGreaterThan(0);
    await cleanupRun({ redis: redisUrl as string, runId });
    expect((await runKeys(redisUrl as string, runId)).size).toBe(0);
  });

  it('abort by one rank process, and by the coordinator, propagates to every rank within about a second', async () => {
    const runId = newRunId('abort');
    const base = {
      redis: redisUrl,
      runId,
      timeoutS: 30,
      scenario: 'loop',
      length: 1 << 18,
      iterations: 10_000,
      seed: SEED,
    };
    ranks = new Ranks(3, (rank) =>
      rank === 1 ? { ...base, abortAt: 5, abortReason: 'corrupt batch' } : base,
    );
    const aborting = await ranks.waitFor((e) => e.event === 'aborting');
    for (const r of [0, 2]) {
      const e = await ranks.waitFor((ev) => ev.rank === r && ev.event === 'error');
      expect(e.name).toBe('CollectiveAbortedError');
      expect(e.abortedBy).toBe(1);
      expect(e.message).toMatch(/aborted by rank 1: corrupt batch/);
      expect(e.at - aborting.at).toBeLessThan(1000);
    }
    await ranks.exited();

    const generation = 1;
    ranks = new Ranks(3, () => ({ ...base, generation }));
    await ranks.waitFor((e) => e.rank === 0 && e.event === 'enter' && e.i === 5);
    await abortRun({ redis: redisUrl as string, runId, generation, reason: 'experiment cancelled' });
    const abortedAt = Date.now();
    for (const r of [0, 1, 2]) {
      const e = await ranks.waitFor((ev) => ev.rank === r && ev.event === 'error');
      expect(e.message).toMatch(/aborted by coordinator: experiment cancelled/);
      expect(e.at - abortedAt).toBeLessThan(1000);
    }
    await ranks.exited();
    await cleanupRun({ redis: redisUrl as string, runId });
    expect((await runKeys(redisUrl as string, runId)).size).toBe(0);
  });
});
