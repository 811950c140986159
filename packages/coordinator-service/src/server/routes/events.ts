import { Readable } from 'node:stream';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import {
  ExperimentEventsQuery,
  ExperimentIdParams,
  type ExperimentGoneSummary,
  type ExperimentSummary,
} from '@lits-ddp/protocol';
import { readEventRange } from '@lits-ddp/orchestrator';
import type { AppContext } from '../app-context.js';
import { ErrorReply } from '../schemas.js';
import { toSummary } from './experiment-views.js';

const STREAM_ID = /^\d+-\d+$/;

/** One SSE message; the id is the Redis stream id, so a reconnecting client resumes after it. */
const message = (event: string, data: unknown, id?: string): string =>
  `${id ? `id: ${id}\n` : ''}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;

const sleep = (ms: number, signal: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
  });

/**
 * The run's events from its Redis stream after `after` ('' = from the start), then live ones, until
 * the experiment is over (an `end` event carries its final summary) or the client goes away.
 */
async function* eventStream(
  ctx: AppContext,
  id: string,
  after: string,
  gone: AbortSignal,
): AsyncGenerator<string> {
  const pollMs = ctx.options.sse?.pollMs ?? 500;
  const keepAliveMs = ctx.options.sse?.keepAliveMs ?? 15_000;
  const stop = AbortSignal.any([gone, ctx.closing]);
  yield 'retry: 2000\n\n';
  let cursor = after ? `(${after}` : '-';
  let lastSent = Date.now();
  while (!stop.aborted) {
    const page = await readEventRange(ctx.redis, id, cursor, 500);
    for (const { id: streamId, event } of page.events) yield message(event.type, event, streamId);
    if (page.lastId) {
      cursor = `(${page.lastId}`;
      lastSent = Date.now();
    }
    if (page.full) continue;
    // Drained: the experiment is over once its record says so (tracking delivered).
    const rec = await ctx.store.get(id);
    if (!rec || rec.done) {
      const tail = await readEventRange(ctx.redis, id, cursor, 500);
      for (const { id: streamId, event } of tail.events) yield message(event.type, event, streamId);
      const summary: ExperimentSummary | ExperimentGoneSummary = rec
        ? toSummary(rec)
        : { id, status: 'unknown' };
      yield message('end', summary);
      return;
    }
    if (Date.now() - lastSent > keepAliveMs) {
      yield ': keep-alive\n\n';
      lastSent = Date.now();
    }
    await sleep(pollMs, stop);
  }
}

/** The SSE stream of one experiment's events. */
export const eventRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { ctx } = app;
  app.get(
    '/v1/experiments/:id/events',
    {
      schema: {
        tags: ['experiments'],
        summary: 'Live events (SSE): status, progress, metrics, checkpoints, logs',
        description:
          'text/event-stream. Each message has the Redis stream id as its id and the event type as its name; a reconnect with Last-Event-ID (or ?lastEventId=) resumes after it. The stream ends with an `end` event holding the final summary.',
        security: [{ bearer: [] }],
        params: ExperimentIdParams,
        querystring: ExperimentEventsQuery,
        headers: Type.Object({ 'last-event-id': Type.Optional(Type.String()) }),
        response: { 400: ErrorReply, 401: ErrorReply, 404: ErrorReply },
      },
    },
    async (req, reply) => {
      const { id } = req.params;
      if (!(await ctx.store.get(id)))
        return reply.code(404).send({ statusCode: 404, error: 'Not Found', message: `no experiment ${id}` });
      const header = req.headers['last-event-id'];
      const after = (typeof header === 'string' && header) || req.query.lastEventId || '';
      if (after && !STREAM_ID.test(after))
        return reply.code(400).send({
          statusCode: 400,
          error: 'Bad Request',
          message: `Last-Event-ID must be a stream id such as 1700000000000-0, got ${after.slice(0, 40)}`,
          errors: [{ path: '/last-event-id', message: 'must look like <ms>-<seq>' }],
        });
      const gone = new AbortController();
      req.raw.once('close', () => gone.abort());
      reply.raw.once('close', () => gone.abort());
      reply
        .header('content-type', 'text/event-stream; charset=utf-8')
        .header('cache-control', 'no-cache, no-transform')
        .header('x-accel-buffering', 'no');
      const stream = Readable.from(eventStream(ctx, id, after, gone.signal), { objectMode: false });
      // Fastify pipes a stream payload; its typed reply only knows the JSON response schemas.
      return reply.send(stream as never);
    },
  );
};
