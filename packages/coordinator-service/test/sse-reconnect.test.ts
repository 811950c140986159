import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { serviceUrl } from '@lits-ddp/local-services/vitest';
import { runEventXadd, runKeys, type RunEvent } from '@lits-ddp/protocol';
import { CoordinatorClient } from '@lits-ddp/coordinator-client';
import { buildApp, type CoordinatorApp } from '../src/index.js';

process.env.LITS_KEY_PREFIX = `sse-${randomBytes(3).toString('hex')}`;
const redisUrl = serviceUrl('redis');
const TOKEN = 'sse-reconnect-token-0123456789';
const auth = { authorization: `Bearer ${TOKEN}` };
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A gate one side opens and the other waits on: the test decides when the run pauses and goes on. */
const signal = (): { promise: Promise<void>; open: () => void } => {
  let open = (): void => undefined;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
};

/** What two ranks of a run write to its stream, in order, with the protocol's own XADD builder. */
function runEvents(epochs: number, steps: number): RunEvent[] {
  const timings = { computeMs: 40, allReduceMs: 5, dataMs: 2, otherMs: 1 };
  const out: RunEvent[] = [{ type: 'status', status: 'running', restarts: 0 }];
  for (const rank of [0, 1])
    out.push({ type: 'started', generation: 1, rank, engine: 'cpu', weightHash: 'w0' });
  for (let epoch = 0; epoch < epochs; epoch++) {
    for (let step = 0; step < steps; step++)
      for (const rank of [0, 1]) {
        const loss = 1 / (1 + epoch * steps + step);
        out.push({ type: 'progress', generation: 1, rank, epoch, step, stepsPerEpoch: steps, loss, timings });
      }
    const metrics = { train_avg_loss: 1 / (1 + epoch), train_iou_1: epoch / epochs, val_iou_2: epoch / 10 };
    out.push({ type: 'metrics', generation: 1, epoch, metrics });
    const path = `/shared/runs/x/checkpoints/last`;
    out.push({
      type: 'checkpoint',
      generation: 1,
      epoch,
      path,
      kind: 'last',
      trainLoss: metrics.train_avg_loss,
    });
    out.push({ type: 'log', rank: 0, level: 'info', message: `epoch ${epoch} done` });
  }
  for (const rank of [0, 1])
    out.push({ type: 'finished', generation: 1, rank, weightHash: 'w9', testMetrics: {}, modelPath: '' });
  out.push({ type: 'status', status: 'finished', restarts: 0 });
  return out;
}

