import type { Redis } from 'ioredis';
import { parseProgressRecord, rankOfClientName, type ProgressRecord } from '@lits-ddp/protocol';

/**
 * Resolves with the value, or with undefined after `ms` (the late reply is ignored) or when `p` rejects. Only for
 * best-effort commands (progress records, abort polling and publishing, diagnosis): a lost one costs precision, and
 * a Redis that is really gone is reported by the wait watchdog, whose timeout names it unreachable.
 */
export function within<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(undefined), ms);
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      () => {
        clearTimeout(timer);
        resolve(undefined);
      },
    );
  });
}

export interface DiagnosisInput {
  control: Redis;
  controlReady: boolean;
  redisName: string;
  redisError: Error | undefined;
  runId: string;
  generation: number;
  progressKey: string;
  rank: number;
  worldSize: number;
  sequence: number;
  label: string;
  waitingFor: number;
  budgetMs: number;
}

export interface Diagnosis {
  suspects: number[];
  detail: string;
}

/** The ranks holding at least one connection named for this run generation (CLIENT LIST). */
async function connectedRanks(d: DiagnosisInput): Promise<Set<number> | undefined> {
  const list = await within(
    d.control.call('CLIENT', 'LIST', 'TYPE', 'normal') as Promise<unknown>,
    d.budgetMs,
  );
  if (typeof list !== 'string') return undefined;
  const ranks = new Set<number>();
  for (const line of list.split('\n')) {
    const name = / name=(\S*)/.exec(line)?.[1];
    const rank = name ? rankOfClientName(name, d.runId, d.generation) : undefined;
    if (rank !== undefined) ranks.add(rank);
  }
  return ranks;
}

async function progressOf(d: DiagnosisInput): Promise<Map<number, ProgressRecord> | undefined> {
  const raw = await within(d.control.hgetall(d.progressKey), d.budgetMs);
  if (!raw) return undefined;
  const out = new Map<number, ProgressRecord>();
  for (const [field, text] of Object.entries(raw)) {
    try {
      out.set(Number(field), parseProgressRecord(text, `of rank ${field}`));
    } catch {
      // a malformed record only costs precision here; the timeout itself is still reported
    }
  }
  return out;
}

const ago = (at: number): string => `${((Date.now() - at) / 1000).toFixed(1)} s ago`;

/**
 * Finds who is to blame for a wait that timed out, in this order: ranks without any Redis connection (the process
 * exited or was killed), ranks in a different collective at this sequence (call order differs), ranks behind (busy
 * or stalled before this collective), else the rank whose message is missing.
 */
export async function diagnose(d: DiagnosisInput): Promise<Diagnosis> {
  if (!d.controlReady) {
    const why = d.redisError ? `: ${d.redisError.message}` : '';
    return { suspects: [], detail: `Redis ${d.redisName} is unreachable${why}` };
  }
  const [live, progress] = await Promise.all([connectedRanks(d), progressOf(d)]);
  const dead: number[] = [];
  const mismatched: string[] = [];
  const mismatchedRanks: number[] = [];
  const behind: string[] = [];
  const behindRanks: number[] = [];
  for (let r = 0; r < d.worldSize; r++) {
    if (r === d.rank) continue;
    if (live && !live.has(r)) {
      dead.push(r);
      continue;
    }
    const p = progress?.get(r);
    if (!progress) continue;
    if (!p) {
      behind.push(`rank ${r} has not entered any collective`);
      behindRanks.push(r);
    } else if (p.sequence < d.sequence) {
      const what = p.state === 'done' ? 'finished' : 'entered';
      behind.push(`rank ${r} is behind: it ${what} ${p.label} #${p.sequence} ${ago(p.at)}`);
      behindRanks.push(r);
    } else if (p.sequence === d.sequence && p.label !== d.label) {
      mismatched.push(`rank ${r} is in ${p.label} #${p.sequence}`);
      mismatchedRanks.push(r);
    }
  }
  const parts: string[] = [];
  if (dead.length) {
    parts.push(
      `${dead.map((r) => `rank ${r}`).join(', ')} ${dead.length > 1 ? 'have' : 'has'} no connection to Redis ` +
        `(process exited or was killed?)`,
    );
  }
  if (mismatched.length) {
    parts.push(
      `${mismatched.join('; ')} while this rank is in ${d.label}: the ranks called different collectives ` +
        `(or gave different arguments) at this point`,
    );
  }
  if (behind.length) parts.push(behind.join('; '));
  if (!live) parts.push('CLIENT LIST was unavailable, so dead ranks could not be told apart');
  const suspects = dead.length
    ? dead
    : mismatchedRanks.length
      ? mismatchedRanks
      : behindRanks.length
        ? behindRanks
        : [d.waitingFor];
  if (parts.length === 0) parts.push(`rank ${d.waitingFor} is in this collective but has not delivered`);
  return { suspects, detail: parts.join('; ') };
}
