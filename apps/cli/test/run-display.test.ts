import { Writable } from 'node:stream';
import { stripVTControlCharacters as plain } from 'node:util';
import { describe, expect, it } from 'vitest';
import type { RunEvent } from '@lits-ddp/protocol';
import { createDisplay } from '../src/display/run-display.js';

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
