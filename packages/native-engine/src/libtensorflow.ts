import { createHash } from 'node:crypto';
import {
  createReadStream,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { basename, join } from 'node:path';
import { errorMessage } from '@lits-ddp/errors';
import { withInstallLock } from '@lits-ddp/local-services';
import { NativeEngineUnavailableError } from './errors.js';
import { describeExit, lastLines, runCommand } from './exec.js';
import { parseRecord, type FieldType } from './json-record.js';
import { FLAVOURS, type TensorflowWheelPin } from './flavour.js';
import {
  WHEEL_INCLUDE_PREFIX,
  WHEEL_INCLUDE_SUBTREES,
  WHEEL_LIBRARIES,
  WHEEL_LIBRARY_PREFIX,
  WHEEL_PIP_TARGET,
} from './pins.js';

/** `<cache>/libtensorflow-{cpu,gpu}-<version>/{lib,include}`, extracted once from the wheel. */
export interface LibtensorflowCache {
  dir: string;
  lib: string;
  include: string;
  /** false when an earlier run had already extracted it. */
  extracted: boolean;
}

interface CacheMarker {
  wheel: string;
  sha256: string;
  extractedAt: string;
}

const CACHE_MARKER_FIELDS = {
  wheel: 'string',
  sha256: 'string',
  extractedAt: 'string',
} as const satisfies Record<keyof CacheMarker, FieldType>;

const COMPLETE = '.lits-complete';

export function libtensorflowCacheDir(
  cacheDir: string,
  wheel: TensorflowWheelPin = FLAVOURS.cpu.tensorflow,
): string {
  return join(cacheDir, wheel.cacheName);
}

/**
 * The completion marker of a cache folder, or undefined when there is none (a cold cache). One that exists
 * but is unreadable or lacks a field makes the cache cold too, and is logged naming the file and the field.
 */
function readCacheMarker(dir: string, log: (line: string) => void): CacheMarker | undefined {
  const file = join(dir, COMPLETE);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    log(`${file}: cannot read it (${errorMessage(err)}); extracting again`);
    return undefined;
  }
  const parsed = parseRecord(text, CACHE_MARKER_FIELDS);
  if ('problem' in parsed) {
    log(`${file}: ${parsed.problem}; extracting again`);
    return undefined;
  }
  return parsed.record;
}

function cached(dir: string, sha256: string, log: (line: string) => void): LibtensorflowCache | undefined {
  const marker = readCacheMarker(dir, log);
  if (marker?.sha256 !== sha256) return undefined;
  const lib = join(dir, 'lib');
  if (!WHEEL_LIBRARIES.every((l) => existsSync(join(lib, l)))) return undefined;
  return { dir, lib, include: join(dir, 'include'), extracted: false };
}

/**
 * Makes sure libtensorflow's shared libraries and C headers sit in the cache, downloading the pinned
 * tensorflow-cpu wheel with pip when they do not. The folder is built beside its final place and
 * renamed in with a completion marker, so an interrupted install never looks complete; concurrent
 * installs wait on a lock. A cache extracted from a wheel with another hash does not count.
 */
export async function ensureLibtensorflow(opts: {
  cacheDir: string;
  /** Which TensorFlow wheel; default the tensorflow-cpu pin. */
  wheel?: TensorflowWheelPin;
  python: string;
  sha256: string;
  log: (line: string) => void;
  /** Runs only when the cache is cold (checks that pip is there). */
  beforeDownload?: () => void;
}): Promise<LibtensorflowCache> {
  const pin = opts.wheel ?? FLAVOURS.cpu.tensorflow;
  const dir = libtensorflowCacheDir(opts.cacheDir, pin);
  const hit = cached(dir, opts.sha256, opts.log);
  if (hit) return hit;
  mkdirSync(opts.cacheDir, { recursive: true });
  return withInstallLock(`${dir}.lock`, async () => {
    const again = cached(dir, opts.sha256, opts.log);
    if (again) return again;
    opts.beforeDownload?.();
    const staging = `${dir}.partial-${process.pid}`;
    rmSync(staging, { recursive: true, force: true });
    try {
      const spec = `${pin.project}==${pin.version}`;
      opts.log(`downloading ${pin.file} (${pin.size}) with pip`);
      const [wheel = ''] = await pipDownload(
        opts.python,
        join(staging, 'wheel'),
        [spec],
        [pin.file],
        opts.log,
      );
      await verifySha256(wheel, opts.sha256, opts.log);
      await extract(opts.python, wheel, staging, opts.log);
      rmSync(join(staging, 'wheel'), { recursive: true, force: true });
      const marker: CacheMarker = {
        wheel: pin.file,
        sha256: opts.sha256,
        extractedAt: new Date().toISOString(),
      };
      writeFileSync(join(staging, COMPLETE), `${JSON.stringify(marker, null, 2)}\n`);
      rmSync(dir, { recursive: true, force: true });
      renameSync(staging, dir);
    } finally {
      rmSync(staging, { recursive: true, force: true });
    }
    return { dir, lib: join(dir, 'lib'), include: join(dir, 'include'), extracted: true };
  });
}

