import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import type { FastifyBaseLogger, FastifySchemaCompiler, FastifySchemaValidationError } from 'fastify';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import {
  CancelReply,
  ExperimentDetail,
  ExperimentIdParams,
  ExperimentListQuery,
  ExperimentListReply,
  ExperimentSubmission,
  MetricHistoryReply,
  runKeys,
  SubmissionAccepted,
} from '@lits-ddp/protocol';
import { publishEvent } from '@lits-ddp/orchestrator';
import { ConflictError, NotFoundError } from '../../errors.js';
import {
  EXPERIMENT_STATUSES,
  newExperimentId,
  submissionDigest,
  TERMINAL_STATUSES,
  type ExperimentStatus,
} from '../../queue/experiment-store.js';
import type { AppContext, TypedApp } from '../app-context.js';
import { ErrorReply } from '../schemas.js';
import { parseSubmission, type Submission } from '../submission.js';
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

/** The body is checked by resolveSpec (field paths, cross-field rules), not by the route's schema. */
const submitValidator: FastifySchemaCompiler<unknown> = ({ httpPart }) =>
  httpPart === 'body'
    ? (data: unknown) => ({ value: data })
    : (data: unknown) => {
        const key = (data as Record<string, unknown>)['idempotency-key'];
        if (key !== undefined && (typeof key !== 'string' || key.length === 0 || key.length > 255))
          // A validation list (not a plain Error), so the 400 names the header as its field path.
          return { error: [idempotencyKeyError(key)] };
        return { value: data };
      };

const isExperimentStatus = (s: string | undefined): s is ExperimentStatus =>
  (EXPERIMENT_STATUSES as readonly string[]).includes(s as string);

/** Whether two flat objects have the same fields with the same values, in any order. */
const sameFields = (a: object, b: object): boolean => {
  const x = a as Record<string, unknown>;
  const y = b as Record<string, unknown>;
  const keys = Object.keys(x);
  return keys.length === Object.keys(y).length && keys.every((k) => Object.hasOwn(y, k) && x[k] === y[k]);
};

/**
 * Whether the stored experiment is this submission, field order aside: a digest differs for the same
 * submission when the record was stored by a version that put the resolved spec's fields in another order.
 */
async function sameSubmission(
  ctx: AppContext,
  id: string,
  { spec, priority }: Pick<Submission, 'spec' | 'priority'>,
): Promise<boolean> {
  const stored = await ctx.store.get(id);
  return stored?.priority === priority && sameFields(stored.spec, spec);
}

/**
 * Stores a submission, or finds the experiment its id or Idempotency-Key already names: the same
 * submission again is a replay, a different one a conflict. A stored submission is as good as queued:
 * its outbox entry is written with it, and the feeder adds its job once the burst it came in settles.
 */
async function acceptSubmission(
  ctx: AppContext,
  { spec, priority, id: chosenId }: Submission,
  idempotencyKey: string | undefined,
): Promise<{ id: string; status: ExperimentStatus; created: boolean }> {
  const { store, feeder } = ctx;
  const existing = await store.create({
    id: chosenId ?? newExperimentId(),
    spec,
    priority,
    ...(idempotencyKey ? { idempotencyKey } : {}),
  });
  const { id } = existing;
  if (existing.created) {
    feeder.soon();
    return { id, status: 'queued', created: true };
  }
  // create() read the existing record's digest and status in its own round trip.
  const { digest } = existing;
  if (digest === undefined) throw new ConflictError(`experiment ${id} is being created; retry shortly`);
  if (digest !== submissionDigest(spec, priority) && !(await sameSubmission(ctx, id, { spec, priority })))
    throw new ConflictError(
      idempotencyKey
        ? `Idempotency-Key was already used for experiment ${id}, with a different submission`
        : `experiment ${id} already exists with a different submission`,
    );
  // A status that is none of ours means a corrupt record: reading it whole throws, naming its key.
  const status = isExperimentStatus(existing.status)
    ? existing.status
    : ((await store.get(id))?.status ?? 'queued');
  // Still queued: create() put it back into the outbox, in case its creator died before adding the job.
  if (status === 'queued') feeder.soon();
  return { id, status, created: false };
}

/**
 * A queued experiment leaves the queue at once; a running one (or one whose processor waits for
 * workers) gets its cancel key, which the supervisor sees within a second.
 */
