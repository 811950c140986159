import { cpus, platform } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { microBatchesPerStep, resolveSpec, type ResolvedSpec } from '@lits-ddp/protocol';
import {
  planStudy,
  readReproReport,
  summaryJson,
  writeReproReport,
  type PlannedRun,
  type ReproRunRecord,
  type WrittenReport,
} from '@lits-ddp/repro-report';
import { UsageError } from '../errors.js';
import { launchLocalRun, startEmbeddedRedis } from '../launcher/local-run.js';
import { specFromArgs } from '../spec-flags.js';
import { ensurePhantomSet, phantomSetIds } from './phantom-set.js';
import { crashPointOf, CrashWatcher, type CrashPoint } from './repro-crash.js';
import { elasticRunsLine, GenerationSizes, runSpecInput, sizeLabel, specKey } from './repro-elastic.js';
import { describeRun, recordOf } from './repro-record.js';
import { REPRO_EPOCHS, REPRO_PHANTOMS, reproSpec } from './repro-defaults.js';
import { engineLine } from './result-output.js';

const USAGE = `lits repro [--runs 10] [--workers 2] [--epochs N] [--config spec.json] [--dataset-path DIR]
           [--world-sizes 1,4|none] [--no-crash] [--no-elastic] [--out DIR] [--home DIR] [--json]
           [--<spec-field> <value> …]
lits repro --from REPORT/runs.json [--out DIR] [--json]

The seed's reproducibility study in one command: K trainings in each mode (random, seed, deterministic),
deterministic runs at the other world sizes (default: those of 1, 2, 4 that divide the micro-batches per step),
one deterministic run with a worker killed mid-run (kill -9 mid-run, once a checkpoint exists;
the group restarts from the last checkpoint, and the report records which one), and two elastic ones at
N = --workers (at least 2): shrink (rank N−1 killed the same way and not started again: the run goes on at N−1
from its last checkpoint) and grow (starts at ⌊N/2⌋ with N worker processes, grows to N at its first checkpoint).
Each must end with the weights of the uninterrupted deterministic runs.
Writes a report folder (default HOME/repro/<time>): runs.csv, runs.json, summary.md (mean ± sd and variance per
class and mode, distinct final weight hashes) and iou-boxplot.png.

Without --config, the demo's pipeline and model (lits demo) on its phantom set (24 training cases, 8 held out
with the seed's LiTS test ids: every mode is scored on the same cases), trained on a 24³ cube with lr 0.002 for
30 epochs, testing and checkpointing every 5. One such training takes about 40 s on 2 cores with the native
engine and learns all three classes (test tumour IoU 0.52 at seeds 0/0), so the default study (10 runs per mode
+ N=1, N=4, the crash run and the two elastic runs: 35 trainings) takes under 30 min on an idle 2-core machine.
--epochs N also sets test-epochs to at most N/2, so the crash and shrink runs have a checkpoint to resume from.
Needs a built checkout and redis-server on PATH (started on a free port) or REDIS_URL; \`npm run demo\` installs it.
--from re-renders the report of earlier runs. Exit status: 0, 1 when a run failed, 2 for a bad command line,
3 when deterministic runs (elastic ones included) ended with different weights, 130 when interrupted.`;

const EXTRA_FLAGS = new Set([
  'runs',
  'epochs',
  'world-sizes',
  'no-crash',
  'no-elastic',
  'out',
  'home',
  'json',
  'from',
  'verbose',
  'help',
]);

function positiveInt(flag: string, value: string | boolean | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = typeof value === 'string' ? Number(value) : Number.NaN;
  if (!Number.isInteger(n) || n < 1)
    throw new UsageError(`--${flag} must be an integer ≥ 1, got "${String(value)}"`);
  return n;
}

function worldSizesOf(value: string | boolean | undefined, k: number, workers: number): number[] {
  if (value === undefined) return [1, 2, 4].filter((n) => k % n === 0 && n !== workers);
  if (value === 'none') return [];
  if (typeof value !== 'string') throw new UsageError('--world-sizes needs a list such as 1,4 (or none)');
  return value.split(',').map((part) => positiveInt('world-sizes', part.trim(), 1));
}

