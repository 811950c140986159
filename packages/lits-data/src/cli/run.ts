import { parseArgs } from 'node:util';
import { resolve } from 'node:path';
import cliProgress from 'cli-progress';
import { LitsDataError } from '../errors.js';
import { discoverDataset } from '../dataset/discover.js';
import { validateDataset } from '../dataset/validate.js';
import { generatePhantomDataset } from '../phantom/phantom.js';
import { preprocessDataset, type PreprocessProgress } from '../cache/cube-cache.js';
import type { PreprocessConfigInput } from '../preprocess/config.js';
import { inspectNifti, type InspectReport } from './inspect.js';
import {
  parseInteger,
  parseNumbers,
  parseSeed,
  parseShape,
  processIo,
  UsageError,
  type CliIo,
} from './io.js';

const USAGE = `usage: lits-data <command> [options]

  inspect FILE [--json]                       header, geometry and value statistics of a NIfTI file
  validate DIR [--json]                       check a LiTS or MSD Task03 folder (exit 1 when invalid)
  synth --out DIR --cases N [--size 64x64x32] [--seed S] [--json]
                                              write a LiTS-format phantom data set
  preprocess DIR --cache DIR [--preset seed|improved] [--cube 128] [--target-slices 512] [--downscale 2]
             [--spacing 1.5x1.5x1.5] [--window -200,250] [--json]
                                              preprocess every case into the cube cache

  --verbose prints stack traces of errors; --help prints this.`;

const OPTIONS = {
  json: { type: 'boolean' },
  verbose: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  out: { type: 'string' },
  cases: { type: 'string' },
  size: { type: 'string' },
  seed: { type: 'string' },
  cache: { type: 'string' },
  preset: { type: 'string' },
  cube: { type: 'string' },
  'target-slices': { type: 'string' },
  downscale: { type: 'string' },
  spacing: { type: 'string' },
  window: { type: 'string' },
} as const;

type Flags = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>['values'];

function one(positionals: string[], what: string): string {
  if (positionals.length !== 1)
    throw new UsageError(`expected exactly one ${what}, got ${positionals.length}`);
  return positionals[0]!;
}

function fmt(n: number | null): string {
  return n === null ? '-' : Number.isInteger(n) ? String(n) : n.toPrecision(6);
}

function printInspect(r: InspectReport, io: CliIo): void {
  const lines = [
    `${r.file}`,
    `  format       ${r.format}, ${r.byteOrder}-endian, ${r.datatype.name} (code ${r.datatype.code})`,
    `  shape        ${r.shape.join(' × ')}`,
    `  spacing      ${r.spacing.map((s) => fmt(s)).join(' × ')}`,
    `  orientation  ${r.orientation}`,
    ...r.affine.map(
      (row, i) => `  ${i === 0 ? 'affine      ' : '            '} [${row.map((v) => fmt(v)).join(', ')}]`,
    ),
    `  scl          slope ${fmt(r.sclSlope)}, inter ${fmt(r.sclInter)}`,
    `  values       min ${fmt(r.min)}, max ${fmt(r.max)}, mean ${fmt(r.mean)}, NaN ${r.nanCount}`,
  ];
  if (r.labelCounts)
    lines.push(
      `  labels       ${Object.entries(r.labelCounts)
        .map(([v, n]) => `${v}: ${n}`)
        .join(', ')}`,
    );
  io.stdout.write(`${lines.join('\n')}\n`);
}

async function inspect(positionals: string[], flags: Flags, io: CliIo): Promise<number> {
  const report = await inspectNifti(one(positionals, 'FILE'));
  if (flags.json) io.stdout.write(`${JSON.stringify(report)}\n`);
  else printInspect(report, io);
  return 0;
}

async function validate(positionals: string[], flags: Flags, io: CliIo): Promise<number> {
  const dir = one(positionals, 'DIR');
  const report = await validateDataset(dir, {
    onProgress: (done, total, id) => io.stderr.write(`validate: ${done}/${total} (case ${id})\n`),
  });
  if (flags.json) io.stdout.write(`${JSON.stringify(report)}\n`);
  else if (report.ok) io.stdout.write(`${dir}: ${report.caseCount} cases (${report.layout}), all valid\n`);
  else {
    io.stdout.write(`${dir}: ${report.problems.length} problem(s) in ${report.caseCount} cases\n`);
    for (const p of report.problems) io.stdout.write(`${p.file}: ${p.reason}\n`);
  }
  return report.ok ? 0 : 1;
}

async function synth(positionals: string[], flags: Flags, io: CliIo): Promise<number> {
  if (positionals.length > 0)
    throw new UsageError(`synth takes no positional arguments (got ${positionals.join(' ')})`);
  if (!flags.out) throw new UsageError('synth needs --out DIR');
  if (!flags.cases) throw new UsageError('synth needs --cases N');
  const cases = await generatePhantomDataset({
    outDir: flags.out,
    cases: parseInteger('cases', flags.cases, 1),
    size: flags.size ? parseShape('size', flags.size) : undefined,
    seed: flags.seed !== undefined ? parseSeed(flags.seed) : 0,
    onCase: (done, total) => io.stderr.write(`synth: ${done}/${total}\n`),
  });
  if (flags.json) io.stdout.write(`${JSON.stringify({ outDir: resolve(flags.out), cases })}\n`);
  else io.stdout.write(`wrote ${cases.length} phantom case(s) to ${flags.out}\n`);
  return 0;
}

