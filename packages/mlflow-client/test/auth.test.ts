import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from '@lits-ddp/local-services';
import { MlflowClient, MlflowNetworkError } from '../src/index.js';

// Checks only what the client puts on the wire; MLflow behaviour is tested against the real server.
async function captureHeaders(make: (uri: string) => MlflowClient): Promise<IncomingHttpHeaders> {
  let seen: IncomingHttpHeaders = {};
  const server = createServer((req, res) => {
    seen = req.headers;
    res.setHeader('content-type', 'application/json');
    res.end('{"experiment":{"experiment_id":"1","name":"x","lifecycle_stage":"active"}}');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const uri = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  await make(uri).getExperiment('1');
  await new Promise((r) => server.close(r));
  return seen;
}

describe('authentication, as MLflow clients read it from the environment', () => {
  const saved = { ...process.env };
  afterEach(() => {
    process.env = { ...saved };
  });

  it('sends MLFLOW_TRACKING_TOKEN as a bearer token', async () => {
    process.env.MLFLOW_TRACKING_TOKEN = 'tok-123';
    delete process.env.MLFLOW_TRACKING_USERNAME;
    delete process.env.MLFLOW_TRACKING_PASSWORD;
    const headers = await captureHeaders((uri) => new MlflowClient({ trackingUri: uri }));
    expect(headers.authorization).toBe('Bearer tok-123');
  });

  it('sends MLFLOW_TRACKING_USERNAME/PASSWORD as HTTP Basic', async () => {
    delete process.env.MLFLOW_TRACKING_TOKEN;
    process.env.MLFLOW_TRACKING_USERNAME = 'ada';
    process.env.MLFLOW_TRACKING_PASSWORD = 's3cret';
    const headers = await captureHeaders((uri) => new MlflowClient({ trackingUri: uri }));
    expect(headers.authorization).toBe(`Basic ${Buffer.from('ada:s3cret').toString('base64')}`);
  });

  it('prefers HTTP Basic over the token when both are set, as rest_utils.py of MLflow 3.17.2 does', async () => {
    process.env.MLFLOW_TRACKING_TOKEN = 'tok-123';
    process.env.MLFLOW_TRACKING_USERNAME = 'ada';
    process.env.MLFLOW_TRACKING_PASSWORD = 's3cret';
    const headers = await captureHeaders((uri) => new MlflowClient({ trackingUri: uri }));
    expect(headers.authorization).toBe(`Basic ${Buffer.from('ada:s3cret').toString('base64')}`);
    const fromOptions = await captureHeaders(
      (uri) => new MlflowClient({ trackingUri: uri, token: 't', username: 'u', password: 'p' }),
    );
    expect(fromOptions.authorization).toBe(`Basic ${Buffer.from('u:p').toString('base64')}`);
  });

  it('falls back to the token when only the username (no password) is set', async () => {
    process.env.MLFLOW_TRACKING_TOKEN = 'tok-123';
    process.env.MLFLOW_TRACKING_USERNAME = 'ada';
    delete process.env.MLFLOW_TRACKING_PASSWORD;
    const headers = await captureHeaders((uri) => new MlflowClient({ trackingUri: uri }));
    expect(headers.authorization).toBe('Bearer tok-123');
  });

  it('sends no credentials when none are configured', async () => {
    delete process.env.MLFLOW_TRACKING_TOKEN;
    delete process.env.MLFLOW_TRACKING_USERNAME;
    const headers = await captureHeaders((uri) => new MlflowClient({ trackingUri: uri }));
    expect(headers.authorization).toBeUndefined();
  });

  it('reports a refused connection as surely undelivered', async () => {
    const port = await freePort(); // nothing listens there
    const client = new MlflowClient({ trackingUri: `http://127.0.0.1:${port}` });
    const err = await client.getRun('x').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MlflowNetworkError);
    expect((err as MlflowNetworkError).delivered).toBe(false);
  });

  it('refuses a tracking URI that is not http(s)', () => {
    expect(() => new MlflowClient({ trackingUri: 'file:///tmp/mlruns' })).toThrow(/must be http\(s\)/);
  });
});
