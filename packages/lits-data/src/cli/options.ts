import { parseArgs } from 'node:util';
import { LitsDataError, UsageError } from '../errors.js';
import { parseLabelMap, type LabelMap } from '../dataset/label-map.js';
import type { PreprocessConfigInput } from '../preprocess/config.js';
import { parseInteger, parseNumbers } from './io.js';

export const OPTIONS = {
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
  'label-map': { type: 'string' },
  labels: { type: 'string' },
  'skip-invalid': { type: 'boolean' },
} as const;

export type Flags = ReturnType<
  typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>
>['values'];

const NEGATIVE_VALUE = /^-(\d|\.\d)/;

/**
 * parseArgs reads `--cube -16` as two options and fails with "argument is ambiguous", so `--window -200,250` (our own
 * documented example) and a negative size never reach the check that names the option. A value that starts with a
 * minus and a digit is joined to its option (`--cube=-16`) first.
 */
export function joinNegativeValues(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') return [...out, ...argv.slice(i)];
    const name = arg.startsWith('--') && !arg.includes('=') ? arg.slice(2) : null;
    const option = name !== null ? (OPTIONS as Record<string, { type: string }>)[name] : undefined;
    const next = argv[i + 1];
    if (option?.type === 'string' && next !== undefined && NEGATIVE_VALUE.test(next)) {
      out.push(`${arg}=${next}`);
      i++;
    } else out.push(arg);
  }
  return out;
}

/** The preprocessing the flags describe (validate uses it for the smallest usable volume). */
export function preprocessConfigOf(flags: Flags): PreprocessConfigInput {
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

/** `--label-map 5:1,*:0` (either form) or `--labels liver=5,tumour=6` (class=value only); null for neither. */
export function labelMapOf(flags: Flags): LabelMap | null {
  const text = flags['label-map'];
  const named = flags.labels;
  if (text !== undefined && named !== undefined)
    throw new UsageError('give --label-map or --labels, not both');
  if (named !== undefined && /:/.test(named))
    throw new UsageError(
      `--labels takes class=value pairs such as liver=5,tumour=6, got '${named}' (value:class pairs go to --label-map)`,
    );
  const source = named !== undefined ? '--labels' : '--label-map';
  const given = named ?? text;
  if (given === undefined) return null;
  try {
    return parseLabelMap(given, source);
  } catch (error) {
    if (error instanceof LitsDataError) throw new UsageError(error.message);
    throw error;
  }
}
