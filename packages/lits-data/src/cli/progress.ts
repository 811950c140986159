import cliProgress from 'cli-progress';
import type { CliIo } from './io.js';

export interface ProgressReporter {
  start: (total: number) => void;
  tick: (done: number, total: number, caseId: number, note?: string) => void;
  stop: () => void;
}

/** A bar on a TTY, else one plain line per case (`<what>: 3/8 case 2`), all on stderr. */
export function progressReporter(io: CliIo, what: string): ProgressReporter {
  if (io.stderr.isTTY) {
    const bar = new cliProgress.SingleBar(
      { format: `${what} [{bar}] {value}/{total} cases | case {caseId} {state}`, stream: process.stderr },
      cliProgress.Presets.shades_classic,
    );
    let running = false;
    return {
      start: (total) => {
        bar.start(total, 0, { caseId: '-', state: '' });
        running = true;
      },
      tick: (done, _total, caseId, note) => bar.update(done, { caseId, state: note ?? '' }),
      stop: () => {
        if (running) bar.stop();
        running = false;
      },
    };
  }
  return {
    start: (total) => io.stderr.write(`${what}: ${total} cases\n`),
    tick: (done, total, caseId, note) =>
      io.stderr.write(`${what}: ${done}/${total} case ${caseId}${note ? ` ${note}` : ''}\n`),
    stop: () => undefined,
  };
}
