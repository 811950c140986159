import { createHash } from 'node:crypto';
import { open, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { LitsDataError } from '../errors.js';
import { preprocessCase, type CaseFiles } from '../preprocess/case.js';
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
      (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : (error as Error).message,
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

/** The cache key of one case: source identity of image and mask + preprocessing config. */
export async function cubeCacheKey(
  c: CaseFiles,
  config: PreprocessConfig,
  mode: SourceIdentityMode = 'stat',
): Promise<string> {
  const identity = {
    image: await fileIdentity(c.image, mode),
    label: await fileIdentity(c.label, mode),
    config: configHash(config),
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

export interface CacheOptions {
  cacheDir: string;
  config?: PreprocessConfig | PreprocessConfigInput;
  identity?: SourceIdentityMode;
}

async function present(file: string): Promise<boolean> {
  try {
    return (await stat(file)).isFile();
  } catch {
    return false;
  }
}

/**
 * The cube of one case, preprocessing it if the cache lacks it. Several processes may do this at once for the same
 * case: each writes its own temporary file and renames it into place, so readers see one complete cube or none.
 */
export async function ensureCube(c: CaseFiles, options: CacheOptions): Promise<CacheEntry> {
  const config = resolvePreprocessConfig(options.config);
  const key = await cubeCacheKey(c, config, options.identity);
  const file = cubePath(options.cacheDir, key);
  if (await present(file)) return { caseId: c.id, key, file, cached: true };
  const cube = await preprocessCase(c, config);
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
  entries: CacheEntry[];
}

/** Preprocesses every case into the cache, one at a time (memory stays at one case), reporting progress. */
export async function preprocessDataset(
  cases: readonly CaseFiles[],
  options: CacheOptions & { onProgress?: (p: PreprocessProgress) => void; onStart?: (total: number) => void },
): Promise<CacheManifest> {
  const config = resolvePreprocessConfig(options.config);
  options.onStart?.(cases.length);
  const entries: CacheEntry[] = [];
  for (const c of cases) {
    const entry = await ensureCube(c, { ...options, config });
    entries.push(entry);
    options.onProgress?.({ done: entries.length, total: cases.length, caseId: c.id, cached: entry.cached });
  }
  return { cacheDir: options.cacheDir, config, configHash: configHash(config), entries };
}
