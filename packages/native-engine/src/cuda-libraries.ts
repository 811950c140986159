// The CUDA user-space libraries of the GPU engine, from the pinned PyPI nvidia-* wheels. TensorFlow dlopens them
// by soname, searching its own RUNPATH first, and `$ORIGIN/` is on the RUNPATH of both libtensorflow libraries:
// so the libraries sit flat in deps/lib beside libtensorflow, and no LD_LIBRARY_PATH is needed. (The nvidia
// libraries' own RUNPATH entries are `$ORIGIN` plus `$ORIGIN/../../<wheel>/lib`, so flat works for them too.)
import { createHash } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  linkSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { errorMessage } from '@lits-ddp/errors';
import { withInstallLock } from '@lits-ddp/local-services';
import { NativeEngineUnavailableError } from './errors.js';
import { describeExit, lastLines, runCommand } from './exec.js';
import { parseRecord, type FieldType } from './json-record.js';
import { pipDownload, verifySha256 } from './libtensorflow.js';
import { CUDA_LIBRARIES_RELEASE, type CudaWheelPin } from './pins.js';

/** `<cache>/<release>/lib/*.so*`: every shared library of the wheels, flat. */
export interface CudaLibrariesCache {
  dir: string;
  lib: string;
  extracted: boolean;
}

const COMPLETE = '.lits-complete';
const CACHE_MARKER_FIELDS = { pins: 'string', extractedAt: 'string' } as const satisfies Record<
  string,
  FieldType
>;

/** One hash over every wheel's file name and sha256: a cache or an addon built from other pins does not count. */
export function cudaPinsDigest(wheels: readonly CudaWheelPin[]): string {
  const hash = createHash('sha256');
  for (const w of wheels) hash.update(`${w.file} ${w.sha256}\n`);
  return hash.digest('hex');
}

export const cudaLibrariesCacheDir = (cacheDir: string): string => join(cacheDir, CUDA_LIBRARIES_RELEASE);

function cached(dir: string, digest: string, wheels: readonly CudaWheelPin[], log: (line: string) => void) {
  const file = join(dir, COMPLETE);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
      log(`${file}: ${errorMessage(err)}; extracting again`);
    return undefined;
  }
  const parsed = parseRecord(text, CACHE_MARKER_FIELDS);
  if ('problem' in parsed) {
    log(`${file}: ${parsed.problem}; extracting again`);
    return undefined;
  }
  const lib = join(dir, 'lib');
  if (parsed.record.pins !== digest) return undefined;
  if (!wheels.every((w) => w.libraries.every((l) => existsSync(join(lib, l))))) return undefined;
  return { dir, lib, extracted: false };
}

/** Every file of an nvidia wheel whose name holds `.so`, written flat into `<out>/lib`. */
const EXTRACT_PY = `
import os, shutil, sys, zipfile
out = os.path.join(sys.argv[1], 'lib')
os.makedirs(out, exist_ok=True)
count = 0
for wheel in sys.argv[2:]:
    with zipfile.ZipFile(wheel) as z:
        for info in z.infolist():
            name = info.filename
            base = name.rsplit('/', 1)[-1]
            if not name.startswith('nvidia/') or name.endswith('/') or '.so' not in base:
                continue
            with z.open(info) as src, open(os.path.join(out, base), 'wb') as dst:
                shutil.copyfileobj(src, dst, 1 << 22)
            count += 1
print(count)
`;

/**
 * Makes sure the CUDA libraries of `wheels` sit in the cache: one pip download of all of them, each sha256
 * checked against its pin, their shared libraries extracted flat, the wheels deleted. Built beside its final
 * place and renamed in with a completion marker (the digest of the pins), under a lock, as libtensorflow is.
 */
