import { Writable } from 'node:stream';
import { stripVTControlCharacters as plain } from 'node:util';
import { describe, expect, it } from 'vitest';
import type { ExperimentDetail, RunEvent } from '@lits-ddp/protocol';
import { sizeLines } from '../src/commands/status.js';
import { createDisplay, describeGeneration } from '../src/display/run-display.js';

/** A terminal stand-in: isTTY and a width, so cli-progress draws, and everything written kept. */
class FakeTty extends Writable {
  readonly isTTY = true;
  readonly columns = 160;
  text = '';
  override _write(chunk: Buffer, _encoding: string, done: () => void): void {
    this.text += chunk.toString();
    done();
  }
}

const progress = (rank: number, epoch: number, step: number, loss: number): RunEvent => ({
  type: 'progress',
  generation: 1,
  rank,
  epoch,
  step,
  stepsPerEpoch: 4,
  loss,
  timings: { computeMs: 10, allReduceMs: 2, dataMs: 1, otherMs: 0 },
});

describe('the TTY progress display', () => {
  it('draws one bar per worker with epoch, step, loss and ETA, and prints run messages above them', async () => {
    const tty = new FakeTty();
    const display = createDisplay('tty', 2, 5, tty);
    display.phase('validating', 3, 8);
    await new Promise((r) => setTimeout(r, 300)); // a few frames (one per 100 ms); 3/8 shows as 37 %
    const validating = plain(tty.text);
    expect(validating).toMatch(/ rank validating \S+ 37% /);
    display.phase('training');
    display.event(progress(0, 1, 1, 0.5));
    display.event(progress(1, 1, 2, 0.25));
    display.event({
      type: 'metrics',
      generation: 1,
      epoch: 1,
      metrics: { train_avg_loss: 0.4, val_mean_iou: 0.75 },
    });
    display.event({ type: 'failed', generation: 1, rank: 1, error: 'rank 1 stopped by SIGTERM' });
    display.event({ type: 'log', rank: 0, level: 'warn', message: 'cannot load the best checkpoint' });
    const beforeStop = tty.text.length;
    display.stop();

    expect(tty.text).toContain('\x1B[?25l'); // the cursor is hidden while drawing
    const lines = plain(tty.text).split(/\r?\n/);
    // epoch 1 step 1 of 5 × 4 steps: 6 of 20 steps done (30 %); rank 1 is at 7 of 20 (35 %).
    const rank0 = lines.filter((l) => l.startsWith(' rank 0 ')).at(-1) ?? '';
    const rank1 = lines.filter((l) => l.startsWith(' rank 1 ')).at(-1) ?? '';
    expect(rank0).toMatch(/ 30% \| epoch 2\/5 step 2\/4 \| loss 0\.5000 \| ETA \S+/);
    expect(rank1).toMatch(/ 35% \| epoch 2\/5 step 3\/4 \| loss 0\.2500 \| ETA \S+/);
    expect(lines).toContain('epoch 1: train loss 0.4000, val mean IoU 0.7500');
    expect(lines).toContain('rank 1 failed: rank 1 stopped by SIGTERM');
    expect(lines).toContain('rank 0 warn: cannot load the best checkpoint');
    // The last frame holds the two worker bars only: the phase bar went when training began.
    const lastFrame = plain(tty.text.slice(beforeStop));
    expect(lastFrame).toMatch(/ rank 0 .* rank 1 /s);
    expect(lastFrame).not.toMatch(/rank validating/);
  });
});

const generation = (
  g: number,
  worldSize: number,
  change: 'start' | 'restart' | 'shrink' | 'grow',
  resumeEpoch: number,
  reason: string,
): RunEvent => ({
  type: 'generation',
  generation: g,
  worldSize,
  workers: Array.from({ length: worldSize }, (_, r) => `w${r}`),
  change,
  reason,
  resumeEpoch,
});

const stepOf = (g: number, rank: number, epoch: number, step: number): RunEvent => ({
  ...(progress(rank, epoch, step, 0.5) as Extract<RunEvent, { type: 'progress' }>),
  generation: g,
});

/** The ranks whose bars the frame drawn by stop() holds. */
function ranksAtStop(tty: FakeTty, display: ReturnType<typeof createDisplay>): number[] {
  const beforeStop = tty.text.length;
  display.stop();
  const frame = plain(tty.text.slice(beforeStop));
  return [...frame.matchAll(/ rank (\d+) /g)].map((m) => Number(m[1])).sort((a, b) => a - b);
}