/** The figure's subtitle: what was run, from the report's configuration. */
function subtitleOf(c: Record<string, string | number | boolean>): string {
  const runs = Number(c['runs per mode']);
  const data = String(c['data set']);
  return `${runs} run${runs === 1 ? '' : 's'} per mode · ${String(c.workers)} workers · ${String(c.epochs)} epochs · ${String(c.engine)} engine · ${data.startsWith('phantoms') ? 'phantom set' : data}`;
}

/** The exit status of a study and the line that explains it. */
function verdict(report: WrittenReport, interrupted: boolean): { code: number; message: string } {
  const s = report.summary;
  if (interrupted) return { code: 130, message: 'interrupted: the report holds the runs finished so far' };
  if (
    (s.distinctHashes.deterministic ?? 0) > 1 ||
    s.crash?.matchesUninterrupted === false ||
    s.elastic?.matchesUninterrupted === false
  )
    return {
      code: 3,
      message: 'deterministic runs ended with different weights: the determinism promise is broken here',
    };
  if (s.failed.length > 0) return { code: 1, message: `${s.failed.length} run(s) did not finish` };
  return { code: 0, message: 'done' };
}

async function finish(report: WrittenReport, json: boolean, interrupted: boolean): Promise<number> {
  const { code, message } = verdict(report, interrupted);
  process.stderr.write(
    `\n${report.table}\nreport: ${report.dir}\nboxplot: ${report.files.png}\n${message}\n`,
  );
  if (json)
    process.stdout.write(
      `${JSON.stringify({ reportDir: report.dir, files: report.files, ...summaryJson(report.summary) })}\n`,
    );
  return code;
}

/** `--from`: the report of earlier runs, drawn again from their runs.json (into its folder unless --out). */
async function rerenderReport(from: string, outDir: string | undefined, json: boolean): Promise<number> {
  const previous = await readReproReport(from);
  const { configuration, figure } = previous;
  const report = await writeReproReport(outDir ?? dirname(resolve(from)), previous.runs, {
    configuration,
    ...figure,
    ...(figure.subtitle || !configuration['runs per mode'] ? {} : { subtitle: subtitleOf(configuration) }),
  });
  return finish(report, json, false);
}

/**
 * What the study runs: its plan, a resolved spec per (mode, world size), and where the crash and shrink runs
 * kill a rank.
 */
interface ReproStudy {
  plan: PlannedRun[];
  /** By specKey. */
  specs: Map<string, ResolvedSpec>;
  /** The deterministic spec at the study's world size: the configuration the report shows. */
  baseSpec: ResolvedSpec;
  runs: number;
  workers: number;
  /** Micro-batches per step. */
  k: number;
  crashPoint: CrashPoint | undefined;
  shrinkPoint: CrashPoint | undefined;
}

/**
 * The raw spec every run starts from: the demo's small configuration unless --config, the phantom set in
 * `phantomDir` unless --dataset-path, the flags, and --epochs with test-epochs capped so the crash run has a
 * checkpoint to resume from.
 */
function studyRawSpec(
  argv: string[],
  flags: Record<string, unknown>,
  epochs: number | undefined,
  phantomDir: string,
): Record<string, unknown> {
  const phantoms = flags['dataset-path'] === undefined;
  const hasConfig = argv.some((a) => a === '--config' || a.startsWith('--config='));
  const base: Record<string, unknown> = hasConfig ? {} : reproSpec(phantomDir, epochs ?? REPRO_EPOCHS);
  const raw: Record<string, unknown> = {
    ...base,
    ...(phantoms ? { 'dataset-path': phantomDir, split: 'lits' } : {}),
    ...flags,
    ...(epochs ? { max_epochs: epochs } : {}),
  };
  const first = resolveSpec(raw);
  if (first.ok && epochs) {
    // Unless given, checkpoint by the middle epoch at the latest, so the crash run resumes from a checkpoint.
    const cap = flags['test-epochs'] === undefined ? Math.max(1, Math.floor(epochs / 2)) : epochs;
    raw['test-epochs'] = Math.min(first.spec['test-epochs'], cap);
  }
  return raw;
}

/**
 * Plans the study and checks every spec of it before the first run starts. A string list says what is wrong (exit
 * 2): spec fields per mode and world size, or a crash or shrink run that could not resume from a checkpoint.
 */
