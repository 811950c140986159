import { createParser } from 'eventsource-parser';
import Type, { type Static, type TSchema } from 'typebox';
import Value from 'typebox/value';
import { errorMessage } from '@lits-ddp/errors';
import {
  CancelReply,
  checkJson,
  decodeJson,
  decodeRunEvent,
  ErrorReply,
  ExperimentDetail,
  ExperimentGoneSummary,
  ExperimentListReply,
  ExperimentSummary,
  JsonDecodeError,
  MetricHistoryReply,
  SubmissionAccepted,
  WorkersReply,
  type ExperimentSpecInput,
  type RunEvent,
} from '@lits-ddp/protocol';
import { CoordinatorApiError, CoordinatorResponseError, CoordinatorUnreachableError } from './errors.js';

export type { ExperimentDetail, ExperimentSummary, WorkerView } from '@lits-ddp/protocol';

export interface ClientOptions {
  /** Coordinator base URL, e.g. http://127.0.0.1:8080. */
  url: string;
  token?: string;
  timeoutMs?: number;
}

export type FollowMessage =
  { kind: 'event'; id: string; event: RunEvent } | { kind: 'end'; summary: ExperimentSummary };

/** Parses or checks a body; a JsonDecodeError becomes a CoordinatorResponseError naming the request. */
function checked<T>(status: number, what: string, decode: () => T): T {
  try {
    return decode();
  } catch (err) {
    if (err instanceof JsonDecodeError) throw new CoordinatorResponseError(status, what, err.problem, err);
    throw err;
  }
}

/** What the client reads of a non-2xx body, leniently: a proxy, not the coordinator, may have answered. */
const ErrorBody = Type.Partial(Type.Pick(ErrorReply, ['message', 'errors']));

/** The documented error format of a non-2xx body, or nothing usable (a proxy's page, an empty body). */
function errorReply(text: string): Static<typeof ErrorBody> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return {}; // not JSON: the status line speaks for it
  }
  return Value.Check(ErrorBody, json) ? json : {};
}

/** Typed client of the coordinator's REST API and its SSE stream (used by `lits submit/status/logs/cancel`). */
export class CoordinatorClient {
  private readonly base: string;