export async function ensureCudaLibraries(opts: {
  cacheDir: string;
  python: string;
  wheels: readonly CudaWheelPin[];
  log: (line: string) => void;
  beforeDownload?: () => void;
}): Promise<CudaLibrariesCache> {
  const dir = cudaLibrariesCacheDir(opts.cacheDir);
  const digest = cudaPinsDigest(opts.wheels);
  const hit = cached(dir, digest, opts.wheels, opts.log);
  if (hit) return hit;
  mkdirSync(opts.cacheDir, { recursive: true });
  return withInstallLock(`${dir}.lock`, async () => {
    const again = cached(dir, digest, opts.wheels, opts.log);
    if (again) return again;
    opts.beforeDownload?.();
    const staging = `${dir}.partial-${process.pid}`;
    rmSync(staging, { recursive: true, force: true });
    try {
      const mb = Math.round(opts.wheels.reduce((n, w) => n + w.bytes, 0) / 1e6);
      opts.log(`downloading ${opts.wheels.length} CUDA wheels (${mb} MB) with pip`);
      const paths = await pipDownload(
        opts.python,
        join(staging, 'wheels'),
        opts.wheels.map((w) => `${w.project}==${w.version}`),
        opts.wheels.map((w) => w.file),
        opts.log,
      );
      await Promise.all(opts.wheels.map((w, i) => verifySha256(paths[i] ?? '', w.sha256, opts.log)));
      const started = Date.now();
      // Inflating 2.7 GB is CPU-bound: one python per core, the wheels dealt out largest first.
      const groups = dealBySize(opts.wheels, paths, Math.max(1, Math.min(availableParallelism(), 4)));
      const runs = await Promise.all(
        groups.map((g) => runCommand(opts.python, ['-c', EXTRACT_PY, staging, ...g])),
      );
      const failed = runs.find((r) => r.code !== 0 || r.error);
      const absent = opts.wheels
        .flatMap((w) => w.libraries)
        .filter((l) => !existsSync(join(staging, 'lib', l)));
      if (failed || absent.length > 0) {
        throw new NativeEngineUnavailableError(
          'wheel-extract',
          `extracting the CUDA libraries failed (${failed ? describeExit(failed) : 'exit 0'}${absent.length ? `; missing ${absent.join(', ')}` : ''})`,
          'Check free disk space under the cache folder (about 2.7 GB), then retry',
          lastLines(failed?.output ?? '', 8),
        );
      }
      const count = runs.reduce((n, r) => n + Number(r.stdout.trim()), 0);
      opts.log(
        `extracted ${count} CUDA libraries in ${Date.now() - started} ms (${groups.length} processes)`,
      );
      rmSync(join(staging, 'wheels'), { recursive: true, force: true });
      const marker = { pins: digest, extractedAt: new Date().toISOString() };
      writeFileSync(join(staging, COMPLETE), `${JSON.stringify(marker, null, 2)}\n`);
      rmSync(dir, { recursive: true, force: true });
      renameSync(staging, dir);
    } finally {
      rmSync(staging, { recursive: true, force: true });
    }
    return { dir, lib: join(dir, 'lib'), extracted: true };
  });
}

/** The wheel paths in `n` groups of about equal size (largest first, each to the lightest group). */
function dealBySize(wheels: readonly CudaWheelPin[], paths: readonly string[], n: number): string[][] {
  const groups = Array.from({ length: Math.min(n, paths.length) }, () => ({
    bytes: 0,
    paths: [] as string[],
  }));
  const order = wheels
    .map((w, i) => ({ bytes: w.bytes, path: paths[i] ?? '' }))
    .sort((a, b) => b.bytes - a.bytes);
  for (const w of order) {
    const lightest = groups.reduce((a, b) => (b.bytes < a.bytes ? b : a));
    lightest.bytes += w.bytes;
    lightest.paths.push(w.path);
  }
  return groups.map((g) => g.paths);
}

