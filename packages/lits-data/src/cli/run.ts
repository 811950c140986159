import { parseArgs } from 'node:util';
import { resolve } from 'node:path';
import { errorMessage } from '@lits-ddp/errors';
import { LitsDataError, UsageError } from '../errors.js';
import { validateDataset } from '../dataset/validate.js';
import { generatePhantomDataset } from '../phantom/phantom.js';
import { inspectNifti, type InspectReport } from './inspect.js';
import { parseInteger, parseSeed, parseShape, processIo, type CliIo } from './io.js';
import { joinNegativeValues, labelMapOf, OPTIONS, preprocessConfigOf, type Flags } from './options.js';
import { preprocess } from './preprocess.js';

const USAGE = `usage: lits-data <command> [options]

  inspect FILE [--json]                       header, geometry and value statistics of a NIfTI file
  validate DIR [PREPROCESSING] [LABELS] [--json]
                                              check a LiTS or MSD Task03 folder (exit 1 when invalid)
  synth --out DIR --cases N [--size 64x64x32] [--seed S] [--json]
                                              write a LiTS-format phantom data set
  preprocess DIR --cache DIR [PREPROCESSING] [LABELS] [--skip-invalid] [--json]
                                              validate, then preprocess every case into the cube cache;
                                              refuses the set when a case is invalid, unless --skip-invalid

  PREPROCESSING  [--preset seed|improved] [--cube 128] [--target-slices 512] [--downscale 2]
                 [--spacing 1.5x1.5x1.5] [--window -200,250]   (validate: sets the smallest usable volume)
  LABELS         --label-map 5:1,6:2,*:0 (value:class, * = every other value) or --labels liver=5,tumour=6
                 (class=value, every other value background); default: masks hold 0, 1, 2 only

  --verbose prints stack traces of errors; --help prints this.`;

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
    labelMap: labelMapOf(flags),
    preprocessing: preprocessConfigOf(flags),
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
    const parsed = parseArgs({
      args: joinNegativeValues(argv),
      options: OPTIONS,
      allowPositionals: true,
      strict: true,
    });
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
    const message = errorMessage(error);
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
