import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { errorMessage } from '@lits-ddp/errors';
import { NativeEngineFileError, NativeEngineUnavailableError } from './errors.js';
import { FLAVOURS, type EngineFlavour } from './flavour.js';
import { parseRecord, type FieldType } from './json-record.js';

/** What `deps/lits-native-engine.json` records about the addon it sits beside; written last. */
export interface NativeEngineMarker {
  wheel: string;
  sha256: string;
  /** TF_Version as the built addon reported it. */
  libtensorflow: string;
  tfjsNode: string;
  napi: number;
  /** process.versions.modules of the Node that built it. */
  nodeAbi: string;
  builtAt: string;
  /** The GPU engine's marker only (@tensorflow/tfjs-node-gpu): what its CUDA libraries were checked to be. */
  gpu?: GpuEngineRecord;
}

/** Written beside the GPU engine: the CUDA side of the install, as found by its checks. */
export interface GpuEngineRecord {
  /** cudaPinsDigest of the nvidia wheels the libraries came from. */
  cudaPins: string;
  /** The pinned libraries that dlopen from deps/lib (all of them, or the install failed). */
  cudaLibraries: string[];
  /** Whether the host driver's libcuda.so.1 loaded at install time, and the loader's words. */
  driverFound: boolean;
  driver: string;
  /** Whether TensorFlow used a GPU device in the load check (false on a machine without one: not a failure). */
  gpuDevice: boolean;
}

const MARKER_FIELDS = {
  wheel: 'string',
  sha256: 'string',
  libtensorflow: 'string',
  tfjsNode: 'string',
  napi: 'number',
  nodeAbi: 'string',
  builtAt: 'string',
} as const satisfies Record<Exclude<keyof NativeEngineMarker, 'gpu'>, FieldType>;

const GPU_RECORD_FIELDS = {
  cudaPins: 'string',
  cudaLibraries: 'string[]',
  driverFound: 'boolean',
  driver: 'string',
  gpuDevice: 'boolean',
} as const satisfies Record<keyof GpuEngineRecord, FieldType>;

/** The tfjs-node package folder and what its package.json says about the addon. */
export interface TfjsNodePackage {
  flavour: EngineFlavour;
  dir: string;
  version: string;
  /** The highest of `binary.napi_versions` this Node supports. */
  napi: number;
  /** Where node-pre-gyp (and so tfjs-node) looks for the addon: `<dir>/lib/napi-v<napi>/tfjs_binding.node`. */
  addonPath: string;
  moduleDir: string;
  moduleName: string;
  markerPath: string;
}

/** The fields of tfjs-node's package.json that say where node-pre-gyp loads the addon from. */
interface TfjsNodePackageJson {
  version: string;
  binary: { module_name: string; module_path: string; napi_versions: number[] };
}

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** The first field of tfjs-node's package.json that is missing or of the wrong type, or undefined. */
function packageJsonProblem(pkg: unknown): string | undefined {
  if (!isRecord(pkg)) return 'not a JSON object';
  if (typeof pkg.version !== 'string' || pkg.version === '')
    return 'field "version" must be a version string';
  const binary = pkg.binary;
  if (!isRecord(binary)) return 'field "binary" must be an object (node-pre-gyp\'s settings)';
  for (const name of ['module_name', 'module_path'] as const) {
    if (typeof binary[name] !== 'string' || binary[name] === '')
      return `field "binary.${name}" must be a non-empty string`;
  }
  const napi = binary.napi_versions;
  if (!Array.isArray(napi) || !napi.every((v) => Number.isSafeInteger(v)))
    return `field "binary.napi_versions" must be a list of integers, got ${JSON.stringify(napi) ?? 'nothing'}`;
  return undefined;
}

/**
 * The tfjs-node (or, for 'gpu', tfjs-node-gpu) folder as this package resolves it (it is hoisted beside us in
 * a workspace install).
 */
export function locateTfjsNode(flavour: EngineFlavour = 'cpu'): string {
  const name = FLAVOURS[flavour].npmPackage;
  try {
    return dirname(createRequire(import.meta.url).resolve(`${name}/package.json`));
  } catch (err) {
    throw new NativeEngineUnavailableError(
      name,
      `${name} is not in node_modules (${errorMessage(err).split('\n')[0]})`,
      'It is an optional dependency of @lits-ddp/unet: run `npm ci` at the repository root with npm >= 11',
    );
  }
}

