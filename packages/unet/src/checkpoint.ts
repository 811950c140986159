// Versioned checkpoints: `checkpoint.json` (manifest) + `checkpoint-<sha>.bin` (float32 sections), written
// atomically: the blob first under its content hash, then the manifest by rename. A crash at any point leaves
// the previous checkpoint readable. Version 2 added `rng` (the random-stream identity) and later the optional
// `engine` (absent: unknown); version 1 is still read.
import { createHash } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { errorMessage } from '@lits-ddp/errors';
import { checkJson, JsonDecodeError } from '@lits-ddp/protocol';
import Type from 'typebox';
import { unetLayout, validateArchitecture, type UNetArchitecture } from './architecture.js';
import { validateAdamConfig, type AdamConfig } from './adam.js';
import { validateCheckpointRng, type CheckpointRng } from './checkpoint-rng.js';
import { parseEngineIdentity, type EngineIdentity, type Tfjs } from './engine.js';
import { CheckpointError } from './errors.js';
import { validateLoss, type LossConfig } from './loss.js';
import { UNet3D, type UNetConfig } from './model.js';
import { ReduceLROnPlateau, validatePlateauState, type PlateauState } from './plateau.js';

export const CHECKPOINT_FORMAT = 'lits-unet-checkpoint';
export const CHECKPOINT_VERSION = 2;
/** Versions loadCheckpoint reads: 1 had no `rng` (it loads with `rng: null`). */
export const READABLE_CHECKPOINT_VERSIONS: readonly number[] = [1, 2];
export const MANIFEST_FILE = 'checkpoint.json';

const SECTIONS = ['weights', 'runningStats', 'adamM', 'adamV'] as const;
type SectionName = (typeof SECTIONS)[number];

export interface CheckpointManifest {
  readonly format: typeof CHECKPOINT_FORMAT;
  readonly version: number;
  readonly createdAt: string;
  readonly config: UNetConfig;
  readonly epoch: number;
  readonly step: number;
  readonly bnBatchesTracked: number;
  readonly adamStep: number;
  readonly scheduler: PlateauState | null;
  /**
   * What keys the next step's random draws (dropout seed, data seed, next epoch and step). Null: saved without it
   * (an inference checkpoint, or version 1), so it cannot resume a run deterministically on its own.
   */
  readonly rng: CheckpointRng | null;
  /**
   * The engine that trained it (engine, versions, native thread pools): a deterministic resume on another
   * identity would not continue the same bits. Null or absent: not recorded (inference checkpoints, older files).
   */
  readonly engine?: EngineIdentity | null;
  /** Opaque JSON for the trainer (run info, best loss, …). */
  readonly extra: unknown;
  /** UNet3D.weightHash() of the saved model, re-checked on load. */
  readonly weightHash: string;
  readonly blob: { readonly file: string; readonly bytes: number; readonly sha256: string };
  /** Float32 little-endian sections of the blob, in this order. */
  readonly sections: readonly {
    readonly name: SectionName;
    readonly offset: number;
    readonly length: number;
  }[];
  /** For readers in other languages: name, tfjs shape and offset (in floats) of every parameter. */
  readonly parameters: readonly {
    readonly name: string;
    readonly shape: readonly number[];
    readonly offset: number;
  }[];
}

export interface CheckpointContents {
  readonly model: UNet3D;
  readonly scheduler?: ReduceLROnPlateau | null;
  readonly epoch: number;
  readonly step: number;
  /** Required to resume a training run deterministically; omit it only for inference checkpoints. */
  readonly rng?: CheckpointRng | null;
  /** The engine that trained the model (engineIdentity(engine)); recorded so a resume can check it. */
  readonly engine?: EngineIdentity | null;
  readonly extra?: unknown;
}

export interface LoadedCheckpoint {
  readonly model: UNet3D;
  readonly scheduler: ReduceLROnPlateau | null;
  readonly epoch: number;
  readonly step: number;
  readonly rng: CheckpointRng | null;
  readonly engine: EngineIdentity | null;
  readonly extra: unknown;
  readonly manifest: CheckpointManifest;
}

let tmpCounter = 0;

