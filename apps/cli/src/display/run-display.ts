import cliProgress from 'cli-progress';
import type { RunEvent } from '@lits-ddp/protocol';
import type { ExperimentPhase } from '@lits-ddp/orchestrator';

export type DisplayMode = 'tty' | 'plain' | 'json';

export interface RunDisplay {
  phase(phase: ExperimentPhase, done?: number, total?: number): void;
  event(event: RunEvent): void;
  log(level: 'info' | 'warn' | 'error', message: string): void;
  stop(): void;
}

const fmt = (v: number | undefined, digits = 4): string => (v === undefined ? '-' : v.toFixed(digits));

type GenerationEvent = Extract<RunEvent, { type: 'generation' }>;

/** `generation 2: 3 workers (shrink) from epoch 2 — <reason>`: a `generation` event, or one in the REST record. */
export function describeGeneration(
  g: Pick<GenerationEvent, 'generation' | 'worldSize' | 'change' | 'resumeEpoch' | 'reason'>,
): string {
  const workers = `${g.worldSize} worker${g.worldSize === 1 ? '' : 's'}`;
  const reason = g.reason ? ` — ${g.reason}` : '';
  return `generation ${g.generation}: ${workers} (${g.change}) from epoch ${g.resumeEpoch}${reason}`;
}

/** NDJSON on stdout: one line per phase change, event and log line. */
function jsonDisplay(): RunDisplay {
  const out = (obj: unknown): void => void process.stdout.write(`${JSON.stringify(obj)}\n`);
  return {
    phase: (phase, done, total) => out({ type: 'phase', phase, ...(total ? { done, total } : {}) }),
    event: (event) => out(event),
    log: (level, message) => out({ type: 'log', level, message }),
    stop: () => undefined,
  };
}