export function readTfjsNodePackage(dir: string, flavour: EngineFlavour = 'cpu'): TfjsNodePackage {
  const { npmPackage, npmVersion } = FLAVOURS[flavour];
  const file = join(dir, 'package.json');
  const reinstall = 'Reinstall it: run `npm ci` at the repository root with npm >= 11';
  const pinned = `Install ${npmPackage} ${npmVersion} (the version @lits-ddp/unet pins) with \`npm ci\``;
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new NativeEngineUnavailableError(
      npmPackage,
      `cannot read ${file} (${errorMessage(err)})`,
      reinstall,
    );
  }
  const problem = packageJsonProblem(parsed);
  if (problem) throw new NativeEngineUnavailableError(npmPackage, `${file}: ${problem}`, pinned);
  const pkg = parsed as TfjsNodePackageJson;
  const nodeNapi = Number(process.versions.napi ?? 0);
  const supported = pkg.binary.napi_versions.filter((v) => v <= nodeNapi);
  const moduleName = pkg.binary.module_name;
  const modulePath = pkg.binary.module_path;
  if (supported.length === 0) {
    throw new NativeEngineUnavailableError(
      npmPackage,
      `${file} has no usable "binary" section for Node-API ${nodeNapi} (napi_versions ${JSON.stringify(pkg.binary.napi_versions)})`,
      pinned,
    );
  }
  const napi = Math.max(...supported);
  const moduleDir = join(dir, modulePath.replace('{napi_build_version}', String(napi)));
  return {
    flavour,
    dir,
    version: pkg.version,
    napi,
    addonPath: join(moduleDir, `${moduleName}.node`),
    moduleDir,
    moduleName,
    markerPath: join(dir, 'deps', 'lits-native-engine.json'),
  };
}

/**
 * The marker beside the addon, or undefined when there is none. A marker that exists but cannot be read or
 * lacks a field is a NativeEngineFileError naming the file and the field.
 */
export function readMarker(pkg: TfjsNodePackage): NativeEngineMarker | undefined {
  let text: string;
  try {
    text = readFileSync(pkg.markerPath, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new NativeEngineFileError(pkg.markerPath, `cannot read it (${errorMessage(err)})`, { cause: err });
  }
  const parsed = parseRecord(text, MARKER_FIELDS);
  if ('problem' in parsed) throw new NativeEngineFileError(pkg.markerPath, parsed.problem);
  if (pkg.flavour === 'cpu') return parsed.record;
  const gpu = parseRecord(text, GPU_RECORD_FIELDS);
  if ('problem' in gpu) throw new NativeEngineFileError(pkg.markerPath, gpu.problem);
  return { ...parsed.record, gpu: gpu.record };
}

/**
 * readMarker, with a bad marker counted as none (the engine is then rebuilt, and staleReason says why);
 * `onInvalid` hears about it.
 */
export function validMarker(
  pkg: TfjsNodePackage,
  onInvalid?: (err: NativeEngineFileError) => void,
): NativeEngineMarker | undefined {
  try {
    return readMarker(pkg);
  } catch (err) {
    if (!(err instanceof NativeEngineFileError)) throw err;
    onInvalid?.(err);
    return undefined;
  }
}

/**
 * Why the addon in `pkg` is not the one this package would build, or undefined when it is. Only files
 * are looked at (no load), so it is cheap; the load was checked before the marker was written.
 */
export function staleReason(
  pkg: TfjsNodePackage,
  expected: { wheel: string; sha256: string; cudaPins?: string },
): string | undefined {
  let marker: NativeEngineMarker | undefined;
  try {
    marker = readMarker(pkg);
  } catch (err) {
    if (!(err instanceof NativeEngineFileError)) throw err;
    return `${err.message}; the native engine must be provisioned again`;
  }
  if (!marker) return `no ${pkg.markerPath}: the native engine was never provisioned in ${pkg.dir}`;
  if (!existsSync(pkg.addonPath)) return `the addon ${pkg.addonPath} is missing`;
  const diffs: string[] = [];
  const compare = (what: string, had: string | number, want: string | number): void => {
    if (had !== want) diffs.push(`${what} ${had} (now ${want})`);
  };
  compare('wheel', marker.wheel, expected.wheel);
  compare('sha256', marker.sha256, expected.sha256);
  compare('tfjs-node', marker.tfjsNode, pkg.version);
  compare('napi', marker.napi, pkg.napi);
  compare('node ABI', marker.nodeAbi, process.versions.modules);
  if (expected.cudaPins !== undefined)
    compare('CUDA wheels', marker.gpu?.cudaPins ?? 'none', expected.cudaPins);
  return diffs.length ? `the addon was built for ${diffs.join(', ')}` : undefined;
}