async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}-${Date.now()}-${tmpCounter++}`;
  const handle = await open(tmp, 'w');
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(tmp, path);
}

async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');

function bytesOf(a: Float32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** Writes the checkpoint into `dir` (created if needed); returns the manifest path. */
export async function saveCheckpoint(dir: string, contents: CheckpointContents): Promise<string> {
  const { model, epoch, step } = contents;
  for (const [name, v] of [
    ['epoch', epoch],
    ['step', step],
  ] as const)
    if (!Number.isSafeInteger(v) || v < 0)
      throw new RangeError(`checkpoint ${name} must be a non-negative integer`);
  const rng = contents.rng ? validateCheckpointRng(contents.rng, 'checkpoint rng') : null;
  const engine = contents.engine ? parseEngineIdentity(contents.engine, 'checkpoint engine') : null;
  let extra: unknown = null;
  if (contents.extra !== undefined) {
    try {
      extra = JSON.parse(JSON.stringify(contents.extra)) as unknown;
    } catch (err) {
      throw new TypeError(`checkpoint extra must be JSON-serialisable: ${errorMessage(err)}`, {
        cause: err,
      });
    }
  }
  const state = model.state();
  const arrays: Record<SectionName, Float32Array> = {
    weights: state.weights,
    runningStats: state.runningStats,
    adamM: state.adamM,
    adamV: state.adamV,
  };
  const sections: { name: SectionName; offset: number; length: number }[] = [];
  let offset = 0;
  for (const name of SECTIONS) {
    sections.push({ name, offset, length: arrays[name].length });
    offset += arrays[name].byteLength;
  }
  const blob = new Uint8Array(offset);
  for (const s of sections) blob.set(bytesOf(arrays[s.name]), s.offset);
  const digest = sha256(blob);
  const blobFile = `checkpoint-${digest.slice(0, 16)}.bin`;

  await mkdir(dir, { recursive: true });
  await writeFileAtomic(join(dir, blobFile), blob);
  const manifest: CheckpointManifest = {
    format: CHECKPOINT_FORMAT,
    version: CHECKPOINT_VERSION,
    createdAt: new Date().toISOString(),
    config: state.config,
    epoch,
    step,
    bnBatchesTracked: state.bnBatchesTracked,
    adamStep: state.adamStep,
    scheduler: contents.scheduler ? contents.scheduler.state() : null,
    rng,
    engine,
    extra,
    weightHash: model.weightHash(),
    blob: { file: blobFile, bytes: blob.byteLength, sha256: digest },
    sections,
    parameters: model.layout.parameters.map((p) => ({ name: p.name, shape: p.shape, offset: p.offset })),
  };
  const manifestPath = join(dir, MANIFEST_FILE);
  await writeFileAtomic(manifestPath, `${JSON.stringify(manifest, null, 2)}\n`);
  await syncDir(dir);
  // Older blobs are unreferenced once the new manifest is in place.
  for (const name of await readdir(dir))
    if (/^checkpoint-[0-9a-f]{16}\.bin$/.test(name) && name !== blobFile)
      await rm(join(dir, name), { force: true });
  return manifestPath;
}

function field<T>(
  path: string,
  obj: Record<string, unknown>,
  key: string,
  ok: (v: unknown) => boolean,
  what: string,
) {
  if (!ok(obj[key])) throw new CheckpointError(path, `field '${key}' must be ${what}`);
  return obj[key] as T;
}

// The manifest fields the hand checks below leave open, by schema (every version wrote them); a bad one is named by
// its JSON path (`field /sections/1/offset must be …`).
const ManifestLayoutSchema = Type.Object({
  createdAt: Type.String(),
  sections: Type.Array(
    Type.Object({
      name: Type.String(),
      offset: Type.Integer({ minimum: 0 }),
      length: Type.Integer({ minimum: 0 }),
    }),
  ),
  parameters: Type.Array(
    Type.Object({
      name: Type.String(),
      shape: Type.Array(Type.Integer({ minimum: 1 })),
      offset: Type.Integer({ minimum: 0 }),
    }),
  ),
});

const isCount = (v: unknown) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

function parseManifest(path: string, text: string): CheckpointManifest {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new CheckpointError(path, `not valid JSON (${errorMessage(err)})`, { cause: err });
  }
  if (typeof raw !== 'object' || raw === null)
    throw new CheckpointError(path, 'manifest must be a JSON object');
  const m = raw as Record<string, unknown>;
  if (m['format'] !== CHECKPOINT_FORMAT)
    throw new CheckpointError(path, `field 'format' must be '${CHECKPOINT_FORMAT}'`);
  const version = m['version'];
  if (typeof version !== 'number' || !READABLE_CHECKPOINT_VERSIONS.includes(version))
    throw new CheckpointError(
      path,
      `version ${String(version)} is not supported (this build reads ${READABLE_CHECKPOINT_VERSIONS.join(', ')})`,
    );
  for (const k of ['epoch', 'step', 'bnBatchesTracked', 'adamStep'])
    field(path, m, k, isCount, 'a non-negative integer');
  field(
    path,
    m,
    'weightHash',
    (v) => typeof v === 'string' && /^[0-9a-f]{64}$/.test(v),
    'a SHA-256 hex string',
  );
  const blob = field<Record<string, unknown>>(
    path,
    m,
    'blob',
    (v) => typeof v === 'object' && v !== null,
    'an object',
  );
  if (typeof blob['file'] !== 'string' || !/^checkpoint-[0-9a-f]{16}\.bin$/.test(blob['file']))
    throw new CheckpointError(path, `field 'blob.file' must name a checkpoint-<hash>.bin file`);
  if (!isCount(blob['bytes']) || typeof blob['sha256'] !== 'string')
    throw new CheckpointError(path, `field 'blob' must hold bytes and sha256`);
  const config = field<Record<string, unknown>>(
    path,
    m,
    'config',
    (v) => typeof v === 'object' && v !== null,
    'an object',
  );
  for (const k of ['architecture', 'loss', 'adam'])
    if (typeof config[k] !== 'object' || config[k] === null)
      throw new CheckpointError(path, `field 'config.${k}' must be an object`);
  try {
    validateArchitecture(config['architecture'] as UNetArchitecture, 'config.architecture');
    validateLoss(
      config['loss'] as LossConfig,
      (config['architecture'] as UNetArchitecture).classes,
      'config.loss',
    );
    validateAdamConfig(config['adam'] as AdamConfig, 'config.adam');
    if (m['scheduler'] !== null) validatePlateauState(m['scheduler'], 'scheduler');
  } catch (err) {
    throw new CheckpointError(path, errorMessage(err), { cause: err });
  }
  let rng: CheckpointRng | null = null;
  let engine: EngineIdentity | null = null;
  try {
    if (version >= 2) {
      if (!('rng' in m)) throw new TypeError(`field 'rng' is missing (null if the run had none)`);
      if (m['rng'] !== null) rng = validateCheckpointRng(m['rng'], 'rng');
    }
    if (m['engine'] !== undefined && m['engine'] !== null)
      engine = parseEngineIdentity(m['engine'], 'engine');
  } catch (err) {
    throw new CheckpointError(path, errorMessage(err), { cause: err });
  }
  const sections = field<CheckpointManifest['sections']>(path, m, 'sections', Array.isArray, 'an array');
  const names = sections.map((s) => s?.name);
  if (names.join() !== SECTIONS.join())
    throw new CheckpointError(path, `sections must be ${SECTIONS.join(', ')}`);
  try {
    checkJson(ManifestLayoutSchema, m, path);
  } catch (err) {
    if (!(err instanceof JsonDecodeError)) throw err;
    throw new CheckpointError(path, err.problem, { cause: err });
  }
  return { ...(raw as CheckpointManifest), rng, engine };
}

/** Reads and verifies a checkpoint written by saveCheckpoint; errors name the file and the problem. */
export async function loadCheckpoint(tf: Tfjs, dir: string): Promise<LoadedCheckpoint> {
  const manifestPath = join(dir, MANIFEST_FILE);
  let text: string;
  try {
    text = await readFile(manifestPath, 'utf8');
  } catch (err) {
    throw new CheckpointError(
      manifestPath,
      `cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)})`,
    );
  }
  const manifest = parseManifest(manifestPath, text);
  const blobPath = join(dir, manifest.blob.file);
  let blob: Buffer;
  try {
    blob = await readFile(blobPath);
  } catch (err) {
    throw new CheckpointError(
      blobPath,
      `cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)})`,
    );
  }
  if (blob.byteLength !== manifest.blob.bytes)
    throw new CheckpointError(
      blobPath,
      `holds ${blob.byteLength} bytes, the manifest says ${manifest.blob.bytes}`,
    );
  if (sha256(blob) !== manifest.blob.sha256)
    throw new CheckpointError(blobPath, 'is corrupt: its SHA-256 does not match the manifest');

  const layout = unetLayout(manifest.config.architecture);
  const expected: Record<SectionName, number> = {
    weights: layout.totalParams,
    runningStats: layout.bnStatsLength,
    adamM: layout.totalParams,
    adamV: layout.totalParams,
  };
  const arrays = {} as Record<SectionName, Float32Array>;
  for (const s of manifest.sections) {
    if (s.length !== expected[s.name] || !isCount(s.offset) || s.offset + 4 * s.length > blob.byteLength)
      throw new CheckpointError(
        manifestPath,
        `section '${s.name}' does not fit the architecture or the blob`,
      );
    // Copy into an aligned buffer: the Buffer's byte offset need not be a multiple of 4.
    arrays[s.name] = new Float32Array(
      blob.buffer.slice(blob.byteOffset + s.offset, blob.byteOffset + s.offset + 4 * s.length),
    );
  }
  const model = UNet3D.fromState(
    tf,
    {
      config: manifest.config,
      weights: arrays.weights,
      runningStats: arrays.runningStats,
      bnBatchesTracked: manifest.bnBatchesTracked,
      adamStep: manifest.adamStep,
      adamM: arrays.adamM,
      adamV: arrays.adamV,
    },
    manifestPath,
  );
  if (model.weightHash() !== manifest.weightHash)
    throw new CheckpointError(manifestPath, 'weight hash of the loaded model does not match the manifest');
  return {
    model,
    scheduler: manifest.scheduler
      ? ReduceLROnPlateau.fromState(manifest.scheduler, `${manifestPath} scheduler`)
      : null,
    epoch: manifest.epoch,
    step: manifest.step,
    rng: manifest.rng,
    engine: manifest.engine ?? null,
    extra: manifest.extra,
    manifest,
  };
}
