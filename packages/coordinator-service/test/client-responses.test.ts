import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CoordinatorApiError,
  CoordinatorClient,
  CoordinatorResponseError,
  CoordinatorUnreachableError,
} from '@lits-ddp/coordinator-client';

/**
 * The client against answers the real coordinator never gives (its responses are serialised by
 * their schemas): what a proxy, or a coordinator of another version, might send instead.
 */
const ANSWERS: Record<string, (res: ServerResponse) => void> = {
  'POST /v1/experiments': (res) => json(res, 202, { id: 5, status: 'queued', links: {} }),
  'GET /v1/experiments/html': (res) => {
    res.writeHead(200, { 'content-type': 'text/html' }).end('<html>login</html>');
  },
  'GET /v1/experiments/bad-gateway': (res) => {
    res.writeHead(502, { 'content-type': 'text/html' }).end('<html>bad gateway</html>');
  },
  'GET /v1/experiments/bad-event/events': (res) =>
    sse(
      res,
      'id: 1-0\nevent: progress\ndata: {"type":"progress","rank":0}\n\n' +
        'id: 1-1\nevent: wat\ndata: {"type":"wat"}\n\n',
    ),
  'GET /v1/experiments/bad-end/events': (res) =>
    sse(res, 'event: end\ndata: {"id":"bad-end","status":"finished"}\n\n'),
  'GET /v1/experiments/gone/events': (res) =>
    sse(res, 'event: end\ndata: {"id":"gone","status":"unknown"}\n\n'),
};

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}
function sse(res: ServerResponse, text: string): void {
  res.writeHead(200, { 'content-type': 'text/event-stream' }).end(text);
}

describe('CoordinatorClient refuses answers that do not match the API, naming what was wrong', () => {
  let server: Server;
  let client: CoordinatorClient;
  let url: string;

  beforeAll(async () => {
    server = createServer((req: IncomingMessage, res) => {
      req.resume();
      const answer = ANSWERS[`${req.method} ${req.url}`];
      if (answer) answer(res);
      else json(res, 404, { statusCode: 404, error: 'Not Found', message: `no route ${req.url}` });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    client = new CoordinatorClient({ url, timeoutMs: 5000 });
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('a JSON answer with a wrong field, or no JSON at all, is a CoordinatorResponseError', async () => {
    const wrongField = await client.submit({ 'dataset-path': 'ds' }).catch((err: unknown) => err);
    expect(wrongField).toBeInstanceOf(CoordinatorResponseError);
    expect(wrongField).toBeInstanceOf(CoordinatorApiError);
    expect(wrongField).toMatchObject({ status: 202, code: 'COORDINATOR_RESPONSE_INVALID' });
    expect((wrongField as Error).message).toMatch(/^POST \/v1\/experiments: unexpected answer: field \/id /);

    const html = await client.get('html').catch((err: unknown) => err);
    expect(html).toBeInstanceOf(CoordinatorResponseError);
    expect((html as Error).message).toMatch(
      /^GET \/v1\/experiments\/html: unexpected answer: not valid JSON/,
    );
  });

  it('a non-2xx answer keeps its status and message, also when it is not JSON', async () => {
    const missing = await client.get('nothing').catch((err: unknown) => err);
    expect(missing).toMatchObject({ status: 404, message: '404 no route /v1/experiments/nothing' });
    const proxy = await client.get('bad-gateway').catch((err: unknown) => err);
    expect(proxy).toBeInstanceOf(CoordinatorApiError);
    expect(proxy).toMatchObject({ status: 502, message: '502 Bad Gateway', errors: [] });
  });

  it('an event or end summary that does not decode ends follow() at once, without retrying', async () => {
    const seen: string[] = [];
    const badEvent = await client
      .follow('bad-event', (m) => seen.push(m.kind), { retryMs: 10 })
      .catch((err: unknown) => err);
    expect(badEvent).toBeInstanceOf(CoordinatorResponseError);
    expect((badEvent as Error).message).toMatch(
      /event 1-1: unexpected answer: not a run event: \{"type":"wat"\}/,
    );
    expect(seen).toEqual(['event']);

    const badEnd = await client
      .follow('bad-end', () => undefined, { retryMs: 10 })
      .catch((err: unknown) => err);
    expect(badEnd).toBeInstanceOf(CoordinatorResponseError);
    expect((badEnd as Error).message).toMatch(
      /end event: unexpected answer: the value must have required properties priority, workers/,
    );

    const gone = await client.follow('gone', () => undefined, { retryMs: 10 }).catch((err: unknown) => err);
    expect(gone).toMatchObject({ status: 404, code: 'EXPERIMENT_GONE' });
  });

  it('no answer at all is a CoordinatorUnreachableError naming the URL', async () => {
    const nowhere = new CoordinatorClient({ url: 'http://127.0.0.1:9', timeoutMs: 2000 });
    const err = await nowhere.workers().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CoordinatorUnreachableError);
    expect((err as Error).message).toMatch(/^cannot reach the coordinator at http:\/\/127\.0\.0\.1:9: /);
  });
});