describe.skipIf(!redisUrl)(
  'SSE of a live run across a dropped connection (real app over HTTP, real Redis)',
  () => {
    let base: string;
    let app: CoordinatorApp;
    let url: string;
    let redis: Redis;
    const sockets = new Set<Socket>();
    let eventRequests = 0;

    beforeAll(async () => {
      base = await mkdtemp(join(tmpdir(), 'coord-sse-'));
      await mkdir(join(base, 'data', 'ds'), { recursive: true });
      redis = new Redis(redisUrl as string);
      app = await buildApp({
        redisUrl: redisUrl as string,
        tokens: [TOKEN],
        dataRoot: join(base, 'data'),
        home: join(base, 'home'),
        logger: pino({ level: 'silent' }),
        sse: { pollMs: 20 },
      });
      app.server.on('connection', (s: Socket) => {
        sockets.add(s);
        s.once('close', () => sockets.delete(s));
      });
      app.server.on('request', (req: { url?: string }) => {
        if (req.url?.endsWith('/events')) eventRequests++;
      });
      url = await app.listen({ port: 0, host: '127.0.0.1' });
    });
    afterAll(async () => {
      await app?.close();
      redis?.disconnect();
      await rm(base, { recursive: true, force: true });
    });

    /** A new experiment, as running; `write` appends the run's events the way the workers do. */
    async function liveRun(): Promise<{
      id: string;
      events: RunEvent[];
      write: (from: number, to: number) => Promise<void>;
      end: () => Promise<void>;
    }> {
      const body = { 'dataset-path': 'ds', gpus: 2, 'test-epochs': 1, max_epochs: 4 };
      const created = await app.inject({
        method: 'POST',
        url: '/v1/experiments',
        headers: auth,
        payload: body,
      });
      const id = created.json().id as string;
      await app.ctx.store.update(id, { status: 'running' });
      const events = runEvents(4, 5);
      return {
        id,
        events,
        write: async (from, to) => {
          for (const event of events.slice(from, to)) {
            await redis.xadd(...runEventXadd(id, event));
            await sleep(3);
          }
        },
        // The coordinator marks the record done once tracking is delivered: followers end then.
        end: () => app.ctx.store.update(id, { status: 'finished', done: true }),
      };
    }

    /** Every entry of the run's stream, as Redis holds it: what a follower must see, once each. */
    async function streamed(id: string): Promise<Array<{ id: string; event: RunEvent }>> {
      const entries = (await redis.xrange(runKeys.events(id), '-', '+')) as Array<[string, string[]]>;
      return entries.map(([sid, fields]) => ({
        id: sid,
        event: JSON.parse(fields[1] as string) as RunEvent,
      }));
    }

    it('resumes after Last-Event-ID when the client drops mid-run: every event once, in order', async () => {
      const run = await liveRun();
      const half = Math.floor(run.events.length / 2);
      const received: Array<{ id: string; event: RunEvent }> = [];
      let ended: EventSourceMessage | undefined;

      /** Reads the stream until `stopAfter` events came (then drops the connection) or it ends. */
      async function read(lastEventId: string, stopAfter: number): Promise<'dropped' | 'ended'> {
        const drop = new AbortController();
        const res = await fetch(`${url}/v1/experiments/${run.id}/events`, {
          headers: { ...auth, ...(lastEventId ? { 'last-event-id': lastEventId } : {}) },
          signal: drop.signal,
        });
        expect(res.status).toBe(200);
        let seen = 0;
        const parser = createParser({
          onEvent: (m) => {
            if (drop.signal.aborted) return; // what arrives after the drop is lost, as on a broken link
            if (m.event === 'end') ended = m;
            else {
              received.push({ id: m.id as string, event: JSON.parse(m.data) as RunEvent });
              if (++seen >= stopAfter) drop.abort();
            }
          },
        });
        const decoder = new TextDecoder();
        try {
          for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
            parser.feed(decoder.decode(chunk, { stream: true }));
            if (drop.signal.aborted) break;
          }
        } catch (err) {
          if (!drop.signal.aborted) throw err;
        }
        return drop.signal.aborted ? 'dropped' : 'ended';
      }

      // The run writes its first half live while the client reads; the client drops a third in.
      const writing = run.write(0, half);
      expect(await read('', Math.floor(half / 3))).toBe('dropped');
      await writing;
      const atDrop = received.length;
      expect(atDrop).toBeLessThan(half); // the stream had more for this client when it dropped
      // While the client is away the run goes on; then it reconnects after the last id it saw.
      await run.write(half, half + 10);
      const secondHalf = run.write(half + 10, run.events.length).then(run.end);
      expect(await read(received.at(-1)?.id as string, Number.POSITIVE_INFINITY)).toBe('ended');
      await secondHalf;

      const truth = await streamed(run.id);
      expect(truth).toHaveLength(run.events.length + 1); // + the 'queued' status the POST wrote
      expect(received.map((r) => r.id)).toEqual(truth.map((t) => t.id));
      expect(new Set(received.map((r) => r.id)).size).toBe(received.length);
      expect(received.map((r) => r.event)).toEqual(truth.map((t) => t.event));
      expect(JSON.parse(ended?.data ?? '{}')).toMatchObject({ id: run.id, status: 'finished' });
    });

    it('CoordinatorClient.follow reconnects by itself when the server drops the connection, twice', async () => {
      const run = await liveRun();
      const client = new CoordinatorClient({ url, token: TOKEN });
      const got: Array<{ id: string; event: RunEvent }> = [];
      const drops = [12, 40];
      const dropped = drops.map(() => signal());
      const requestsBefore = eventRequests;
      const following = client.follow(
        run.id,
        (m) => {
          if (m.kind !== 'event') return;
          got.push({ id: m.id, event: m.event });
          const at = drops.indexOf(got.length);
          if (at >= 0) {
            for (const s of sockets) s.destroy(); // the coordinator side of every connection goes away
            dropped[at]?.open();
          }
        },
        { retryMs: 50 },
      );
      // The run pauses at each drop (so the drop is mid-run), then writes on while the client is away.
      await run.write(0, drops[0] as number);
      await dropped[0]?.promise;
      await run.write(drops[0] as number, drops[1] as number);
      await dropped[1]?.promise;
      await run.write(drops[1] as number, run.events.length);
      await run.end();
      const summary = await following;

      expect(summary).toMatchObject({ id: run.id, status: 'finished' });
      expect(eventRequests - requestsBefore).toBeGreaterThanOrEqual(3);
      const truth = await streamed(run.id);
      expect(got.map((g) => g.id)).toEqual(truth.map((t) => t.id));
      expect(new Set(got.map((g) => g.id)).size).toBe(truth.length);
      expect(got.map((g) => g.event)).toEqual(truth.map((t) => t.event));
    });
  },
);