  constructor(private readonly opts: ClientOptions) {
    this.base = opts.url.replace(/\/+$/, '');
  }

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    return { ...(this.opts.token ? { authorization: `Bearer ${this.opts.token}` } : {}), ...extra };
  }

  /** One request; its JSON answer checked against `schema`. */
  private async request<T extends TSchema>(
    schema: T,
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<Static<T>> {
    let res: Response;
    try {
      res = await fetch(`${this.base}${path}`, {
        method,
        headers: this.headers({
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
          ...headers,
        }),
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(this.opts.timeoutMs ?? 30_000),
      });
    } catch (err) {
      throw new CoordinatorUnreachableError(this.base, err, errorMessage(err));
    }
    const text = await res.text();
    if (!res.ok) {
      const reply = errorReply(text);
      throw new CoordinatorApiError(
        res.status,
        `${res.status} ${reply.message ?? res.statusText}`,
        reply.errors ?? [],
      );
    }
    return checked(res.status, `${method} ${path}`, () => decodeJson(schema, text, `${method} ${path}`));
  }

  submit(
    spec: ExperimentSpecInput | Record<string, unknown>,
    opts: { id?: string; priority?: number; idempotencyKey?: string } = {},
  ): Promise<SubmissionAccepted> {
    const body =
      opts.id !== undefined || opts.priority !== undefined
        ? {
            spec,
            ...(opts.id ? { id: opts.id } : {}),
            ...(opts.priority !== undefined ? { priority: opts.priority } : {}),
          }
        : spec;
    return this.request(
      SubmissionAccepted,
      'POST',
      '/v1/experiments',
      body,
      opts.idempotencyKey ? { 'idempotency-key': opts.idempotencyKey } : {},
    );
  }

  get(id: string): Promise<ExperimentDetail> {
    return this.request(ExperimentDetail, 'GET', `/v1/experiments/${encodeURIComponent(id)}`);
  }

  list(opts: { status?: string; offset?: number; limit?: number } = {}): Promise<ExperimentListReply> {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(opts)) if (v !== undefined) q.set(k, String(v));
    return this.request(ExperimentListReply, 'GET', `/v1/experiments${q.size ? `?${q}` : ''}`);
  }

  cancel(id: string): Promise<CancelReply> {
    return this.request(CancelReply, 'DELETE', `/v1/experiments/${encodeURIComponent(id)}`);
  }

  metrics(id: string): Promise<MetricHistoryReply> {
    return this.request(MetricHistoryReply, 'GET', `/v1/experiments/${encodeURIComponent(id)}/metrics`);
  }

  workers(): Promise<WorkersReply> {
    return this.request(WorkersReply, 'GET', '/v1/workers');
  }

  /**
   * Follows the experiment's SSE stream to its end, reconnecting with Last-Event-ID after a broken
   * connection (or a 5xx), so no event is lost or repeated. Resolves with the final summary. An event
   * or summary that does not decode ends it with a CoordinatorResponseError, as does an experiment
   * whose record was deleted meanwhile (404, code EXPERIMENT_GONE).
   */
  async follow(
    id: string,
    onMessage: (m: FollowMessage) => void,
    opts: { lastEventId?: string; signal?: AbortSignal; retryMs?: number } = {},
  ): Promise<ExperimentSummary> {
    const path = `/v1/experiments/${encodeURIComponent(id)}/events`;
    let lastEventId = opts.lastEventId ?? '';
    let failures = 0;
    for (;;) {
      let summary: ExperimentSummary | undefined;
      try {
        const res = await fetch(`${this.base}${path}`, {
          headers: this.headers({
            accept: 'text/event-stream',
            ...(lastEventId ? { 'last-event-id': lastEventId } : {}),
          }),
          ...(opts.signal ? { signal: opts.signal } : {}),
        });
        if (!res.ok || !res.body) {
          const body = (await res.text()).slice(0, 300);
          throw new CoordinatorApiError(res.status, `${res.status} ${body}`);
        }
        const parser = createParser({
          onEvent: (m) => {
            if (m.event === 'end') {
              summary = this.endSummary(id, m.data, res.status, `GET ${path} end event`);
              onMessage({ kind: 'end', summary });
              return;
            }
            const event = decodeRunEvent(m.data);
            if (!event)
              throw new CoordinatorResponseError(
                res.status,
                `GET ${path} event ${m.id ?? '(no id)'}`,
                `not a run event: ${m.data.slice(0, 200)}`,
              );
            if (m.id) lastEventId = m.id;
            onMessage({ kind: 'event', id: m.id ?? '', event });
          },
        });
        const decoder = new TextDecoder();
        for await (const chunk of res.body)
          parser.feed(decoder.decode(chunk as Uint8Array, { stream: true }));
        failures = 0;
      } catch (err) {
        if (opts.signal?.aborted) throw err;
        // Refusals (4xx) and bad answers end the follow; a 5xx or a broken connection is retried.
        if (err instanceof CoordinatorApiError && err.status < 500) throw err;
        if (++failures > 30) throw err;
      }
      if (summary) return summary;
      await new Promise((r) => setTimeout(r, opts.retryMs ?? 1000));
    }
  }

  /** The `end` event's summary; the server sends `{id, status: 'unknown'}` when the record is gone. */
  private endSummary(id: string, data: string, status: number, what: string): ExperimentSummary {
    const value = checked(status, what, () => decodeJson(Type.Unknown(), data, what));
    if (Value.Check(ExperimentGoneSummary, value))
      throw new CoordinatorApiError(404, `experiment ${id} no longer exists on the coordinator`, [], {
        code: 'EXPERIMENT_GONE',
      });
    return checked(status, what, () => checkJson(ExperimentSummary, value, what));
  }
}