function planReproStudy(
  raw: Record<string, unknown>,
  rest: Record<string, string | boolean>,
  runs: number,
): ReproStudy | string[] {
  const first = resolveSpec(raw);
  const workers = typeof raw.workers === 'number' ? raw.workers : first.ok ? first.spec.workers : 2;
  const k = first.ok ? microBatchesPerStep(first.spec) : 1;
  const plan = planStudy({
    runs,
    workers,
    worldSizes: worldSizesOf(rest['world-sizes'], k, workers),
    crash: rest['no-crash'] === undefined,
    elastic: rest['no-elastic'] === undefined,
  });
  const specs = new Map<string, ResolvedSpec>();
  const problems: string[] = [];
  for (const p of plan) {
    const key = specKey(p);
    if (specs.has(key)) continue;
    const r = resolveSpec(runSpecInput(raw, p));
    const elastic = p.variant === 'shrink' || p.variant === 'grow';
    const run = elastic
      ? `the ${p.variant} run, ${p.workers} workers; --no-elastic leaves it out`
      : `${p.mode} mode, ${p.workers} workers`;
    if (r.ok) specs.set(key, r.spec);
    else for (const e of r.errors) problems.push(`spec ${e.path}: ${e.message} (${run})`);
  }
  if (problems.length > 0) return [...new Set(problems)];
  const baseSpec = specs.get(`deterministic/${workers}`) as ResolvedSpec;
  let crashPoint: CrashPoint | undefined;
  if (plan.some((p) => p.variant === 'crash')) {
    const point = crashPointOf(baseSpec);
    if (typeof point === 'string') return [`lits repro: the crash run: ${point}`];
    crashPoint = point;
  }
  // The shrink run is killed like the crash run; its checkpoint also lets the grow run grow before the end.
  let shrinkPoint: CrashPoint | undefined;
  const shrink = plan.find((p) => p.variant === 'shrink');
  if (shrink) {
    const point = crashPointOf(specs.get(specKey(shrink)) as ResolvedSpec, '--no-elastic');
    if (typeof point === 'string') return [`lits repro: the elastic runs: ${point}`];
    shrinkPoint = point;
  }
  return { plan, specs, baseSpec, runs, workers, k, crashPoint, shrinkPoint };
}

/**
 * The report's "what was run" list (summary.md, runs.json), `phantomDir` null for a given data set; the engine and
 * wall time are filled in later.
 */
function studyConfiguration(
  study: ReproStudy,
  phantomDir: string | null,
): Record<string, string | number | boolean> {
  const { baseSpec, plan, crashPoint, shrinkPoint } = study;
  return {
    'data set':
      phantomDir !== null
        ? `phantoms (${phantomDir}; test ids ${phantomSetIds(REPRO_PHANTOMS).test.join(', ')})`
        : baseSpec['dataset-path'],
    'runs per mode': study.runs,
    workers: study.workers,
    'other world sizes':
      plan
        .filter((p) => p.variant === 'world-size')
        .map((p) => p.workers)
        .join(', ') || 'none',
    'crash run': crashPoint ? `kill -9 rank ${crashPoint.rank} in epoch ${crashPoint.epoch}` : 'none',
    'elastic runs': elasticRunsLine(plan, shrinkPoint),
    epochs: baseSpec.max_epochs,
    'test epochs': baseSpec['test-epochs'],
    'micro-batches per step (K)': study.k,
    'cube size': baseSpec['cube-size'],
    'unet width': baseSpec['unet-width'],
    lr: baseSpec.lr,
    engine: baseSpec.engine,
    node: process.version,
    cpu: `${cpus()[0]?.model ?? 'unknown'} × ${cpus().length} (${platform()})`,
  };
}

interface StudyRunOptions {
  home: string;
  redisUrl: string;
  verbose: boolean;
  log: (line: string) => void;
  /** Gets the engine line of the first run (the spec may say auto). */
  configuration: Record<string, string | number | boolean>;
}