/** Plain lines on stderr (no TTY, or CI): phases, epoch metrics, and progress at most every 5 s. */
function plainDisplay(): RunDisplay {
  const line = (s: string): void =>
    void process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${s}\n`);
  let lastProgress = 0;
  let lastPhase = '';
  return {
    phase: (phase, done, total) => {
      if (phase !== lastPhase || done === total) line(`${phase}${total ? ` ${done}/${total}` : ''}`);
      lastPhase = phase;
    },
    event: (e) => {
      if (e.type === 'progress' && Date.now() - lastProgress > 5000) {
        lastProgress = Date.now();
        line(`rank ${e.rank} epoch ${e.epoch} step ${e.step + 1}/${e.stepsPerEpoch} loss ${fmt(e.loss)}`);
      } else if (e.type === 'metrics') {
        line(
          `epoch ${e.epoch}: ${Object.entries(e.metrics)
            .map(([k, v]) => `${k}=${fmt(v)}`)
            .join(' ')}`,
        );
      } else if (e.type === 'status') line(`status ${e.status}${e.message ? `: ${e.message}` : ''}`);
      else if (e.type === 'generation') line(describeGeneration(e));
      else if (e.type === 'waiting') line(e.message);
      else if (e.type === 'failed') line(`rank ${e.rank} failed: ${e.error}`);
      else if (e.type === 'log') line(`rank ${e.rank} ${e.level}: ${e.message}`);
    },
    log: (level, message) => line(`${level}: ${message}`),
    stop: () => undefined,
  };
}

/**
 * Progress bars on a TTY (stderr): one line per rank of the current generation with epoch, step, loss
 * and ETA. A new generation (its size may differ) takes the bars down until its own ranks report.
 */
function ttyDisplay(epochs: number, stream: NodeJS.WritableStream): RunDisplay {
  const multi = new cliProgress.MultiBar(
    {
      stream,
      format:
        ' rank {rank} {bar} {percentage}% | epoch {epoch}/{epochs} step {step}/{steps} | loss {loss} | ETA {eta_formatted}',
      hideCursor: true,
      clearOnComplete: false,
      etaBuffer: 50,
    },
    cliProgress.Presets.shades_classic,
  );
  let phaseBar: cliProgress.SingleBar | undefined;
  const bars = new Map<number, cliProgress.SingleBar>();
  let generation = 0;
  // Created at the step it first shows (a resumed generation starts mid-run), so its ETA counts
  // only the steps it has seen.
  const bar = (rank: number, total: number, done: number): cliProgress.SingleBar => {
    let b = bars.get(rank);
    if (!b) {
      b = multi.create(total, done, { rank, epoch: 0, epochs, step: 0, steps: 0, loss: '-' });
      bars.set(rank, b);
    }
    return b;
  };
  // The ranks of an earlier generation are gone (a shrink leaves fewer; a grow adds some).
  const dropBars = (): void => {
    for (const b of bars.values()) {
      b.stop();
      multi.remove(b);
    }
    bars.clear();
  };
  return {
    phase: (phase, done, total) => {
      if (phase === 'training' || phase === 'finishing') {
        phaseBar?.stop();
        multi.remove(phaseBar as cliProgress.SingleBar);
        phaseBar = undefined;
        if (phase === 'finishing') multi.log('finishing: test phase done, saving artifacts\n');
        return;
      }
      if (!phaseBar)
        phaseBar = multi.create(total ?? 1, 0, {
          rank: phase,
          epoch: '-',
          epochs: '-',
          step: '-',
          steps: '-',
          loss: '-',
        });
      phaseBar.setTotal(total ?? 1);
      phaseBar.update(done ?? 0, { rank: phase });
    },
    event: (e) => {
      if (e.type === 'progress') {
        // A step of a generation already replaced (published before its ranks stopped).
        if (e.generation < generation) return;
        const done = e.epoch * e.stepsPerEpoch + e.step + 1;
        const b = bar(e.rank, epochs * e.stepsPerEpoch, done);
        b.update(done, {
          epoch: e.epoch + 1,
          step: e.step + 1,
          steps: e.stepsPerEpoch,
          loss: fmt(e.loss),
        });
      } else if (e.type === 'metrics' && e.metrics.val_mean_iou !== undefined) {
        multi.log(
          `epoch ${e.epoch}: train loss ${fmt(e.metrics.train_avg_loss)}, val mean IoU ${fmt(e.metrics.val_mean_iou)}\n`,
        );
      } else if (e.type === 'generation') {
        generation = e.generation;
        dropBars();
        multi.log(`${describeGeneration(e)}\n`);
      } else if (e.type === 'status' && e.status !== 'running') {
        multi.log(`status ${e.status}${e.message ? `: ${e.message}` : ''}\n`);
      } else if (e.type === 'waiting') {
        multi.log(`${e.message}\n`);
      } else if (e.type === 'failed') {
        multi.log(`rank ${e.rank} failed: ${e.error}\n`);
      } else if (e.type === 'log') {
        multi.log(`rank ${e.rank} ${e.level}: ${e.message}\n`);
      }
    },
    log: (level, message) => multi.log(`${level}: ${message}\n`),
    stop: () => {
      // A last redraw first: stop() alone drops the messages logged since the previous frame.
      multi.update();
      multi.stop();
    },
  };
}

export function silentDisplay(): RunDisplay {
  return { phase: () => undefined, event: () => undefined, log: () => undefined, stop: () => undefined };
}

/**
 * `_workers` goes unused: the bars follow each generation's own ranks, however many (a run may
 * shrink or grow). `ttyStream` is where the bars go (stderr; tests pass a fake TTY).
 */
export function createDisplay(
  mode: DisplayMode,
  _workers: number,
  epochs: number,
  ttyStream: NodeJS.WritableStream = process.stderr,
): RunDisplay {
  if (mode === 'json') return jsonDisplay();
  return mode === 'tty' ? ttyDisplay(epochs, ttyStream) : plainDisplay();
}

export function displayModeOf(json: boolean): DisplayMode {
  if (json) return 'json';
  return process.stderr.isTTY && !process.env.CI ? 'tty' : 'plain';
}
