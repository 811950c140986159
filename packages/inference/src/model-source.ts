// Finds the checkpoint and the training preprocessing behind `--model`, then loads the model on an engine.
import { existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import Type, { type TSchema, type Static } from 'typebox';
import { errorMessage } from '@lits-ddp/errors';
import {
  resolvePreprocessConfig,
  type PreprocessConfig,
  type PreprocessConfigInput,
} from '@lits-ddp/lits-data';
import { checkJson, JsonDecodeError } from '@lits-ddp/protocol';
import { loadCheckpoint, loadEngine, MANIFEST_FILE, type UNet3D } from '@lits-ddp/unet';
import { ModelSourceError } from './errors.js';

/** Checkpoints a run folder may hold, in the order `--model RUN_DIR` picks them. */
export const CHECKPOINT_PREFERENCE = ['best', 'final', 'last'] as const;

export interface ModelSource {
  checkpointDir: string;
  /** The run folder (`<home>/runs/<id>`) when the checkpoint sits in one. */
  runDir: string | null;
  preprocessing: PreprocessConfig;
  /** Where the preprocessing came from: a spec.json path, `checkpoint.json extra.preprocessing`, or `option`. */
  preprocessingFrom: string;
}

const hasManifest = (dir: string) => existsSync(join(dir, MANIFEST_FILE));

function field(
  file: string,
  spec: Record<string, unknown>,
  name: string,
  check: (v: unknown) => boolean,
  what: string,
) {
  const value = spec[name];
  if (!check(value))
    throw new ModelSourceError(
      file,
      `field "${name}" must be ${what}, got ${JSON.stringify(value) ?? 'nothing'}`,
    );
  return value;
}

const positiveInteger = (v: unknown) => typeof v === 'number' && Number.isSafeInteger(v) && v > 0;

/** Of checkpoint.json, only `extra` is read here (loadCheckpoint checks the rest): any JSON, `null` by default. */
const CheckpointManifestJson = Type.Object({ extra: Type.Optional(Type.Unknown()) });

/** `extra.preprocessing` as the trainer writes it: a lits-data config (input), picked by its `preset`. */
const PresetJson = Type.Object({
  preset: Type.Optional(Type.Enum(['seed', 'improved'])),
});
const SeedPreprocessingJson = Type.Object({
  preset: Type.Optional(Type.Literal('seed')),
  targetSlices: Type.Optional(Type.Number()),
  downscale: Type.Optional(Type.Number()),
  cubeSize: Type.Optional(Type.Number()),
});
const ImprovedPreprocessingJson = Type.Object({
  preset: Type.Literal('improved'),
  targetSpacing: Type.Optional(Type.Tuple([Type.Number(), Type.Number(), Type.Number()])),
  window: Type.Optional(Type.Tuple([Type.Number(), Type.Number()])),
  cubeSize: Type.Optional(Type.Number()),
});

/** `value` checked against `schema`; a ModelSourceError naming `file` and the first bad field otherwise. */
function checkIn<T extends TSchema>(schema: T, value: unknown, file: string, at: string): Static<T> {
  try {
    return checkJson(schema, value, file);
  } catch (error) {
    if (!(error instanceof JsonDecodeError)) throw error;
    throw new ModelSourceError(file, `${at}${error.problem}`, { cause: error });
  }
}

/** The preprocessing config in checkpoint.json's `extra.preprocessing`, checked field by field. */
function preprocessingInput(file: string, value: unknown): PreprocessConfigInput {
  const at = 'extra.preprocessing: ';
  const { preset } = checkIn(PresetJson, value, file, at);
  return preset === 'improved'
    ? checkIn(ImprovedPreprocessingJson, value, file, at)
    : checkIn(SeedPreprocessingJson, value, file, at);
}

/** The preprocessing a run trained with, from its spec.json (as the coordinator maps the spec to lits-data). */
export function preprocessingFromSpec(file: string, spec: unknown): PreprocessConfig {
  if (typeof spec !== 'object' || spec === null || Array.isArray(spec))
    throw new ModelSourceError(file, 'is not a JSON object');
  const s = spec as Record<string, unknown>;
  const preset = field(
    file,
    s,
    'preprocessing',
    (v) => v === 'seed' || v === 'improved',
    '"seed" or "improved"',
  );
  const cubeSize = field(
    file,
    s,
    'cube-size',
    (v) => positiveInteger(v) && (v as number) % 4 === 0,
    'a positive multiple of 4',
  ) as number;
  try {
    if (preset === 'improved') return resolvePreprocessConfig({ preset: 'improved', cubeSize });
    return resolvePreprocessConfig({
      preset: 'seed',
      targetSlices: field(file, s, 'preprocess-slices', positiveInteger, 'a positive integer') as number,
      downscale: field(file, s, 'preprocess-downscale', positiveInteger, 'a positive integer') as number,
      cubeSize,
    });
  } catch (error) {
    if (error instanceof ModelSourceError) throw error;
    throw new ModelSourceError(file, errorMessage(error), { cause: error });
  }
}

async function readJson(file: string): Promise<unknown> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as unknown;
  } catch (error) {
    throw new ModelSourceError(file, `cannot read JSON: ${errorMessage(error)}`, { cause: error });
  }
}

