import Type from 'typebox';
import { errorMessage } from '@lits-ddp/errors';
import { decodeJson, JsonDecodeError } from '@lits-ddp/protocol';
import { CollectiveProtocolError, NonFiniteError, type NonFiniteReport } from './errors.js';
import { starAllGather } from './star.js';
import type { OpTransport } from './transport.js';

/** Index of the first NaN or +-Infinity, or -1. */
export function firstNonFinite(a: Float32Array): number {
  for (let i = 0; i < a.length; i++) {
    const x = a[i] as number;
    if (x - x !== 0) return i;
  }
  return -1;
}

export function reportOf(
  rank: number,
  contribution: number,
  a: Float32Array,
  index: number,
): NonFiniteReport | undefined {
  if (index < 0) return undefined;
  const x = a[index] as number;
  return { rank, contribution, index, value: Number.isNaN(x) ? 'NaN' : x > 0 ? 'Infinity' : '-Infinity' };
}

/** A rank's first non-finite input, as all-gathered (a rank whose inputs were finite sends `null`). */
const NonFiniteReportJson = Type.Object({
  rank: Type.Integer({ minimum: 0 }),
  contribution: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }),
  index: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }),
  value: Type.Enum(['NaN', 'Infinity', '-Infinity']),
});

function parseReport(buf: Buffer, from: number): NonFiniteReport | undefined {
  const text = buf.toString('utf8');
  if (text.trim() === 'null') return undefined;
  let report: NonFiniteReport;
  try {
    report = decodeJson(NonFiniteReportJson, text, `the non-finite report of rank ${from}`);
  } catch (err) {
    const problem = err instanceof JsonDecodeError ? err.problem : errorMessage(err);
    throw new CollectiveProtocolError(`rank ${from} sent a malformed non-finite report: ${problem}`, from, {
      cause: err,
    });
  }
  if (report.rank !== from) {
    throw new CollectiveProtocolError(`rank ${from} sent a non-finite report for rank ${report.rank}`, from);
  }
  return report;
}

/**
 * Every rank saw a non-finite flag or result (identical on all ranks), so all of them exchange their first bad
 * input and build the same error. `result` is the reduced output, used when no input was bad (overflow).
 */
export async function nonFiniteFailure(
  t: OpTransport,
  local: NonFiniteReport | undefined,
  result: Float32Array | undefined,
): Promise<NonFiniteError> {
  const gathered = await starAllGather(t, 'diag', Buffer.from(JSON.stringify(local ?? null)));
  const reports = gathered
    .map((buf, from) => parseReport(buf, from))
    .filter((r): r is NonFiniteReport => r !== undefined);
  const where = `${t.label} #${t.sequence}`;
  if (reports.length > 0) {
    const list = reports
      .map(
        (r) =>
          `rank ${r.rank} has ${r.value} at index ${r.index}` +
          (r.contribution ? ` of contribution ${r.contribution}` : ''),
      )
      .join('; ');
    return new NonFiniteError(`${where}: non-finite input: ${list}`, reports, undefined);
  }
  const at = result ? firstNonFinite(result) : -1;
  return new NonFiniteError(
    `${where}: the inputs are finite but the result overflows float32 at index ${at}`,
    [],
    at >= 0 ? at : undefined,
  );
}
