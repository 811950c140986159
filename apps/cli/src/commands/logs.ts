import { parseArgs } from 'node:util';
import { CoordinatorApiError, CoordinatorClient } from '@lits-ddp/coordinator-client';
import type { RunEvent } from '@lits-ddp/protocol';
import { createDisplay, describeGeneration, displayModeOf, type RunDisplay } from '../display/run-display.js';

export const CLIENT_ENV_HELP = `Coordinator: --url URL or LITS_API_URL (default http://127.0.0.1:8080).
Token: LITS_API_TOKEN (the first one when comma-separated).`;

/** The REST client from --url / LITS_API_URL and the token in LITS_API_TOKEN. */
export function clientFrom(url: string | undefined): CoordinatorClient {
  const token = (process.env.LITS_API_TOKEN ?? '').split(',')[0]?.trim();
  return new CoordinatorClient({
    url: url ?? process.env.LITS_API_URL ?? 'http://127.0.0.1:8080',
    ...(token ? { token } : {}),
  });
}

/** Prints an API error (field errors one per line); returns the exit code. */
export function reportApiError(err: unknown): number {
  if (err instanceof CoordinatorApiError) {
    process.stderr.write(`lits: ${err.message}\n`);
    for (const e of err.errors) process.stderr.write(`  ${e.path}: ${e.message}\n`);
    return err.status === 400 ? 2 : 1;
  }
  throw err;
}

export const exitCodeOf = (status: string): number =>
  status === 'finished' ? 0 : status === 'cancelled' ? 130 : 1;

const line = (s: string): void => void process.stderr.write(`${s}\n`);

/** Events as plain lines (log lines, statuses, metrics, failures; progress at most every 5 s). */
function plainLogDisplay(): RunDisplay {
  let lastProgress = 0;
  const show = (e: RunEvent): void => {
    switch (e.type) {
      case 'progress':
        if (Date.now() - lastProgress > 5000 || e.step + 1 === e.stepsPerEpoch) {
          lastProgress = Date.now();
          line(
            `rank ${e.rank} epoch ${e.epoch} step ${e.step + 1}/${e.stepsPerEpoch} loss ${e.loss.toFixed(4)}`,
          );
        }
        break;
      case 'metrics':
        line(
          `epoch ${e.epoch}${e.step !== undefined ? ` step ${e.step}` : ''}: ${Object.entries(e.metrics)
            .map(([k, v]) => `${k}=${v.toFixed(4)}`)
            .join(' ')}`,
        );
        break;
      case 'status': {
        const generation = e.generation !== undefined ? ` generation ${e.generation}` : '';
        line(`status ${e.status}${generation}${e.message ? `: ${e.message}` : ''} (restarts ${e.restarts})`);
        break;
      }
      case 'generation':
        line(describeGeneration(e));
        break;
      case 'waiting':
        line(`${e.message} (${e.missing} of ${e.needed} missing)`);
        break;
      case 'log':
        line(`rank ${e.rank} ${e.level}: ${e.message}`);
        break;
      case 'failed':
        line(`rank ${e.rank} failed (generation ${e.generation}): ${e.error}`);
        break;
      case 'checkpoint':
        line(`checkpoint ${e.kind} after epoch ${e.epoch}: ${e.path}`);
        break;
      case 'started':
        line(`rank ${e.rank} started (generation ${e.generation}, ${e.engine})`);
        break;
      case 'finished':
        line(`rank ${e.rank} finished`);
        break;
    }
  };
  return {
    phase: () => undefined,
    event: show,
    log: (level, m) => line(`${level}: ${m}`),
    stop: () => undefined,
  };
}

/** Follows an experiment to its end with progress bars (TTY), plain lines, or NDJSON (--json). */
export async function followExperiment(
  client: CoordinatorClient,
  id: string,
  json: boolean,
): Promise<{ status: string }> {
  const detail = await client.get(id);
  const mode = displayModeOf(json);
  const display =
    mode === 'plain'
      ? plainLogDisplay()
      : createDisplay(mode, detail.workers, Number(detail.spec.max_epochs ?? 1));
  try {
    const summary = await client.follow(id, (m) => {
      if (m.kind === 'event') {
        display.event(m.event);
        if (mode === 'tty' && m.event.type === 'log')
          display.log(m.event.level, `rank ${m.event.rank}: ${m.event.message}`);
      }
    });
    if (json) process.stdout.write(`${JSON.stringify({ type: 'end', ...summary })}\n`);
    return summary;
  } finally {
    display.stop();
  }
}

const USAGE = `lits logs id [--follow] [--url URL] [--json]

The experiment's events (status, progress, metrics, checkpoints, worker logs) from its start.
--follow keeps going, with progress bars on a terminal, until the experiment ends
(exit 0 finished, 1 failed, 130 cancelled). --json prints one event per line.
${CLIENT_ENV_HELP}`;

export async function runLogs(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      follow: { type: 'boolean', short: 'f', default: false },
      url: { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const [id] = positionals;
  if (!id) {
    process.stderr.write(`lits logs: which experiment?\n\n${USAGE}\n`);
    return 2;
  }
  const client = clientFrom(values.url);
  try {
    if (values.follow) return exitCodeOf((await followExperiment(client, id, values.json)).status);
    // Without --follow: what has happened so far, ending once the stream goes quiet.
    const quiet = new AbortController();
    let timer = setTimeout(() => quiet.abort(), 1500);
    try {
      await client.follow(
        id,
        (m) => {
          clearTimeout(timer);
          timer = setTimeout(() => quiet.abort(), 1500);
          const out = m.kind === 'event' ? { id: m.id, ...m.event } : { type: 'end', ...m.summary };
          process.stdout.write(`${values.json ? JSON.stringify(out) : describe(out)}\n`);
        },
        { signal: quiet.signal },
      );
    } catch (err) {
      // Our own abort (the stream went quiet) ends the listing; anything else is a real failure.
      if (!quiet.signal.aborted) throw err;
    } finally {
      clearTimeout(timer);
    }
    return 0;
  } catch (err) {
    return reportApiError(err);
  }
}

function describe(e: Record<string, unknown>): string {
  const { type, id, ...rest } = e;
  return `${String(id ?? '').padEnd(16)} ${String(type).padEnd(10)} ${JSON.stringify(rest)}`;
}