/**
 * `path` is a run folder (`<home>/runs/<id>`: its `checkpoints/best`, else `final`, else `last`) or a checkpoint
 * folder (holding `checkpoint.json`; its run folder is `../..`). The preprocessing is, in this order: `override`;
 * `extra.preprocessing` in checkpoint.json (a lits-data config object); the run's `spec.json`.
 */
export async function resolveModelSource(
  path: string,
  override?: PreprocessConfigInput,
): Promise<ModelSource> {
  const dir = resolve(path);
  const info = await stat(dir).catch((error: unknown) => {
    throw new ModelSourceError(path, 'not found', { cause: error });
  });
  if (!info.isDirectory())
    throw new ModelSourceError(
      path,
      'is a file; give a run folder (<home>/runs/<id>) or a checkpoint folder',
    );
  let checkpointDir: string;
  let runDir: string | null;
  if (hasManifest(dir)) {
    checkpointDir = dir;
    const candidate = dirname(dirname(dir));
    runDir = existsSync(join(candidate, 'spec.json')) ? candidate : null;
  } else {
    const found = CHECKPOINT_PREFERENCE.map((name) => join(dir, 'checkpoints', name)).find(hasManifest);
    if (!found)
      throw new ModelSourceError(
        path,
        `no ${MANIFEST_FILE} here and no checkpoints/{${CHECKPOINT_PREFERENCE.join(',')}}/${MANIFEST_FILE}; give a run folder or a checkpoint folder`,
      );
    checkpointDir = found;
    runDir = dir;
  }
  if (override)
    return {
      checkpointDir,
      runDir,
      preprocessing: resolvePreprocessConfig(override),
      preprocessingFrom: 'option',
    };
  const manifestFile = join(checkpointDir, MANIFEST_FILE);
  const manifest = checkIn(CheckpointManifestJson, await readJson(manifestFile), manifestFile, '');
  const extra = manifest.extra;
  const fromExtra =
    typeof extra === 'object' && extra !== null && !Array.isArray(extra)
      ? (extra as Record<string, unknown>).preprocessing
      : undefined;
  if (fromExtra !== undefined) {
    const input = preprocessingInput(manifestFile, fromExtra);
    try {
      return {
        checkpointDir,
        runDir,
        preprocessing: resolvePreprocessConfig(input),
        preprocessingFrom: `${manifestFile} extra.preprocessing`,
      };
    } catch (error) {
      throw new ModelSourceError(manifestFile, `extra.preprocessing: ${errorMessage(error)}`, {
        cause: error,
      });
    }
  }
  if (!runDir)
    throw new ModelSourceError(
      path,
      `the preprocessing used in training is unknown: no spec.json two folders up and no extra.preprocessing in ${MANIFEST_FILE}; pass it explicitly (--preprocessing seed --preprocess-slices N --preprocess-downscale N --cube-size N)`,
    );
  const specFile = join(runDir, 'spec.json');
  return {
    checkpointDir,
    runDir,
    preprocessing: preprocessingFromSpec(specFile, await readJson(specFile)),
    preprocessingFrom: specFile,
  };
}

/** A loaded model with everything prediction needs; load once, predict many volumes. */
export interface Predictor extends ModelSource {
  model: UNet3D;
  /** Default window edge: the training cube size. */
  window: number;
  classes: number;
  /** e.g. `engine cpu (@tensorflow/tfjs 4.22.0, backend cpu)`. */
  engine: string;
  /** Why `auto` did not get a native engine (Engine.fallback), or null. */
  engineFallback: string | null;
}

export interface LoadPredictorOptions {
  /** Run folder or checkpoint folder. */
  model: string;
  /** TFJS_ENGINE-style request (default: TFJS_ENGINE, then auto). */
  engine?: string;
  preprocessing?: PreprocessConfigInput;
}

export async function loadPredictor(options: LoadPredictorOptions): Promise<Predictor> {
  const source = await resolveModelSource(options.model, options.preprocessing);
  const engine = await loadEngine(options.engine === undefined ? {} : { engine: options.engine });
  const { model } = await loadCheckpoint(engine.tf, source.checkpointDir);
  const arch = model.layout.architecture;
  if (arch.inChannels !== 1)
    throw new ModelSourceError(
      source.checkpointDir,
      `the model takes ${arch.inChannels} input channels; CT prediction needs 1`,
    );
  return {
    ...source,
    model,
    window: source.preprocessing.cubeSize,
    classes: arch.classes,
    engine: engine.description,
    engineFallback: engine.fallback,
  };
}