/**
 * Downloads exactly the wheels `specs` name (no dependencies) for the pinned platform into `dest`; returns their
 * paths, which must be `files` (pip chose the pinned files, or the pins are out of date).
 */
export async function pipDownload(
  python: string,
  dest: string,
  specs: readonly string[],
  files: readonly string[],
  log: (line: string) => void,
): Promise<string[]> {
  const started = Date.now();
  const what = specs.length === 1 ? specs[0] : `${specs.length} wheels`;
  // The machine's own pip config (index, find-links, certificates) applies; --no-cache-dir because
  // the extracted cache is what is kept, and a second copy in pip's cache would be waste.
  const args = [
    '-m',
    'pip',
    'download',
    '--no-deps',
    '--only-binary=:all:',
    '--python-version',
    WHEEL_PIP_TARGET.pythonVersion,
    '--platform',
    WHEEL_PIP_TARGET.platform,
    '--no-cache-dir',
    '--disable-pip-version-check',
    '--progress-bar',
    'off',
    '-d',
    dest,
    ...specs,
  ];
  const r = await runCommand(python, args, { timeoutMs: 30 * 60_000 });
  if (r.code !== 0 || r.error) {
    throw new NativeEngineUnavailableError(
      'wheel-download',
      `pip download ${what} failed (${describeExit(r)})`,
      'PyPI (or the pip index configured here) must serve that wheel: check the network and pip config, then retry',
      lastLines(r.output, 8),
    );
  }
  const paths = files.map((f) => join(dest, f));
  const absent = files.filter((_, i) => !existsSync(paths[i] ?? ''));
  if (absent.length > 0) {
    throw new NativeEngineUnavailableError(
      'wheel-download',
      `pip download ${what} did not produce ${absent.join(', ')}`,
      'The pip index served another file name; the pins in @lits-ddp/native-engine must name the wheel it serves',
      lastLines(r.output, 8),
    );
  }
  log(`downloaded in ${Date.now() - started} ms`);
  return paths;
}

export async function verifySha256(
  file: string,
  expected: string,
  log: (line: string) => void,
): Promise<void> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  const actual = hash.digest('hex');
  if (actual !== expected.toLowerCase()) {
    throw new NativeEngineUnavailableError(
      'wheel-sha256',
      `${basename(file)} has sha256 ${actual}, expected ${expected}`,
      'The download is corrupt or the wheel on the index was replaced: retry, and if it persists review the pin in @lits-ddp/native-engine',
    );
  }
  log(`sha256 ${actual} of ${basename(file)} verified`);
}

/** Python's zipfile rather than `unzip`: python3 is needed for pip anyway, unzip may be missing. */
const EXTRACT_PY = `
import json, os, shutil, sys, zipfile
wheel, out, spec = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
count = 0
with zipfile.ZipFile(wheel) as z:
    for info in z.infolist():
        name = info.filename
        if name.endswith('/'):
            continue
        if name.startswith(spec['libPrefix']) and name[len(spec['libPrefix']):] in spec['libs']:
            dest = os.path.join(out, 'lib', name[len(spec['libPrefix']):])
        elif name.startswith(spec['incPrefix']) and name[len(spec['incPrefix']):].startswith(tuple(spec['subtrees'])):
            dest = os.path.join(out, 'include', name[len(spec['incPrefix']):])
        else:
            continue
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        with z.open(info) as src, open(dest, 'wb') as dst:
            shutil.copyfileobj(src, dst, 1 << 22)
        count += 1
print(count)
`;

async function extract(
  python: string,
  wheel: string,
  out: string,
  log: (line: string) => void,
): Promise<void> {
  const started = Date.now();
  const spec = JSON.stringify({
    libPrefix: WHEEL_LIBRARY_PREFIX,
    libs: WHEEL_LIBRARIES,
    incPrefix: WHEEL_INCLUDE_PREFIX,
    subtrees: WHEEL_INCLUDE_SUBTREES,
  });
  const r = await runCommand(python, ['-c', EXTRACT_PY, wheel, out, spec]);
  const missing = [
    ...WHEEL_LIBRARIES.map((l) => join(out, 'lib', l)),
    join(out, 'include', 'tensorflow', 'c', 'c_api.h'),
  ].filter((f) => !existsSync(f));
  if (r.code !== 0 || missing.length > 0) {
    throw new NativeEngineUnavailableError(
      'wheel-extract',
      `extracting libtensorflow from ${basename(wheel)} failed (${describeExit(r)}${missing.length ? `; missing ${missing.join(', ')}` : ''})`,
      'Check free disk space under the cache folder (700 MB for the cpu wheel, 1.3 GB for the gpu one), then retry',
      lastLines(r.output, 8),
    );
  }
  log(`extracted ${r.stdout.trim()} files (libtensorflow + C headers) in ${Date.now() - started} ms`);
}