function preprocessConfig(flags: Flags): PreprocessConfigInput {
  const preset = flags.preset ?? 'seed';
  const cubeSize = flags.cube ? parseInteger('cube', flags.cube, 1) : undefined;
  if (preset === 'seed') {
    if (flags.spacing || flags.window)
      throw new UsageError('--spacing and --window belong to --preset improved');
    return {
      preset: 'seed',
      cubeSize,
      targetSlices: flags['target-slices']
        ? parseInteger('target-slices', flags['target-slices'], 1)
        : undefined,
      downscale: flags.downscale ? parseInteger('downscale', flags.downscale, 1) : undefined,
    };
  }
  if (preset === 'improved') {
    if (flags['target-slices'] || flags.downscale)
      throw new UsageError('--target-slices and --downscale belong to --preset seed');
    return {
      preset: 'improved',
      cubeSize,
      targetSpacing: flags.spacing
        ? (parseNumbers('spacing', flags.spacing, 3, /x/i) as [number, number, number])
        : undefined,
      window: flags.window ? (parseNumbers('window', flags.window, 2, /,/) as [number, number]) : undefined,
    };
  }
  throw new UsageError(`--preset must be seed or improved, got '${preset}'`);
}

function progressReporter(io: CliIo): {
  start: (total: number) => void;
  tick: (p: PreprocessProgress) => void;
  stop: () => void;
} {
  if (io.stderr.isTTY) {
    const bar = new cliProgress.SingleBar(
      { format: 'preprocess [{bar}] {value}/{total} cases | case {caseId} {state}', stream: process.stderr },
      cliProgress.Presets.shades_classic,
    );
    return {
      start: (total) => bar.start(total, 0, { caseId: '-', state: '' }),
      tick: (p) => bar.update(p.done, { caseId: p.caseId, state: p.cached ? '(cached)' : '' }),
      stop: () => bar.stop(),
    };
  }
  return {
    start: (total) => io.stderr.write(`preprocess: ${total} cases\n`),
    tick: (p) =>
      io.stderr.write(`preprocess: ${p.done}/${p.total} case ${p.caseId}${p.cached ? ' (cached)' : ''}\n`),
    stop: () => undefined,
  };
}

async function preprocess(positionals: string[], flags: Flags, io: CliIo): Promise<number> {
  const dir = one(positionals, 'DIR');
  if (!flags.cache) throw new UsageError('preprocess needs --cache DIR');
  const config = preprocessConfig(flags);
  const dataset = await discoverDataset(dir);
  for (const p of dataset.problems) io.stderr.write(`warning: ${p.file}: ${p.reason} (skipped)\n`);
  const progress = progressReporter(io);
  try {
    const manifest = await preprocessDataset(dataset.cases, {
      cacheDir: flags.cache,
      config,
      onStart: progress.start,
      onProgress: progress.tick,
    });
    progress.stop();
    const fresh = manifest.entries.filter((e) => !e.cached).length;
    if (flags.json) io.stdout.write(`${JSON.stringify(manifest)}\n`);
    else
      io.stdout.write(
        `${manifest.entries.length} cubes in ${flags.cache} (${fresh} new, ${manifest.entries.length - fresh} cached)\n`,
      );
    return 0;
  } finally {
    progress.stop();
  }
}

const COMMANDS: Record<string, (p: string[], f: Flags, io: CliIo) => Promise<number>> = {
  inspect,
  validate,
  synth,
  preprocess,
};

/** Runs `lits-data …` and returns the exit code: 0 ok, 1 invalid data or failure, 2 bad command line. */
export async function runLitsDataCli(argv: string[], io: CliIo = processIo): Promise<number> {
  let flags: Flags = {};
  try {
    const parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
    flags = parsed.values;
    const [command, ...rest] = parsed.positionals;
    if (flags.help || command === 'help') {
      io.stdout.write(`${USAGE}\n`);
      return 0;
    }
    if (!command) throw new UsageError('missing command');
    const run = COMMANDS[command];
    if (!run) throw new UsageError(`unknown command '${command}'`);
    return await run(rest, flags, io);
  } catch (error) {
    const usage =
      error instanceof UsageError || (error as NodeJS.ErrnoException).code?.startsWith('ERR_PARSE_ARGS');
    const message = error instanceof Error ? error.message : String(error);
    io.stderr.write(`lits-data: ${message.split('\n')[0]}\n`);
    if (flags.verbose && error instanceof Error && error.stack) io.stderr.write(`${error.stack}\n`);
    if (flags.json)
      io.stdout.write(
        `${JSON.stringify({ ok: false, error: message, file: error instanceof LitsDataError ? error.file : null })}\n`,
      );
    if (usage) {
      io.stderr.write(`${USAGE}\n`);
      return 2;
    }
    return 1;
  }
}