async function cancelExperiment(
  ctx: AppContext,
  id: string,
  log: FastifyBaseLogger,
): Promise<'cancelled' | 'cancelling'> {
  const { store, queue, feeder, redis } = ctx;
  const rec = await store.get(id);
  if (!rec) throw new NotFoundError(`no experiment ${id}`);
  if (TERMINAL_STATUSES.has(rec.status)) throw new ConflictError(`experiment ${id} already ${rec.status}`);
  const reason = 'cancelled through the API';
  // The key first: a running run's supervisor stops on it, and so does a processor that takes a queued
  // experiment's job while this cancel runs (the feeder may be adding it), before anything starts.
  await redis.set(runKeys.cancel(id), reason, 'EX', 7 * 24 * 3600);
  if (rec.status === 'queued') {
    const withdrawn = await feeder.withdraw(id);
    // Nothing started: its job removed while waiting, or taken out of the outbox with no job added yet.
    const removed = (await queue.removeIfWaiting(id)) || (withdrawn && !(await queue.queue.getJob(id)));
    if (removed) {
      await store.update(id, { status: 'cancelled', endedAt: Date.now(), done: true, error: reason });
      await publishEvent(redis, id, { type: 'status', status: 'cancelled', message: reason, restarts: 0 });
      log.info({ runId: id }, 'queued experiment removed');
      return 'cancelled';
    }
  }
  await store.update(id, { cancelRequested: reason });
  log.info({ runId: id }, 'cancel requested');
  return 'cancelling';
}

function submitRoute(app: TypedApp): void {
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
        body: ExperimentSubmission,
        response: { 200: SubmissionAccepted, 202: SubmissionAccepted, ...errors, 413: ErrorReply },
      },
      validatorCompiler: submitValidator,
    },
    async (req, reply) => {
      const { ctx } = app;
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
      const idempotencyKey = req.headers['idempotency-key'] as string | undefined;
      const { id, status, created } = await acceptSubmission(ctx, parsed.value, idempotencyKey);
      if (!created) reply.header('idempotent-replayed', 'true');
      req.log.info(
        { runId: id, created, priority: parsed.value.priority },
        created ? 'experiment queued' : 'repeated submission',
      );
      return reply.code(202).send({ id, status, links: linksOf(id) });
    },
  );
}

function listRoutes(app: TypedApp): void {
  const { store } = app.ctx;
  app.get(
    '/v1/experiments',
    {
      schema: {
        tags: ['experiments'],
        summary: 'List experiments, newest first',
        security,
        querystring: ExperimentListQuery,
        response: { 200: ExperimentListReply, 400: ErrorReply, 401: ErrorReply, 429: ErrorReply },
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
        params: ExperimentIdParams,
        response: { 200: ExperimentDetail, ...errors },
      },
    },
    async (req) => {
      const rec = await store.get(req.params.id);
      if (!rec) throw new NotFoundError(`no experiment ${req.params.id}`);
      return toDetail(app.ctx, rec);
    },
  );
}

function cancelRoute(app: TypedApp): void {
  app.delete(
    '/v1/experiments/:id',
    {
      schema: {
        tags: ['experiments'],
        summary: 'Cancel an experiment',
        description:
          'An experiment still waiting in the queue is removed (200, cancelled). One a processor has taken (its record may still say queued) or a running one is aborted: its workers stop their collectives and the MLflow run ends KILLED (202, cancelling).',
        security,
        params: ExperimentIdParams,
        response: { 200: CancelReply, 202: CancelReply, ...errors },
      },
    },
    async (req, reply) => {
      const { id } = req.params;
      const status = await cancelExperiment(app.ctx, id, req.log);
      return reply.code(status === 'cancelled' ? 200 : 202).send({ id, status });
    },
  );
}

function metricsRoute(app: TypedApp): void {
  const { store } = app.ctx;
  app.get(
    '/v1/experiments/:id/metrics',
    {
      schema: {
        tags: ['experiments'],
        summary: 'Metric history: every (step, value) per metric, as logged to tracking',
        security,
        params: ExperimentIdParams,
        response: { 200: MetricHistoryReply, ...errors },
      },
    },
    async (req) => {
      const { id } = req.params;
      if (!(await store.get(id))) throw new NotFoundError(`no experiment ${id}`);
      return { id, metrics: await store.metricHistory(id) };
    },
  );
}

function modelFileRoute(app: TypedApp): void {
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
      const rec = await app.ctx.store.get(req.params.id);
      if (!rec?.modelPath) throw new NotFoundError(`experiment ${req.params.id} has no model (yet)`);
      const dir = modelDirOf(rec.modelPath);
      const files = await modelFiles(dir);
      const file = files.find((f) => f.name === req.params.file);
      if (!file) throw new NotFoundError(`the model has no file ${req.params.file}`);
      reply.header('content-length', file.bytes);
      reply.type(file.name.endsWith('.json') ? 'application/json' : 'application/octet-stream');
      // A stream payload is piped as is; the typed reply only knows the JSON response schemas.
      return reply.send(createReadStream(join(dir, file.name)) as never);
    },
  );
}

/** Submit, list, read and cancel experiments; their metric history and model files. Behind the token. */
export const experimentRoutes: FastifyPluginAsyncTypebox = async (app) => {
  submitRoute(app);
  listRoutes(app);
  cancelRoute(app);
  metricsRoute(app);
  modelFileRoute(app);
};
