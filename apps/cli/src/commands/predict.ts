import { stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { parseArgs } from 'node:util';
import { errorMessage } from '@lits-ddp/errors';
import {
  checkOutputFile,
  checkOutputFolder,
  loadPredictor,
  maskExtensionProblem,
  predictFolder,
  predictVolume,
  type PredictFolderResult,
  type Predictor,
  type PredictProgress,
  type PredictVolumeResult,
} from '@lits-ddp/inference';
import type { PreprocessConfigInput } from '@lits-ddp/lits-data';
import { parseEngineRequest } from '@lits-ddp/unet';
import { UsageError } from '../errors.js';

const USAGE = `lits predict --model DIR INPUT --out PATH [options]

Segments CT volumes with a trained model: the training preprocessing without the liver crop and over every
slice (the seed preset's forced slice count never crops a longer CT), sliding windows with Gaussian blending
over the whole volume to locate the liver, the liver-centred training cube predicted again there (as the model
was trained; grown along z with overlapping windows where the liver has more slices than the cube), then the
mask on the CT's own voxel grid as a uint8 NIfTI (0 background, 1 liver, 2 tumour) with the CT's geometry.

  --model DIR               a run folder (<home>/runs/<id>: checkpoints/best, else final, else last) or a
                            checkpoint folder; the preprocessing comes from the checkpoint (extra.preprocessing),
                            else the run's spec.json
  INPUT                     a CT volume (.nii, .nii.gz), or a folder of them (batch mode)
  --out PATH                the mask (.nii.gz or .nii; any other name is refused); in batch mode a folder
                            (volume-N → segmentation-N)
  --overlay PNG             a PNG of 4 axial slices with the prediction (batch mode: a folder)
  --largest-component       keep only the largest connected piece of liver (with its tumours)
  --no-liver-crop           keep the whole-volume sliding-window labels; by default they only locate the liver,
                            and the liver-centred training cube around it is predicted again, as in training
  --nan-fill                replace NaN/±Inf voxels by the volume minimum, with a warning naming their count;
                            without it a CT holding any is refused (exit 1, or a failed case in batch mode),
                            since they would silently turn the mask empty
  --overlap F               window overlap in [0, 1) (default 0.5)
  --window N                window edge on the preprocessed grid (default: the training cube size)
  --batch N                 windows per forward pass (default 1)
  --engine auto|gpu|node|cpu  TensorFlow.js engine (default: TFJS_ENGINE, then auto)
  --preprocessing seed|improved [--preprocess-slices N] [--preprocess-downscale N] [--cube-size N]
                            use this preprocessing instead of the run's (missing values: lits-data defaults)
  --json                    the last stdout line is one JSON object
  --quiet                   no progress on stderr`;

function numberFlag(name: string, value: string | undefined, check: (n: number) => boolean, what: string) {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !check(n)) throw new UsageError(`--${name} must be ${what}, got "${value}"`);
  return n;
}
const positiveInteger = (n: number) => Number.isSafeInteger(n) && n > 0;

function preprocessingOverride(
  values: Record<string, string | boolean | undefined>,
): PreprocessConfigInput | undefined {
  const preset = values.preprocessing as string | undefined;
  const slices = numberFlag(
    'preprocess-slices',
    values['preprocess-slices'] as string | undefined,
    positiveInteger,
    'a positive integer',
  );
  const downscale = numberFlag(
    'preprocess-downscale',
    values['preprocess-downscale'] as string | undefined,
    positiveInteger,
    'a positive integer',
  );
  const cubeSize = numberFlag(
    'cube-size',
    values['cube-size'] as string | undefined,
    (n) => positiveInteger(n) && n % 4 === 0,
    'a positive multiple of 4',
  );
  if (preset === undefined) {
    if (slices !== undefined || downscale !== undefined || cubeSize !== undefined)
      throw new UsageError(
        '--preprocess-slices, --preprocess-downscale and --cube-size need --preprocessing seed|improved',
      );
    return undefined;
  }
  if (preset === 'improved') return { preset, ...(cubeSize === undefined ? {} : { cubeSize }) };
  if (preset !== 'seed') throw new UsageError(`--preprocessing must be seed or improved, got "${preset}"`);
  return {
    preset,
    ...(slices === undefined ? {} : { targetSlices: slices }),
    ...(downscale === undefined ? {} : { downscale }),
    ...(cubeSize === undefined ? {} : { cubeSize }),
  };
}

