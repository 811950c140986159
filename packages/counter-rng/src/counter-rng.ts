import { createHash } from 'node:crypto';
import { philox4x32 } from './philox.js';

/** One part of a purpose path: a name or a non-negative integer index. */
export type PurposePart = string | number | bigint;

const DOMAIN = 'lits-ddp/counter-rng/v1';
const TWO_POW_32 = 4294967296;

function canonical(parts: readonly PurposePart[]): string {
  return parts
    .map((p) => {
      if (typeof p === 'string') return `s${p.length}:${p}`;
      if (typeof p === 'bigint') return `i${p.toString()}`;
      if (!Number.isSafeInteger(p)) throw new RangeError(`purpose index must be a safe integer, got ${p}`);
      return `i${p}`;
    })
    .join('|');
}

/**
 * A random stream for one purpose, e.g. `CounterRng.derive(seed, 'dropout', epoch, step, microBatch, layer)`.
 *
 * The purpose path is hashed (SHA-256) into the Philox key and the upper counter words; the lower
 * 64 counter bits are the block index. So draw i of a stream depends only on (seed, purpose, i):
 * never on which process, thread or rank asks, nor on what other streams were used before.
 */
export class CounterRng {
  private readonly block = new Uint32Array(4);
  private blockIndex = -1;
  /** Index of the next 32-bit word in the stream. */
  private position = 0;

  private constructor(
    private readonly k0: number,
    private readonly k1: number,
    private readonly c2: number,
    private readonly c3: number,
  ) {}

  static derive(seed: PurposePart, ...purpose: PurposePart[]): CounterRng {
    const digest = createHash('sha256')
      .update(`${DOMAIN}\u0000${canonical([seed, ...purpose])}`)
      .digest();
    return new CounterRng(
      digest.readUInt32LE(0),
      digest.readUInt32LE(4),
      digest.readUInt32LE(8),
      digest.readUInt32LE(12),
    );
  }

  /** A sub-stream: the same as deriving with the parent's path plus `purpose`, but cheap to write. */
  child(...purpose: PurposePart[]): CounterRng {
    return CounterRng.derive(`${this.k0}.${this.k1}.${this.c2}.${this.c3}`, ...purpose);
  }

  /** The 32-bit word at stream index `index`, without moving the stream. */
  wordAt(index: number): number {
    const b = Math.floor(index / 4);
    if (b !== this.blockIndex) {
      philox4x32(b % TWO_POW_32, Math.floor(b / TWO_POW_32), this.c2, this.c3, this.k0, this.k1, this.block);
      this.blockIndex = b;
    }
    return this.block[index % 4] as number;
  }

  /** Moves the stream to `index` (words drawn so far); checkpoints store this. */
  seek(index: number): this {
    if (!Number.isSafeInteger(index) || index < 0) throw new RangeError(`bad stream position ${index}`);
    this.position = index;
    return this;
  }

  get offset(): number {
    return this.position;
  }

  uint32(): number {
    return this.wordAt(this.position++);
  }

  /** Uniform in [0, 1) with 24 random bits: every value is exactly representable in float32. */
  float32(): number {
    return (this.uint32() >>> 8) / 16777216;
  }

  /** Uniform in [0, 1) with 53 random bits. */
  float64(): number {
    const hi = this.uint32() >>> 5;
    const lo = this.uint32() >>> 6;
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  uniform(low: number, high: number): number {
    return low + (high - low) * this.float64();
  }

  /** An unbiased integer in [0, n) (Lemire's multiply-shift with rejection), 1 ≤ n ≤ 2^32. */
  int(n: number): number {
    if (!Number.isInteger(n) || n <= 0 || n > TWO_POW_32)
      throw new RangeError(`int(n) needs 1 ≤ n ≤ 2^32, got ${n}`);
    if (n === TWO_POW_32) return this.uint32();
    const threshold = (TWO_POW_32 - n) % n;
    for (;;) {
      const x = this.uint32();
      if (Math.imul(x, n) >>> 0 >= threshold) return hiMul(x, n);
    }
  }

  /** Standard normal by Box–Muller, one pair per call pair. */
  normal(): number {
    const u1 = 1 - this.float64(); // (0, 1]
    const u2 = this.float64();
    return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  }

  /** Fills `out` with U[low, high) in float32 (24-bit draws). */
  fillUniform(out: Float32Array, low: number, high: number): Float32Array {
    const span = high - low;
    for (let i = 0; i < out.length; i++) out[i] = low + span * this.float32();
    return out;
  }

  /** A uniformly random permutation of 0..n-1 (Fisher–Yates from the top). */
  permutation(n: number): Uint32Array {
    const p = new Uint32Array(n);
    for (let i = 0; i < n; i++) p[i] = i;
    for (let i = n - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = p[i] as number;
      p[i] = p[j] as number;
      p[j] = t;
    }
    return p;
  }
}

/** floor(x * n / 2^32) for uint32 x and n ≤ 2^32, exact. */
function hiMul(x: number, n: number): number {
  const xl = x & 0xffff;
  const xh = x >>> 16;
  return Math.floor((xh * n + Math.floor((xl * n) / 65536)) / 65536);
}
