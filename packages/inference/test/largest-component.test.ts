import { describe, expect, it } from 'vitest';
import { keepLargestComponent } from '../src/index.js';

describe('keepLargestComponent', () => {
  it('keeps the biggest 6-connected piece of label ≥ 1, tumour voxels included, and clears the rest', () => {
    // 4×4×4, last axis fastest. Piece A: a 2×2×2 block of liver with a tumour voxel (8 voxels); piece B: 3 voxels in a
    // row; C: one voxel touching A only by a corner (26- but not 6-connected).
    const shape: [number, number, number] = [4, 4, 4];
    const at = (a: number, b: number, c: number) => (a * 4 + b) * 4 + c;
    const labels = new Uint8Array(64);
    for (const a of [0, 1]) for (const b of [0, 1]) for (const c of [0, 1]) labels[at(a, b, c)] = 1;
    labels[at(1, 1, 1)] = 2;
    for (const c of [0, 1, 2]) labels[at(3, 3, c)] = 1;
    labels[at(2, 2, 2)] = 2;
    const report = keepLargestComponent(labels, shape);
    expect(report).toEqual({ components: 3, kept: 8, removed: 4 });
    expect([...labels].filter((v) => v > 0)).toHaveLength(8);
    expect(labels[at(1, 1, 1)]).toBe(2);
    expect(labels[at(2, 2, 2)]).toBe(0);
    expect(labels[at(3, 3, 0)]).toBe(0);
  });

  it('leaves an empty or single-piece volume alone and checks the shape', () => {
    expect(keepLargestComponent(new Uint8Array(8), [2, 2, 2])).toEqual({
      components: 0,
      kept: 0,
      removed: 0,
    });
    const full = new Uint8Array(27).fill(1);
    expect(keepLargestComponent(full, [3, 3, 3])).toEqual({ components: 1, kept: 27, removed: 0 });
    expect(() => keepLargestComponent(new Uint8Array(7), [2, 2, 2])).toThrow(/7 voxels/);
  });
});
