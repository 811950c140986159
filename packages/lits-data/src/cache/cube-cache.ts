import { createHash } from 'node:crypto';
import { mkdir, open, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { errorMessage } from '@lits-ddp/errors';
import { fileSystemError, LitsDataError } from '../errors.js';
import { DEFAULT_GEOMETRY_TOLERANCE, VALIDATION_RULES_VERSION } from '../dataset/rules.js';
import { preprocessCase, type CaseFiles } from '../preprocess/case.js';
import type { CaseOptions } from '../preprocess/checked-input.js';
import {
  resolvePreprocessConfig,
  type PreprocessConfig,
  type PreprocessConfigInput,
} from '../preprocess/config.js';
import { CUBE_FORMAT_VERSION, writeCubeFile } from './cube-file.js';

/** Bumped whenever preprocessing output changes for the same input and config, so old cubes are not reused. */
export const PREPROCESS_ALGORITHM_VERSION = 1;

/** How a source file is identified: its size, mtime and first 64 KiB ('stat'), or a hash of all of it ('content'). */
export type SourceIdentityMode = 'stat' | 'content';

const HEAD_BYTES = 64 * 1024;

async function fileIdentity(file: string, mode: SourceIdentityMode): Promise<string> {
  let fh;
  try {
    fh = await open(file, 'r');
  } catch (error) {
    throw new LitsDataError(
      file,
      (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : errorMessage(error),
      {
        cause: error,
      },
    );
  }
  try {
    const info = await fh.stat();
    const hash = createHash('sha256');
    if (mode === 'content') {
      for await (const chunk of fh.createReadStream({ autoClose: false })) hash.update(chunk as Buffer);
      return `sha256:${hash.digest('hex')}`;
    }
    const head = Buffer.alloc(Math.min(HEAD_BYTES, info.size));
    await fh.read(head, 0, head.length, 0);
    hash.update(head);
    return `size:${info.size};mtime:${Math.round(info.mtimeMs)};head:${hash.digest('hex')}`;
  } finally {
    await fh.close();
  }
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object')
    return `{${Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  return JSON.stringify(value);
}

/** A stable hash of the resolved preprocessing config (and algorithm version). */
export function configHash(config: PreprocessConfig): string {
  return createHash('sha256')
    .update(canonicalJson({ config, algorithm: PREPROCESS_ALGORITHM_VERSION, format: CUBE_FORMAT_VERSION }))
    .digest('hex')
    .slice(0, 16);
}

/**
 * The cache key of one case: source identity of image and mask, preprocessing config, the label map and the
 * validation rules (their version and geometry tolerance), so a cube made with another map, or under rules that
 * let through what is now refused, is never reused.
 */
export async function cubeCacheKey(
  c: CaseFiles,
  config: PreprocessConfig,
  mode: SourceIdentityMode = 'stat',
  caseOptions: CaseOptions = {},
): Promise<string> {
  const identity = {
    image: await fileIdentity(c.image, mode),
    label: await fileIdentity(c.label, mode),
    config: configHash(config),
    labelMap: caseOptions.labelMap?.text ?? null,
    rules: {
      version: VALIDATION_RULES_VERSION,
      geometryTolerance: caseOptions.geometryTolerance ?? DEFAULT_GEOMETRY_TOLERANCE,
    },
  };
  return createHash('sha256').update(canonicalJson(identity)).digest('hex').slice(0, 40);
}

export function cubePath(cacheDir: string, key: string): string {
  return join(cacheDir, 'cubes', key.slice(0, 2), `${key}.cube`);
}

export interface CacheEntry {
  caseId: number;
  key: string;
  file: string;
  /** True when the cube was already there. */
  cached: boolean;
}

export interface CacheOptions extends CaseOptions {
  cacheDir: string;
  config?: PreprocessConfig | PreprocessConfigInput;
  identity?: SourceIdentityMode;
}

/** The nearest existing ancestor of `path` (itself included) that is not a folder, or null. */
async function fileInTheWay(path: string): Promise<string | null> {
  for (let p = resolve(path); ; p = dirname(p)) {
    // Only explains a failed mkdir: a path that cannot be stat'ed is taken as absent and its parent is tried.
    const info = await stat(p).catch(() => null);
    if (info) return info.isDirectory() ? null : p;
    if (dirname(p) === p) return null;
  }
}

/**
 * Creates the cache folder, or says in one line why it cannot be one (a file in the way, no permission). Call it
 * before long work such as validation, so a wrong `--cache` fails at once.
 */
export async function ensureCacheDir(cacheDir: string): Promise<void> {
  try {
    await mkdir(cacheDir, { recursive: true });
  } catch (error) {
    const blocker = await fileInTheWay(cacheDir);
    if (blocker === resolve(cacheDir))
      throw new LitsDataError(
        cacheDir,
        'the cache folder is a file, not a folder (preprocess writes cubes there)',
        { cause: error },
      );
    if (blocker)
      throw new LitsDataError(
        cacheDir,
        `cannot create the cache folder: ${blocker} is a file, not a folder (preprocess writes cubes there)`,
        { cause: error },
      );
    throw fileSystemError(cacheDir, error, 'creating the cache folder (preprocess writes cubes there)');
  }
}

async function present(file: string): Promise<boolean> {
  try {
    return (await stat(file)).isFile();
  } catch {
    // A cube that cannot be stat'ed is made again; writing it reports a cache folder that cannot be used.
    return false;
  }
}

/**
 * The cube of one case, preprocessing it if the cache lacks it. Several processes may do this at once for the same
 * case: each writes its own temporary file and renames it into place, so readers see one complete cube or none.
 */
export async function ensureCube(c: CaseFiles, options: CacheOptions): Promise<CacheEntry> {
  const config = resolvePreprocessConfig(options.config);
  const key = await cubeCacheKey(c, config, options.identity, options);
  const file = cubePath(options.cacheDir, key);
  if (await present(file)) return { caseId: c.id, key, file, cached: true };
  const cube = await preprocessCase(c, config, options);
  await writeCubeFile(file, cube, config);
  return { caseId: c.id, key, file, cached: false };
}

export interface PreprocessProgress {
  done: number;
  total: number;
  caseId: number;
  cached: boolean;
}

export interface CacheManifest {
  cacheDir: string;
  config: PreprocessConfig;
  configHash: string;
  /** The label map's canonical text, or null for LiTS's own 0/1/2. */
  labelMap: string | null;
  entries: CacheEntry[];
}

/**
 * Preprocesses every case into the cache, one at a time (memory stays at one case), reporting progress. Each case is
 * checked with the validation rules as it is read, so an invalid case throws (naming its file) instead of becoming a
 * cube; run `validateDataset` first to hear of every problem at once.
 */
export async function preprocessDataset(
  cases: readonly CaseFiles[],
  options: CacheOptions & { onProgress?: (p: PreprocessProgress) => void; onStart?: (total: number) => void },
): Promise<CacheManifest> {
  const config = resolvePreprocessConfig(options.config);
  await ensureCacheDir(options.cacheDir);
  options.onStart?.(cases.length);
  const entries: CacheEntry[] = [];
  for (const c of cases) {
    const entry = await ensureCube(c, { ...options, config });
    entries.push(entry);
    options.onProgress?.({ done: entries.length, total: cases.length, caseId: c.id, cached: entry.cached });
  }
  return {
    cacheDir: options.cacheDir,
    config,
    configHash: configHash(config),
    labelMap: options.labelMap?.text ?? null,
    entries,
  };
}