/** Hard links (copies across file systems) of every cached CUDA library into `libDir`; returns how many. */
export function stageCudaLibraries(cache: CudaLibrariesCache, libDir: string): number {
  mkdirSync(libDir, { recursive: true });
  const names = readdirSync(cache.lib);
  for (const name of names) {
    try {
      linkSync(join(cache.lib, name), join(libDir, name));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'EXDEV' && code !== 'EPERM' && code !== 'EMLINK') throw err;
      copyFileSync(join(cache.lib, name), join(libDir, name));
    }
  }
  return names.length;
}

/** What the dlopen check found: the pinned libraries that load, and whether the host driver's libcuda does. */
export interface CudaLibrariesCheck {
  loaded: string[];
  /** `libcuda.so.1` from the system's loader path (the driver), else why not; it is not ours to ship. */
  driver: { found: boolean; detail: string };
}

// dlopen in a child python3 (already required): a library that fails to load must not take the installer
// with it, and ctypes reports the loader's own message. Loaded by absolute path in deps/lib, where TensorFlow's
// `$ORIGIN/` RUNPATH finds them, so each library's own dependencies resolve as they will for TensorFlow.
const DLOPEN_PY = `
import ctypes, json, os, sys
libdir, names = sys.argv[1], sys.argv[2:]
out = {'loaded': [], 'failed': {}}
for name in names:
    try:
        ctypes.CDLL(os.path.join(libdir, name))
        out['loaded'].append(name)
    except OSError as e:
        out['failed'][name] = str(e)
try:
    ctypes.CDLL('libcuda.so.1')
    out['driver'] = [True, 'libcuda.so.1 loads']
except OSError as e:
    out['driver'] = [False, str(e)]
print('LITS_CUDA_CHECK ' + json.dumps(out))
`;

interface DlopenResult {
  loaded: string[];
  failed: Record<string, string>;
  driver: [boolean, string];
}

const isStringList = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string');

function isDlopenResult(v: unknown): v is DlopenResult {
  if (typeof v !== 'object' || v === null) return false;
  const r = v as Record<string, unknown>;
  const failed = r.failed;
  const driver = r.driver;
  return (
    isStringList(r.loaded) &&
    typeof failed === 'object' &&
    failed !== null &&
    Object.values(failed).every((e) => typeof e === 'string') &&
    Array.isArray(driver) &&
    typeof driver[0] === 'boolean' &&
    typeof driver[1] === 'string'
  );
}

/** Every pinned library must dlopen from `libDir`; the driver is recorded, never required (no GPU here). */
export async function checkCudaLibraries(
  python: string,
  libDir: string,
  wheels: readonly CudaWheelPin[],
): Promise<CudaLibrariesCheck> {
  const names = wheels.flatMap((w) => w.libraries);
  const r = await runCommand(python, ['-c', DLOPEN_PY, libDir, ...names], { timeoutMs: 5 * 60_000 });
  const line = r.stdout.split('\n').find((l) => l.startsWith('LITS_CUDA_CHECK '));
  const fail = (problem: string): NativeEngineUnavailableError =>
    new NativeEngineUnavailableError(
      'cuda-libraries',
      `the CUDA libraries in ${libDir} ${problem}`,
      'Run `lits engine install --gpu --force`; if it persists, the pinned nvidia wheels do not fit this system',
      lastLines(r.output, 10),
    );
  if (r.code !== 0 || !line) throw fail(`could not be checked (${describeExit(r)})`);
  let value: unknown;
  try {
    value = JSON.parse(line.slice('LITS_CUDA_CHECK '.length));
  } catch (err) {
    throw fail(`could not be checked: ${errorMessage(err)}`);
  }
  if (!isDlopenResult(value)) throw fail('could not be checked: the check printed a malformed result');
  const parsed = value;
  const failed = Object.entries(parsed.failed);
  if (failed.length > 0) throw fail(`do not all load: ${failed.map(([n, e]) => `${n} (${e})`).join('; ')}`);
  return { loaded: parsed.loaded, driver: { found: parsed.driver[0], detail: parsed.driver[1] } };
}