/** Runs the planned trainings one after another; stops early, `interrupted`, when one is cancelled (Ctrl-C). */
async function runStudy(
  study: ReproStudy,
  options: StudyRunOptions,
): Promise<{ records: ReproRunRecord[]; interrupted: boolean }> {
  const { plan, specs, baseSpec } = study;
  const { log, configuration } = options;
  const records: ReproRunRecord[] = [];
  for (const [i, planned] of plan.entries()) {
    const spec = { ...(specs.get(specKey(planned)) as ResolvedSpec) };
    spec['run-name'] = `repro-${planned.mode}-${planned.variant}-${planned.index}-n${planned.workers}`;
    const label = `[${String(i + 1).padStart(String(plan.length).length)}/${plan.length}] ${planned.mode} ${planned.variant === 'repeat' ? `#${planned.index}` : planned.variant} (N=${sizeLabel(planned)})`;
    const killAt =
      planned.variant === 'crash'
        ? study.crashPoint
        : planned.variant === 'shrink'
          ? study.shrinkPoint
          : undefined;
    const crash = killAt ? new CrashWatcher(killAt, (line) => log(`  ${label}: ${line}`)) : undefined;
    const generations = new GenerationSizes();
    const t0 = Date.now();
    const result = await launchLocalRun({
      spec,
      json: false,
      quiet: true,
      home: options.home,
      redisUrl: options.redisUrl,
      // The shrink run's killed worker stays dead, so the run goes on with one fewer.
      respawnLostWorkers: planned.variant !== 'shrink',
      onEvent: (e, procs) => {
        generations.onEvent(e);
        if (options.verbose && e.type === 'metrics' && e.metrics.train_avg_loss !== undefined)
          log(`  ${label} epoch ${e.epoch}: train loss ${e.metrics.train_avg_loss.toFixed(4)}`);
        crash?.onEvent(e, procs);
      },
    });
    const record = await recordOf(planned, result, baseSpec['n-class'], (Date.now() - t0) / 1000, {
      crash,
      worldSizes: generations.sizes,
    });
    records.push(record);
    // The engine the runs got (the spec may say auto), as the first run's ranks ran it.
    if (result.engine && configuration.engine === baseSpec.engine)
      configuration.engine = engineLine(result.engine, result.libtensorflow);
    log(`${label} ${describeRun(record)}`);
    if (result.status === 'cancelled') return { records, interrupted: true };
  }
  return { records, interrupted: false };
}

export async function runRepro(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const log = (s: string): void => void process.stderr.write(`${s}\n`);
  try {
    const { spec: flags, rest } = await specFromArgs(argv, EXTRA_FLAGS);
    const json = rest.json === true;
    const home = resolve(typeof rest.home === 'string' ? rest.home : '.lits');
    const outFlag = typeof rest.out === 'string' ? resolve(rest.out) : undefined;
    if (rest.from !== undefined) {
      if (typeof rest.from !== 'string') throw new UsageError('--from needs a runs.json file');
      return await rerenderReport(rest.from, outFlag, json);
    }

    const runs = positiveInt('runs', rest.runs, 10);
    const epochs = rest.epochs === undefined ? undefined : positiveInt('epochs', rest.epochs, 1);
    const phantomDir = join(home, 'demo-data');
    const phantoms = flags['dataset-path'] === undefined;
    const study = planReproStudy(studyRawSpec(argv, flags, epochs, phantomDir), rest, runs);
    if (Array.isArray(study)) {
      for (const line of study) log(line);
      return 2;
    }
    if (phantoms) await ensurePhantomSet(phantomDir, REPRO_PHANTOMS, log);

    const stamp = new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
    const outDir = outFlag ?? join(home, 'repro', stamp);
    const configuration = studyConfiguration(study, phantoms ? phantomDir : null);
    log(
      `lits repro: ${study.plan.length} runs (${runs} per mode at ${study.workers} workers, K = ${study.k}); report → ${outDir}`,
    );
    const redisServer = process.env.REDIS_URL ? undefined : await startEmbeddedRedis();
    const redisUrl = redisServer?.url ?? (process.env.REDIS_URL as string);
    const started = Date.now();
    let outcome: { records: ReproRunRecord[]; interrupted: boolean };
    try {
      outcome = await runStudy(study, {
        home,
        redisUrl,
        verbose: rest.verbose === true,
        log,
        configuration,
      });
    } finally {
      await redisServer?.dispose();
    }
    configuration['wall time'] = `${((Date.now() - started) / 60_000).toFixed(1)} min`;
    const report = await writeReproReport(outDir, outcome.records, {
      configuration,
      subtitle: subtitleOf(configuration),
    });
    return await finish(report, json, outcome.interrupted);
  } catch (err) {
    if (err instanceof UsageError) {
      log(`lits repro: ${err.message}\n\n${USAGE}`);
      return 2;
    }
    throw err;
  }
}
