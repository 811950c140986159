import { describe, expect, it } from 'vitest';
import { philox4x32 } from '../src/philox.js';

const hex = (words: Uint32Array): string[] => Array.from(words, (w) => w.toString(16).padStart(8, '0'));

// Known-answer vectors of Random123 (kat_vectors: philox4x32 10 rounds).
describe('Philox4x32-10 known answers', () => {
  it.each([
    [
      [0, 0, 0, 0, 0, 0],
      ['6627e8d5', 'e169c58d', 'bc57ac4c', '9b00dbd8'],
    ],
    [
      [0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff],
      ['408f276d', '41c83b0e', 'a20bc7c6', '6d5451fd'],
    ],
    [
      [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0],
      ['d16cfe09', '94fdcceb', '5001e420', '24126ea1'],
    ],
  ])('counter/key %j', (input, expected) => {
    const out = new Uint32Array(4);
    const [c0, c1, c2, c3, k0, k1] = input as [number, number, number, number, number, number];
    philox4x32(c0, c1, c2, c3, k0, k1, out);
    expect(hex(out)).toEqual(expected);
  });
});
