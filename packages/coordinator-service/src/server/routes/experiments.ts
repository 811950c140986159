import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import type { FastifySchemaValidationError } from 'fastify';
import Type from 'typebox';
import { runKeys } from '@lits-ddp/protocol';
import { publishEvent } from '@lits-ddp/orchestrator';
import {
  newExperimentId,
  submissionDigest,
  TERMINAL_STATUSES,
  type ExperimentStatus,
} from '../../queue/experiment-store.js';
import type { AppContext, TypedApp } from '../build-app.js';
import {
  Accepted,
  CancelReply,
  Detail,
  ErrorReply,
  IdParams,
  ListQuery,
  ListReply,
  MetricsReply,
  Submission,
} from '../schemas.js';
import { parseSubmission } from '../submission.js';
import { linksOf, modelDirOf, modelFiles, toDetail, toSummary } from './experiment-views.js';

const security = [{ bearer: [] }];
const errors = { 400: ErrorReply, 401: ErrorReply, 404: ErrorReply, 409: ErrorReply, 429: ErrorReply };

const idempotencyKeyError = (key: unknown): FastifySchemaValidationError => ({
  keyword: 'maxLength',
  instancePath: '/idempotency-key',
  schemaPath: '#/properties/idempotency-key',
  params: { limit: 255 },
  message: `must be 1 to 255 characters, got ${typeof key === 'string' ? key.length : typeof key}`,
});

type HttpError = Error & { statusCode: number };
const httpError = (statusCode: number, message: string): HttpError =>
  Object.assign(new Error(message), { statusCode });

