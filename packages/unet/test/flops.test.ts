import { describe, expect, it } from 'vitest';
import { SEED_ARCHITECTURE, unetFlops } from '../src/index.js';

describe('unetFlops, the analytic count of the benchmark', () => {
  it('counts 2·k³·Cin·Cout per output voxel of every conv, ×3 for a training step, × batch', () => {
    // Width 2, 1 input channel, 3 classes, a 4³ cube: levels of 64, 8 and 1 voxels. Multiply-adds by hand:
    //   inc    (27·1·2 + 27·2·2)                 · 64 = 162 · 64  = 10,368
    //   down1  (8·2·2 + 27·2·4 + 27·4·4)         · 8  = 680 · 8   =  5,440
    //   down2  (8·4·4 + 27·4·8 + 27·8·8)         · 1  =             2,720
    //   mid    (27·8·8 + 27·8·8)                 · 1  =             3,456
    //   up1    (27·(8+4)·4 + 27·4·4)             · 8  = 1,728 · 8 = 13,824
    //   up2    (27·(4+2)·2 + 27·2·2)             · 64 = 432 · 64  = 27,648
    //   outc   (1·2·3)                           · 64 =               384
    // Σ = 63,840 multiply-adds = 127,680 FLOPs forward per sample.
    const tiny = { ...SEED_ARCHITECTURE, width: 2 };
    expect(unetFlops(tiny, 4)).toEqual({ forwardPerSample: 127_680, trainStep: 3 * 127_680 });
    expect(unetFlops(tiny, 4, 2).trainStep).toBe(766_080);
    // The seed model at 32³ (the bench's seed_32): 7,895,777,280 multiply-adds forward → 47.37 GFLOP per step.
    expect(unetFlops(SEED_ARCHITECTURE, 32).trainStep).toBe(47_374_663_680);
    // Each level has 1/8 of the voxels of the one above, so doubling the edge multiplies the count by 8.
    expect(unetFlops(tiny, 8).forwardPerSample).toBe(8 * 127_680);
  });

  it('refuses a cube edge that is not a positive multiple of 4', () => {
    expect(() => unetFlops(SEED_ARCHITECTURE, 6)).toThrow(/positive multiple of 4, got 6/);
    expect(() => unetFlops(SEED_ARCHITECTURE, 0)).toThrow(/got 0/);
  });
});