function progressLine(quiet: boolean): (p: PredictProgress) => void {
  let lastTenth = -1;
  return (p) => {
    if (quiet) return;
    if (p.phase === 'windows') {
      const tenth = Math.floor((10 * p.done!) / p.total!);
      if (tenth === lastTenth) return;
      lastTenth = tenth;
      process.stderr.write(`  windows ${p.done}/${p.total}\n`);
      return;
    }
    if (p.phase === 'read') lastTenth = -1;
    process.stderr.write(`  ${p.phase} ${basename(p.input)}\n`);
  };
}

function summary(r: PredictVolumeResult): string {
  const seconds = Object.values(r.timingsMs).reduce((a, b) => a + b, 0) / 1000;
  const crop = r.liverCrop
    ? ` + ${r.liverCrop.windows} liver-crop window${r.liverCrop.windows === 1 ? '' : 's'} in ${r.liverCrop.rounds} round${r.liverCrop.rounds === 1 ? '' : 's'}`
    : '';
  return `${r.input} → ${r.output}: liver ${r.voxels.liver} voxels, tumour ${r.voxels.tumour} (${r.windows} windows${crop}, ${seconds.toFixed(1)} s)${r.overlay ? `, overlay ${r.overlay}` : ''}${r.nonFinite ? `; ${r.nonFinite.voxels} NaN/±Inf voxels filled` : ''}`;
}

function parsePredictArgs(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      model: { type: 'string' },
      out: { type: 'string' },
      overlay: { type: 'string' },
      'largest-component': { type: 'boolean', default: false },
      'no-liver-crop': { type: 'boolean', default: false },
      'nan-fill': { type: 'boolean', default: false },
      overlap: { type: 'string' },
      window: { type: 'string' },
      batch: { type: 'string' },
      engine: { type: 'string' },
      preprocessing: { type: 'string' },
      'preprocess-slices': { type: 'string' },
      'preprocess-downscale': { type: 'string' },
      'cube-size': { type: 'string' },
      json: { type: 'boolean', default: false },
      quiet: { type: 'boolean', default: false },
      verbose: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
}

type PredictArgs = ReturnType<typeof parsePredictArgs>;

/** A checked command line: what to segment, with which model, where the masks go, and the numeric options. */
interface PredictRequest {
  model: string;
  input: string;
  isFolder: boolean;
  out: string;
  overlap: number | undefined;
  window: number | undefined;
  batchSize: number | undefined;
  preprocessing: PreprocessConfigInput | undefined;
}

/** Checks the command line without touching the model; a `UsageError` says what is wrong. */
async function requestOf({ values, positionals }: PredictArgs): Promise<PredictRequest> {
  if (!values.model) throw new UsageError('--model DIR is required');
  if (!values.out) throw new UsageError('--out PATH is required');
  if (positionals.length !== 1)
    throw new UsageError(`give exactly one INPUT (a volume or a folder), got ${positionals.length}`);
  if (values.engine !== undefined) {
    try {
      parseEngineRequest(values.engine, '--engine');
    } catch (error) {
      throw new UsageError(errorMessage(error), { cause: error });
    }
  }
  const input = positionals[0]!;
  // An input that cannot be stat'ed is taken as one volume: reading it later names the file and the errno.
  const isFolder = (await stat(input).catch(() => null))?.isDirectory() ?? false;
  const badName = isFolder ? null : maskExtensionProblem(values.out);
  if (badName) throw new UsageError(`--out ${values.out}: ${badName}`);
  return {
    model: values.model,
    input,
    isFolder,
    out: values.out,
    overlap: numberFlag('overlap', values.overlap, (n) => n >= 0 && n < 1, 'a number in [0, 1)'),
    window: numberFlag(
      'window',
      values.window,
      (n) => positiveInteger(n) && n % 4 === 0,
      'a positive multiple of 4',
    ),
    batchSize: numberFlag('batch', values.batch, positiveInteger, 'a positive integer'),
    preprocessing: preprocessingOverride(values),
  };
}

