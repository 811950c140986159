import { errorMessage } from '@lits-ddp/errors';
import { MlflowApiError, MlflowConfigError, MlflowNetworkError } from './errors.js';
import { toWireJson } from './wire.js';
import { responseShapeProblem, type WireShape } from './wire-shape.js';

export interface TransportOptions {
  /** http(s)://host:port of the tracking server. Defaults to MLFLOW_TRACKING_URI. */
  trackingUri?: string;
  /** Bearer token. Defaults to MLFLOW_TRACKING_TOKEN; used only when no username + password are set. */
  token?: string;
  /**
   * HTTP Basic credentials. Default to MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD. When both
   * are set they win over the token, as in MLflow's own client (mlflow/utils/rest_utils.py).
   */
  username?: string;
  password?: string;
  /** Per-request timeout. Default 30 s. */
  timeoutMs?: number;
}

export interface RequestOptions {
  query?: Record<string, string | number | undefined>;
  json?: unknown;
  body?: Uint8Array;
  contentType?: string;
  /** Return the raw bytes instead of parsing JSON. */
  raw?: boolean;
  /**
   * The fields the caller reads from the JSON answer (wire.ts RESPONSE_SHAPES): one that does not fit is an
   * MlflowApiError BAD_RESPONSE naming the endpoint and the field. Without it the answer is not looked at.
   */
  shape?: { readonly [field: string]: WireShape };
  /** Cancels the request (it then fails with MlflowNetworkError, `delivered: 'unknown'`). */
  signal?: AbortSignal;
}

/** Connection errors that prove the request never reached the server. */
const NOT_DELIVERED_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
]);

function errorCodeOf(err: unknown): string | undefined {
  let cur: unknown = err;
  for (let depth = 0; depth < 4 && cur instanceof Error; depth++) {
    const code = (cur as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    cur = (cur as { cause?: unknown }).cause;
  }
  return undefined;
}

/** MLflow's error body (`{"error_code": …, "message": …}`), or undefined when the body is something else. */
function parseErrorBody(text: string): { error_code?: unknown; message?: unknown } | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    // A proxy's HTML page or plain text: the caller reports the status and the text itself.
    return undefined;
  }
  return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? parsed : undefined;
}

export class MlflowTransport {
  readonly trackingUri: string;
  private readonly authHeader: string | undefined;
  private readonly timeoutMs: number;

  constructor(opts: TransportOptions = {}) {
    const uri = opts.trackingUri ?? process.env.MLFLOW_TRACKING_URI;
    if (!uri)
      throw new MlflowConfigError('MLflow tracking URI missing: pass trackingUri or set MLFLOW_TRACKING_URI');
    if (!/^https?:\/\//.test(uri)) {
      throw new MlflowConfigError(`MLflow tracking URI must be http(s)://host:port, got "${uri}"`);
    }
    this.trackingUri = uri.replace(/\/+$/, '');
    const token = opts.token ?? process.env.MLFLOW_TRACKING_TOKEN;
    const username = opts.username ?? process.env.MLFLOW_TRACKING_USERNAME;
    const password = opts.password ?? process.env.MLFLOW_TRACKING_PASSWORD;
    if (username && password)
      this.authHeader = `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
    else if (token) this.authHeader = `Bearer ${token}`;
    this.timeoutMs = opts.timeoutMs ?? 30_000;
  }

  async request<T>(
    method: 'GET' | 'POST' | 'PUT' | 'DELETE',
    path: string,
    opts: RequestOptions = {},
  ): Promise<T> {
    const url = new URL(`${this.trackingUri}${path}`);
    for (const [k, v] of Object.entries(opts.query ?? {}))
      if (v !== undefined) url.searchParams.set(k, String(v));
    const headers: Record<string, string> = {};
    if (this.authHeader) headers.authorization = this.authHeader;
    let body: string | Uint8Array | undefined;
    if (opts.json !== undefined) {
      body = toWireJson(opts.json);
      headers['content-type'] = 'application/json';
    } else if (opts.body !== undefined) {
      body = opts.body;
      headers['content-type'] = opts.contentType ?? 'application/octet-stream';
    }
    // One controller per request: the timeout and the caller's signal both end it, and nothing is
    // left registered on the caller's long-lived signal afterwards.
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), this.timeoutMs);
    const onCallerAbort = (): void => controller.abort();
    opts.signal?.addEventListener('abort', onCallerAbort, { once: true });
    if (opts.signal?.aborted) controller.abort();
    const failure = (err: unknown): MlflowNetworkError => {
      if (opts.signal?.aborted) return new MlflowNetworkError(path, 'unknown', 'cancelled by the caller');
      if (controller.signal.aborted)
        return new MlflowNetworkError(path, 'unknown', `no answer within ${this.timeoutMs} ms`);
      const code = errorCodeOf(err);
      const delivered = code !== undefined && NOT_DELIVERED_CODES.has(code) ? false : 'unknown';
      return new MlflowNetworkError(path, delivered, code ?? errorMessage(err));
    };
    try {
      let res: Response;
      try {
        res = await fetch(url, { method, headers, body, signal: controller.signal });
      } catch (err) {
        throw failure(err);
      }
      if (!res.ok) throw await this.apiError(path, res);
      let bytes: ArrayBuffer;
      try {
        bytes = await res.arrayBuffer();
      } catch (err) {
        // A 2xx whose body was cut off: the outcome is as unknown as a lost answer.
        throw failure(err);
      }
      if (opts.raw) return new Uint8Array(bytes) as T;
      const text = new TextDecoder().decode(bytes);
      let json: unknown = {};
      if (text.trim() !== '') {
        try {
          json = JSON.parse(text);
        } catch {
          // The parser's message adds nothing to the start of the text itself.
          throw new MlflowApiError('BAD_RESPONSE', res.status, `not JSON: ${text.slice(0, 200)}`, path);
        }
      }
      const problem = opts.shape ? responseShapeProblem(json, opts.shape) : undefined;
      if (problem) throw new MlflowApiError('BAD_RESPONSE', res.status, problem, path);
      return json as T;
    } finally {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onCallerAbort);
    }
  }

  private async apiError(path: string, res: Response): Promise<MlflowApiError> {
    // A body cut off mid-read still leaves the status, which is what the error is built from then.
    const text = await res.text().catch(() => '');
    const parsed = parseErrorBody(text);
    if (typeof parsed?.error_code === 'string') {
      return new MlflowApiError(parsed.error_code, res.status, String(parsed.message ?? ''), path);
    }
    return new MlflowApiError(`HTTP_${res.status}`, res.status, text.slice(0, 300) || res.statusText, path);
  }
}
