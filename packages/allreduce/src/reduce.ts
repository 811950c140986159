import { CollectiveArgumentError } from './errors.js';
import { blockCount, blockExponents, dequantise, fractionBits, quantiseInto } from './exact.js';
import { maxFloat32, sumFloat32, sumFloat64, sumInt32 } from './lanes.js';
import { firstNonFinite, nonFiniteFailure, reportOf } from './non-finite.js';
import type { ResolvedOptions } from './options.js';
import { ringAllReduce } from './ring.js';
import type { OpTransport } from './transport.js';

export type ReduceOp = 'sum' | 'mean' | 'max';

export interface ExactOptions {
  /** Contributions over all ranks (same value on every rank), e.g. the micro-batches of one optimiser step. */
  totalContributions: number;
  /** `mean` divides the exact sum by totalContributions, once. Default `sum`. */
  op?: 'sum' | 'mean';
  /** Vector length; needed only on a rank that passes no contributions. */
  length?: number;
}

export interface ExactArgs {
  total: number;
  op: 'sum' | 'mean';
  length: number;
  fractionBits: number;
}

export async function allReduceRingBody(
  t: OpTransport,
  x: Float32Array,
  op: ReduceOp,
  allowNonFinite: boolean,
): Promise<Float32Array> {
  const data = x.slice();
  await ringAllReduce(t, { data, combine: op === 'max' ? maxFloat32 : sumFloat32, phases: ['rs', 'ag'] });
  if (op === 'mean') for (let i = 0; i < data.length; i++) data[i] = (data[i] as number) / t.worldSize;
  // The result has the same bits on every rank, so every rank takes this branch alike.
  if (!allowNonFinite && firstNonFinite(data) >= 0) {
    throw await nonFiniteFailure(t, reportOf(t.rank, 0, x, firstNonFinite(x)), data);
  }
  return data;
}

/** Validates exact-mode arguments locally (before any message is sent). */
export function checkExactArgs(
  contributions: readonly Float32Array[],
  options: ExactOptions,
  o: ResolvedOptions,
): ExactArgs {
  if (!Array.isArray(contributions)) throw new TypeError('allReduceExact: contributions must be an array');
  const total = options?.totalContributions;
  if (!Number.isSafeInteger(total) || total < 1) {
    throw new RangeError(`allReduceExact: totalContributions must be a positive integer (got ${total})`);
  }
  if (contributions.length > total) {
    throw new RangeError(
      `allReduceExact: rank ${o.rank} passes ${contributions.length} contributions, more than totalContributions ${total}`,
    );
  }
  const op = options.op ?? 'sum';
  if (op !== 'sum' && op !== 'mean')
    throw new TypeError(`allReduceExact: op must be "sum" or "mean" (got ${op})`);
  let length = options.length;
  contributions.forEach((c, i) => {
    if (!(c instanceof Float32Array))
      throw new TypeError(`allReduceExact: contribution ${i} is not a Float32Array`);
    length ??= c.length;
    if (c.length !== length) {
      throw new RangeError(`allReduceExact: contribution ${i} has ${c.length} values, expected ${length}`);
    }
  });
  if (length === undefined || !Number.isSafeInteger(length) || length < 0) {
    throw new RangeError('allReduceExact: pass options.length on a rank without contributions');
  }
  return { total, op, length, fractionBits: fractionBits(total, o.exactLanes) };
}

const HEAD = 3; // exponent vector: [T, -T, any non-finite, E_0 .. E_{blocks-1}]

export async function allReduceExactBody(
  t: OpTransport,
  contributions: readonly Float32Array[],
  a: ExactArgs,
  o: ResolvedOptions,
): Promise<Float32Array> {
  const where = `${t.label} #${t.sequence}`;
  const block = o.exactBlockSize;
  const exponents = new Float32Array(HEAD + blockCount(a.length, block)).fill(-Infinity);
  exponents[0] = a.total;
  exponents[1] = -a.total;
  const bad = blockExponents(contributions, block, exponents, HEAD, t.rank);
  exponents[2] = bad ? 1 : 0;
  await ringAllReduce(t, { data: exponents, combine: maxFloat32, phases: ['xrs', 'xag'] });
  if (exponents[0] !== -(exponents[1] as number)) {
    throw new CollectiveArgumentError(
      `${where}: ranks disagree on totalContributions (values from ${-(exponents[1] as number)} to ${exponents[0]})`,
    );
  }
  if ((exponents[2] as number) > 0) throw await nonFiniteFailure(t, bad, undefined);

  let sums: Int32Array | Float64Array;
  if (o.exactLanes === 'int32') {
    const acc = new Int32Array(1 + a.length);
    acc[0] = contributions.length;
    quantiseInto(acc, 1, contributions, exponents, HEAD, block, a.fractionBits);
    await ringAllReduce(t, { data: acc, combine: sumInt32, phases: ['rs', 'ag'] });
    sums = acc;
  } else {
    const acc = new Float64Array(1 + a.length);
    acc[0] = contributions.length;
    quantiseInto(acc, 1, contributions, exponents, HEAD, block, a.fractionBits);
    await ringAllReduce(t, { data: acc, combine: sumFloat64, phases: ['rs', 'ag'] });
    sums = acc;
  }
  if (sums[0] !== a.total) {
    throw new CollectiveArgumentError(
      `${where}: the ranks passed ${sums[0]} contributions in all, but totalContributions is ${a.total}`,
    );
  }
  const out = dequantise(
    sums,
    1,
    a.length,
    exponents,
    HEAD,
    block,
    a.fractionBits,
    a.op === 'mean' ? a.total : 1,
  );
  if (firstNonFinite(out) >= 0) throw await nonFiniteFailure(t, undefined, out);
  return out;
}