/** Before the model loads: a mask (or overlay) that cannot be written should fail at once, naming the path. */
async function checkOutputs(request: PredictRequest, overlay: string | undefined): Promise<void> {
  if (request.isFolder) {
    await checkOutputFolder(request.out, 'the masks');
    if (overlay) await checkOutputFolder(overlay, 'the overlays');
  } else {
    await checkOutputFile(request.out, 'the mask', { nifti: true });
    if (overlay) await checkOutputFile(overlay, 'the overlay');
  }
}

/** Segments the one volume, or every volume of the folder (a failing case is recorded and the others go on). */
async function predictAll(
  predictor: Predictor,
  request: PredictRequest,
  values: PredictArgs['values'],
): Promise<PredictFolderResult> {
  const common = {
    model: predictor,
    largestComponent: values['largest-component'],
    liverCrop: !values['no-liver-crop'],
    nanFill: values['nan-fill'],
    // Even with --quiet: the mask was made from changed voxels.
    onWarning: (message: string) => process.stderr.write(`warning: ${message}\n`),
    ...(request.overlap === undefined ? {} : { overlap: request.overlap }),
    ...(request.window === undefined ? {} : { window: request.window }),
    ...(request.batchSize === undefined ? {} : { batchSize: request.batchSize }),
    onProgress: progressLine(values.quiet),
  };
  if (request.isFolder)
    return predictFolder({
      ...common,
      inputDir: request.input,
      outputDir: request.out,
      ...(values.overlay ? { overlayDir: values.overlay } : {}),
      onCase: (i, n, input) => {
        if (!values.quiet) process.stderr.write(`[${i + 1}/${n}] ${input}\n`);
      },
    });
  const result = await predictVolume({
    ...common,
    input: request.input,
    output: request.out,
    ...(values.overlay ? { overlay: values.overlay } : {}),
  });
  return { results: [result], failures: [] };
}

/** The outcome: one JSON line (model, cases, failures) with --json, else one summary line per case. */
function printOutcome(predictor: Predictor, outcome: PredictFolderResult, json: boolean): void {
  const { results, failures } = outcome;
  if (json) {
    process.stdout.write(
      `${JSON.stringify({
        model: {
          checkpointDir: predictor.checkpointDir,
          runDir: predictor.runDir,
          preprocessing: predictor.preprocessing,
          preprocessingFrom: predictor.preprocessingFrom,
          engine: predictor.engine,
        },
        cases: results,
        failures,
      })}\n`,
    );
    return;
  }
  for (const r of results) process.stdout.write(`${summary(r)}\n`);
}

export async function runPredict(argv: string[]): Promise<number> {
  let args: PredictArgs;
  try {
    args = parsePredictArgs(argv);
  } catch (error) {
    process.stderr.write(`lits predict: ${errorMessage(error)}\n\n${USAGE}\n`);
    return 2;
  }
  const { values } = args;
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  let request: PredictRequest;
  try {
    request = await requestOf(args);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`lits predict: ${error.message}\n\n${USAGE}\n`);
    return 2;
  }
  try {
    await checkOutputs(request, values.overlay);
    const predictor = await loadPredictor({
      model: request.model,
      ...(values.engine ? { engine: values.engine } : {}),
      ...(request.preprocessing ? { preprocessing: request.preprocessing } : {}),
    });
    if (!values.quiet)
      process.stderr.write(
        `model ${predictor.checkpointDir} (${predictor.engine}); preprocessing ${JSON.stringify(predictor.preprocessing)} from ${predictor.preprocessingFrom}\n`,
      );
    if (predictor.engineFallback) process.stderr.write(`warning: ${predictor.engineFallback}\n`);
    const outcome = await predictAll(predictor, request, values);
    for (const f of outcome.failures) process.stderr.write(`lits predict: ${f.error}\n`);
    printOutcome(predictor, outcome, values.json);
    return outcome.failures.length > 0 ? 1 : 0;
  } catch (error) {
    process.stderr.write(
      `lits predict: ${values.verbose && error instanceof Error ? error.stack : errorMessage(error)}\n`,
    );
    return 1;
  }
}