export function registerExperimentRoutes(app: TypedApp, ctx: AppContext): void {
  const { store, queue, redis } = ctx;

  app.post(
    '/v1/experiments',
    {
      schema: {
        tags: ['experiments'],
        summary: 'Submit an experiment',
        description:
          'Queues an experiment. An Idempotency-Key header, or a client-chosen id, makes retries safe: the same experiment is returned and never queued twice (409 when the key or id names a different one).',
        security,
        headers: Type.Object({
          'idempotency-key': Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
        }),
        body: Submission,
        response: { 200: Accepted, 202: Accepted, ...errors, 413: ErrorReply },
      },
      // The body is checked by resolveSpec (field paths, cross-field rules), not by the schema above.
      validatorCompiler: ({ httpPart }) =>
        httpPart === 'body'
          ? (data: unknown) => ({ value: data })
          : (data: unknown) => {
              const key = (data as Record<string, unknown>)['idempotency-key'];
              if (key !== undefined && (typeof key !== 'string' || key.length === 0 || key.length > 255))
                // A validation list (not a plain Error), so the 400 names the header as its field path.
                return { error: [idempotencyKeyError(key)] };
              return { value: data };
            },
    },
    async (req, reply) => {
      const parsed = await parseSubmission(req.body, {
        dataRoot: ctx.options.dataRoot,
        home: ctx.options.home,
      });
      if (!parsed.ok)
        return reply.code(400).send({
          statusCode: 400,
          error: 'Bad Request',
          message: parsed.errors.map((e) => `${e.path}: ${e.message}`).join('; '),
          errors: parsed.errors,
        });
      const { spec, priority } = parsed.value;
      const idempotencyKey = req.headers['idempotency-key'] as string | undefined;
      const { id, created } = await store.create({
        id: parsed.value.id ?? newExperimentId(),
        spec,
        priority,
        ...(idempotencyKey ? { idempotencyKey } : {}),
      });
      if (!created) {
        const digest = await store.digestOf(id);
        if (digest === undefined) throw httpError(409, `experiment ${id} is being created; retry shortly`);
        if (digest !== submissionDigest(spec, priority))
          throw httpError(
            409,
            idempotencyKey
              ? `Idempotency-Key was already used for experiment ${id}, with a different submission`
              : `experiment ${id} already exists with a different submission`,
          );
        reply.header('idempotent-replayed', 'true');
      }
      let status: ExperimentStatus = 'queued';
      if (created) await queue.enqueue(id, priority);
      else {
        // Queued with no job: its creator died before adding it (a removed job means cancelled or done).
        const rec = await store.get(id);
        status = rec?.status ?? 'queued';
        if (status === 'queued' && !(await queue.queue.getJob(id))) await queue.enqueue(id, priority);
      }
      req.log.info({ runId: id, created, priority }, created ? 'experiment queued' : 'repeated submission');
      return reply.code(202).send({ id, status, links: linksOf(id) });
    },
  );

  app.get(
    '/v1/experiments',
    {
      schema: {
        tags: ['experiments'],
        summary: 'List experiments, newest first',
        security,
        querystring: ListQuery,
        response: { 200: ListReply, 400: ErrorReply, 401: ErrorReply, 429: ErrorReply },
      },
    },
    async (req) => {
      const { status, offset, limit } = req.query;
      const page = await store.list({ ...(status ? { status } : {}), offset, limit });
      return { total: page.total, offset, limit, items: page.items.map(toSummary) };
    },
  );

  app.get(
    '/v1/experiments/:id',
    {
      schema: {
        tags: ['experiments'],
        summary: 'One experiment: status, spec, progress, metrics, MLflow run, workers, model',
        security,
        params: IdParams,
        response: { 200: Detail, ...errors },
      },
    },
    async (req) => {
      const rec = await store.get(req.params.id);
      if (!rec) throw httpError(404, `no experiment ${req.params.id}`);
      return toDetail(ctx, rec);
    },
  );

  app.delete(
    '/v1/experiments/:id',
    {
      schema: {
        tags: ['experiments'],
        summary: 'Cancel an experiment',
        description:
          'A queued experiment is removed from the queue (200, cancelled). A running one is aborted: its workers stop their collectives and the MLflow run ends KILLED (202, cancelling).',
        security,
        params: IdParams,
        response: { 200: CancelReply, 202: CancelReply, ...errors },
      },
    },
    async (req, reply) => {
      const { id } = req.params;
      const rec = await store.get(id);
      if (!rec) throw httpError(404, `no experiment ${id}`);
      if (TERMINAL_STATUSES.has(rec.status)) throw httpError(409, `experiment ${id} already ${rec.status}`);
      const reason = 'cancelled through the API';
      if (rec.status === 'queued' && (await queue.removeIfWaiting(id))) {
        await store.update(id, { status: 'cancelled', endedAt: Date.now(), done: true, error: reason });
        await publishEvent(redis, id, { type: 'status', status: 'cancelled', message: reason, restarts: 0 });
        req.log.info({ runId: id }, 'queued experiment removed');
        return reply.code(200).send({ id, status: 'cancelled' as const });
      }
      // Running (or held by a processor waiting for workers): the supervisor sees this within a second.
      await redis.set(runKeys.cancel(id), reason, 'EX', 7 * 24 * 3600);
      await store.update(id, { cancelRequested: reason });
      req.log.info({ runId: id }, 'cancel requested');
      return reply.code(202).send({ id, status: 'cancelling' as const });
    },
  );

  app.get(
    '/v1/experiments/:id/metrics',
    {
      schema: {
        tags: ['experiments'],
        summary: 'Metric history: every (step, value) per metric, as logged to tracking',
        security,
        params: IdParams,
        response: { 200: MetricsReply, ...errors },
      },
    },
    async (req) => {
      const { id } = req.params;
      if (!(await store.get(id))) throw httpError(404, `no experiment ${id}`);
      return { id, metrics: await store.metricHistory(id) };
    },
  );

  app.get(
    '/v1/experiments/:id/model/:file',
    {
      schema: {
        tags: ['experiments'],
        summary:
          'A file of the tfjs export (model.json and weight shards; see model.tfjsExport of the experiment)',
        security,
        params: Type.Object({ id: Type.String({ maxLength: 128 }), file: Type.String({ maxLength: 255 }) }),
        response: { ...errors },
      },
    },
    async (req, reply) => {
      const rec = await store.get(req.params.id);
      if (!rec?.modelPath) throw httpError(404, `experiment ${req.params.id} has no model (yet)`);
      const dir = modelDirOf(rec.modelPath);
      const files = await modelFiles(dir);
      const file = files.find((f) => f.name === req.params.file);
      if (!file) throw httpError(404, `the model has no file ${req.params.file}`);
      reply.header('content-length', file.bytes);
      reply.type(file.name.endsWith('.json') ? 'application/json' : 'application/octet-stream');
      // A stream payload is piped as is; the typed reply only knows the JSON response schemas.
      return reply.send(createReadStream(join(dir, file.name)) as never);
    },
  );
}
