// Which workers a run may lease: every rank of a run runs one engine identity (engine and native thread pools),
// because a native engine's bits depend on both. `auto` prefers native engines; choosing pure JS is a fallback
// that the run's tags and log name.
import { ENGINE_KINDS, type ResolvedSpec, type RunEngine, type WorkerInfo } from '@lits-ddp/protocol';

/** `auto`'s order of preference: protocol's engine kinds, GPU first. */
const PREFERENCE: readonly RunEngine['name'][] = ENGINE_KINDS;

/** The engine a registered worker runs; undefined for an engine name this coordinator does not know. */
export function workerEngine(info: WorkerInfo): RunEngine | undefined {
  const name = info.engine as RunEngine['name'];
  if (!PREFERENCE.includes(name)) return undefined;
  return { name, threads: name === 'cpu' ? null : (info.engineThreads ?? null) };
}

export function sameEngine(a: RunEngine | undefined, b: RunEngine): boolean {
  return (
    a !== undefined &&
    a.name === b.name &&
    a.threads?.intraOp === b.threads?.intraOp &&
    a.threads?.interOp === b.threads?.interOp
  );
}

export function formatRunEngine(e: RunEngine): string {
  if (!e.threads) return e.name;
  return `${e.name} with ${e.threads.intraOp} intra-op / ${e.threads.interOp} inter-op thread${e.threads.interOp === 1 ? '' : 's'}`;
}

/** True when `engine` may serve a run of `spec`: the spec's engine, and for native ones its thread count. */
function allowedBySpec(spec: ResolvedSpec, engine: RunEngine): boolean {
  if (spec.engine !== 'auto' && spec.engine !== engine.name) return false;
  return engine.threads === null ? engine.name === 'cpu' : engine.threads.intraOp === spec['engine-threads'];
}

/**
 * The engine to lease `count` workers of: the run's engine once its first generation fixed it; else the best
 * engine (gpu, node, cpu) the spec allows that has at least `count` live workers, idle or not, so `auto` waits
 * for busy native workers rather than settling for pure JS. Undefined: no engine has enough live workers.
 */
export function chooseRunEngine(
  spec: ResolvedSpec,
  fixed: RunEngine | undefined,
  live: readonly WorkerInfo[],
  count: number,
): RunEngine | undefined {
  if (fixed) return fixed;
  const groups = new Map<string, { engine: RunEngine; workers: number }>();
  for (const info of live) {
    const engine = workerEngine(info);
    if (!engine || !allowedBySpec(spec, engine)) continue;
    const key = JSON.stringify(engine);
    const group = groups.get(key) ?? { engine, workers: 0 };
    group.workers++;
    groups.set(key, group);
  }
  const enough = [...groups.values()].filter((g) => g.workers >= count);
  enough.sort(
    (a, b) => PREFERENCE.indexOf(a.engine.name) - PREFERENCE.indexOf(b.engine.name) || b.workers - a.workers,
  );
  return enough[0]?.engine;
}

/** What a run waiting for workers is waiting for, and what is there instead. */
export function describeWait(
  spec: ResolvedSpec,
  fixed: RunEngine | undefined,
  live: readonly WorkerInfo[],
  count: number,
): string {
  const threads = `${spec['engine-threads']} intra-op thread${spec['engine-threads'] === 1 ? '' : 's'}`;
  const wanted = fixed
    ? formatRunEngine(fixed)
    : spec.engine === 'auto'
      ? `the best engine (native ones with ${threads})`
      : spec.engine === 'cpu'
        ? 'engine cpu'
        : `engine ${spec.engine} with ${threads}`;
  const seen = new Map<string, number>();
  for (const info of live) {
    const engine = workerEngine(info);
    const label = engine ? formatRunEngine(engine) : `unknown engine '${info.engine}'`;
    seen.set(label, (seen.get(label) ?? 0) + 1);
  }
  const have = [...seen].map(([label, n]) => `${n} × ${label}`).join(', ') || 'none';
  return `waiting for ${count} free worker${count === 1 ? '' : 's'} running ${wanted}; live workers: ${have}`;
}