describe('generations in the progress display', () => {
  it('prints a line per generation and drops the bars of ranks a shrink took away', () => {
    const tty = new FakeTty();
    const display = createDisplay('tty', 3, 5, tty);
    display.phase('training');
    display.event(generation(1, 3, 'start', 0, 'the first generation'));
    for (const rank of [0, 1, 2]) display.event(stepOf(1, rank, 1, 3));
    display.event(generation(2, 2, 'shrink', 2, 'w2 lost; no replacement in 30 s'));
    // A step rank 2 published before it stopped comes after the new generation: no bar for it again.
    display.event(stepOf(1, 2, 2, 0));
    for (const rank of [0, 1]) display.event(stepOf(2, rank, 2, 0));
    expect(ranksAtStop(tty, display)).toEqual([0, 1]);
    const lines = plain(tty.text).split(/\r?\n/);
    expect(lines).toContain('generation 1: 3 workers (start) from epoch 0 — the first generation');
    expect(lines).toContain(
      'generation 2: 2 workers (shrink) from epoch 2 — w2 lost; no replacement in 30 s',
    );
    // The new bars count from where the generation resumed (epoch 2 of 5, 4 steps each): 9 of 20 steps.
    const rank1 = lines.filter((l) => l.startsWith(' rank 1 ')).at(-1) ?? '';
    expect(rank1).toMatch(/ 45% \| epoch 3\/5 step 1\/4 /);
  });

  it('adds bars for the ranks a grow brings', () => {
    const tty = new FakeTty();
    const display = createDisplay('tty', 3, 5, tty);
    display.phase('training');
    display.event(generation(1, 1, 'start', 0, 'the first generation'));
    display.event(stepOf(1, 0, 0, 3));
    display.event(generation(2, 3, 'grow', 1, '2 idle workers at the checkpoint of epoch 0'));
    for (const rank of [0, 1, 2]) display.event(stepOf(2, rank, 1, 0));
    expect(ranksAtStop(tty, display)).toEqual([0, 1, 2]);
    expect(plain(tty.text)).toContain(
      'generation 2: 3 workers (grow) from epoch 1 — 2 idle workers at the checkpoint of epoch 0',
    );
  });

  it('describes a generation in one line, as the plain output and `lits status` print it', () => {
    expect(
      describeGeneration({ generation: 1, worldSize: 1, change: 'start', resumeEpoch: 0, reason: '' }),
    ).toBe('generation 1: 1 worker (start) from epoch 0');
  });
});

describe('`lits status <id>`: world size and generations', () => {
  const at = '2026-12-06T07:37:28.303Z';
  const detail = {
    id: 'exp-1',
    status: 'running',
    priority: 50,
    workers: 3,
    experimentName: 'lits-ddp',
    submittedAt: at,
    restarts: 1,
    worldSize: 2,
    spec: { 'min-workers': 2, 'max-workers': 3 },
    links: {},
    generations: [
      {
        generation: 1,
        worldSize: 3,
        workers: ['a', 'b', 'c'],
        change: 'start',
        reason: 'first',
        resumeEpoch: 0,
        at,
      },
      {
        generation: 2,
        worldSize: 2,
        workers: ['a', 'c'],
        change: 'shrink',
        reason: 'b lost',
        resumeEpoch: 2,
        at,
      },
    ],
    resuming: { generation: 2, worldSize: 2, resumeEpoch: 2, since: at },
  } satisfies ExperimentDetail;

  it('prints the world size, that it is resuming, and one line per generation', () => {
    expect(sizeLines(detail)).toEqual([
      'world     2 ranks, generation 2 (workers 2–3)',
      `resuming  at 2 workers from epoch 2 since ${at}`,
      `  ${at}  generation 1: 3 workers (start) from epoch 0 — first`,
      `  ${at}  generation 2: 2 workers (shrink) from epoch 2 — b lost`,
    ]);
  });

  it('prints nothing of the kind before the first generation', () => {
    const { worldSize: _w, generations: _g, resuming: _r, ...queued } = detail;
    expect(sizeLines(queued)).toEqual([]);
  });
});
