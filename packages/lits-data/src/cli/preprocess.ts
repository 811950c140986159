import type { DatasetProblem } from '../dataset/discover.js';
import { validateDataset } from '../dataset/validate.js';
import { ensureCacheDir, preprocessDataset } from '../cache/cube-cache.js';
import { labelMapOf, preprocessConfigOf, type Flags } from './options.js';
import { progressReporter } from './progress.js';
import { UsageError } from '../errors.js';
import type { CliIo } from './io.js';

function plural(n: number, what: string): string {
  return `${n} ${what}${n === 1 ? '' : 's'}`;
}

function refuse(
  dir: string,
  problems: DatasetProblem[],
  validCount: number,
  flags: Flags,
  io: CliIo,
): number {
  const hint =
    validCount === 0
      ? 'no valid case left; nothing preprocessed'
      : `nothing preprocessed; fix them, or --skip-invalid preprocesses the ${plural(validCount, 'valid case')}`;
  const error = `${dir}: ${plural(problems.length, 'problem')} (${hint})`;
  io.stderr.write(`lits-data: ${error}\n`);
  for (const p of problems) io.stderr.write(`${p.file}: ${p.reason}\n`);
  if (flags.json) io.stdout.write(`${JSON.stringify({ ok: false, error, file: dir, problems })}\n`);
  return 1;
}

/**
 * `lits-data preprocess DIR --cache C`: validates with the rules `validate` and `lits train` use, refuses the whole set
 * when a case is invalid (or, with --skip-invalid, names each case it leaves out), then fills the cube cache.
 */
export async function preprocess(positionals: string[], flags: Flags, io: CliIo): Promise<number> {
  if (positionals.length !== 1) throw new UsageError(`expected exactly one DIR, got ${positionals.length}`);
  const dir = positionals[0]!;
  if (!flags.cache) throw new UsageError('preprocess needs --cache DIR');
  const config = preprocessConfigOf(flags);
  const labelMap = labelMapOf(flags);
  await ensureCacheDir(flags.cache);
  const checking = progressReporter(io, 'validate');
  let report;
  try {
    report = await validateDataset(dir, {
      labelMap,
      preprocessing: config,
      onProgress: (done, total, caseId) => {
        if (done === 1) checking.start(total);
        checking.tick(done, total, caseId);
      },
    });
  } finally {
    checking.stop();
  }
  const valid = report.validCaseFiles;
  if (!report.ok && (!flags['skip-invalid'] || valid.length === 0))
    return refuse(dir, report.problems, valid.length, flags, io);
  for (const p of report.problems)
    io.stderr.write(`warning: ${p.file}: ${p.reason} (case ${p.caseId ?? '?'} skipped)\n`);
  const progress = progressReporter(io, 'preprocess');
  try {
    const manifest = await preprocessDataset(valid, {
      cacheDir: flags.cache,
      config,
      labelMap,
      onStart: progress.start,
      onProgress: (p) => progress.tick(p.done, p.total, p.caseId, p.cached ? '(cached)' : undefined),
    });
    progress.stop();
    const fresh = manifest.entries.filter((e) => !e.cached).length;
    const skipped = report.caseCount - valid.length;
    if (flags.json) io.stdout.write(`${JSON.stringify({ ...manifest, problems: report.problems })}\n`);
    else
      io.stdout.write(
        `${manifest.entries.length} cubes in ${flags.cache} (${fresh} new, ${manifest.entries.length - fresh} cached)` +
          `${report.ok ? '' : `; ${plural(report.problems.length, 'problem')} (listed above), ${plural(skipped, 'case')} skipped`}\n`,
      );
    return 0;
  } finally {
    progress.stop();
  }
}