/**
 * Why the run does not run the engine `auto` prefers, or null: pure JS chosen while the spec allowed native, or
 * leased workers whose own `auto` fell back (an installed native engine that did not load).
 */
export function engineFallback(
  spec: ResolvedSpec,
  chosen: RunEngine,
  leased: readonly WorkerInfo[],
): string | null {
  if (spec.engine !== 'auto') return null;
  const own = [...new Set(leased.map((w) => w.engineFallback).filter((r): r is string => !!r))];
  const reasons: string[] = [];
  if (chosen.name === 'cpu')
    reasons.push(
      `no ${leased.length} live native worker${leased.length === 1 ? '' : 's'} with ${spec['engine-threads']} intra-op thread${spec['engine-threads'] === 1 ? '' : 's'}: running the pure-JS cpu engine`,
    );
  reasons.push(...own.map((r) => `worker: ${r}`));
  return reasons.length > 0 ? reasons.join('; ') : null;
}

/** The tags a run's engine is recorded under (MLflow or the local tracker). */
export function engineTags(
  engine: RunEngine,
  libtensorflow: string | undefined,
  fallback: string | null,
  environment: Readonly<Record<string, string>> | null = null,
): Record<string, string> {
  // The GPU variables the engine loaded with (allow-growth, device order, the deterministic kernels' switches); not
  // CUDA_VISIBLE_DEVICES, which differs from worker to worker (each is pinned to its GPU).
  const env = Object.fromEntries(
    Object.entries(environment ?? {})
      .filter(([k]) => k !== 'CUDA_VISIBLE_DEVICES')
      .map(([k, v]) => [`engine.env.${k}`, v]),
  );
  return {
    ...env,
    engine: engine.name,
    ...(engine.threads
      ? {
          'engine.intra_op_threads': String(engine.threads.intraOp),
          'engine.inter_op_threads': String(engine.threads.interOp),
        }
      : {}),
    ...(libtensorflow ? { 'engine.libtensorflow': libtensorflow } : {}),
    ...(fallback ? { 'engine.fallback': fallback.slice(0, 4000) } : {}),
  };
}

/**
 * A run's engine across its generations: chosen at the first lease (or taken from an adopted plan), then the
 * only engine its later generations lease.
 */
export class RunEngineChoice {
  engine: RunEngine | undefined;
  libtensorflow: string | undefined;
  fallback: string | undefined;

  constructor(private readonly spec: ResolvedSpec) {}

  /** The engine to lease `count` workers of now, or undefined (see chooseRunEngine). */
  pick(live: readonly WorkerInfo[], count: number): RunEngine | undefined {
    return chooseRunEngine(this.spec, this.engine, live, count);
  }

  waiting(live: readonly WorkerInfo[], count: number): string {
    return describeWait(this.spec, this.engine, live, count);
  }

  adopt(engine: RunEngine): void {
    this.engine = engine;
  }

  /** Fixes the engine at the first lease; returns its tags and log line (none after the first). */
  fix(
    engine: RunEngine,
    leased: readonly WorkerInfo[],
  ): { tags: Record<string, string>; line: string; fallback: boolean } | undefined {
    if (this.engine) return undefined;
    this.engine = engine;
    const fallback = engineFallback(this.spec, engine, leased);
    this.libtensorflow = leased.find((w) => w.libtensorflow)?.libtensorflow ?? undefined;
    this.fallback = fallback ?? undefined;
    return {
      tags: engineTags(engine, this.libtensorflow, fallback, leased[0]?.engineEnvironment ?? null),
      line: `engine ${formatRunEngine(engine)}${fallback ? ` (fallback: ${fallback})` : ''}`,
      fallback: fallback !== null,
    };
  }

  /** The engine fields of a run's outcome. */
  outcome(): { engine?: RunEngine; libtensorflow?: string; engineFallback?: string } {
    return {
      ...(this.engine ? { engine: this.engine } : {}),
      ...(this.libtensorflow ? { libtensorflow: this.libtensorflow } : {}),
      ...(this.fallback ? { engineFallback: this.fallback } : {}),
    };
  }
}
