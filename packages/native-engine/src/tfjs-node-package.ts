import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { NativeEngineUnavailableError } from './errors.js';

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
}

/** The tfjs-node package folder and what its package.json says about the addon. */
export interface TfjsNodePackage {
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

interface TfjsNodePackageJson {
  version?: string;
  binary?: { module_name?: string; module_path?: string; napi_versions?: number[] };
}

/** The tfjs-node folder as this package resolves it (it is hoisted beside us in a workspace install). */
export function locateTfjsNode(): string {
  try {
    return dirname(createRequire(import.meta.url).resolve('@tensorflow/tfjs-node/package.json'));
  } catch (err) {
    throw new NativeEngineUnavailableError(
      '@tensorflow/tfjs-node',
      `@tensorflow/tfjs-node is not in node_modules (${err instanceof Error ? err.message.split('\n')[0] : String(err)})`,
      'It is an optional dependency of @lits-ddp/unet: run `npm ci` at the repository root with npm >= 11',
    );
  }
}

export function readTfjsNodePackage(dir: string): TfjsNodePackage {
  const file = join(dir, 'package.json');
  let pkg: TfjsNodePackageJson;
  try {
    pkg = JSON.parse(readFileSync(file, 'utf8')) as TfjsNodePackageJson;
  } catch (err) {
    throw new NativeEngineUnavailableError(
      '@tensorflow/tfjs-node',
      `cannot read ${file} (${err instanceof Error ? err.message : String(err)})`,
      'Reinstall it: run `npm ci` at the repository root with npm >= 11',
    );
  }
  const nodeNapi = Number(process.versions.napi ?? 0);
  const supported = (pkg.binary?.napi_versions ?? []).filter((v) => v <= nodeNapi);
  const moduleName = pkg.binary?.module_name;
  const modulePath = pkg.binary?.module_path;
  if (!pkg.version || !moduleName || !modulePath || supported.length === 0) {
    throw new NativeEngineUnavailableError(
      '@tensorflow/tfjs-node',
      `${file} has no usable "binary" section for Node-API ${nodeNapi} (napi_versions ${JSON.stringify(pkg.binary?.napi_versions)})`,
      'Install @tensorflow/tfjs-node 4.22.0 (the version @lits-ddp/unet pins) with `npm ci`',
    );
  }
  const napi = Math.max(...supported);
  const moduleDir = join(dir, modulePath.replace('{napi_build_version}', String(napi)));
  return {
    dir,
    version: pkg.version,
    napi,
    addonPath: join(moduleDir, `${moduleName}.node`),
    moduleDir,
    moduleName,
    markerPath: join(dir, 'deps', 'lits-native-engine.json'),
  };
}

export function readMarker(pkg: TfjsNodePackage): NativeEngineMarker | undefined {
  try {
    return JSON.parse(readFileSync(pkg.markerPath, 'utf8')) as NativeEngineMarker;
  } catch {
    return undefined;
  }
}

/**
 * Why the addon in `pkg` is not the one this package would build, or undefined when it is. Only files
 * are looked at (no load), so it is cheap; the load was checked before the marker was written.
 */
export function staleReason(
  pkg: TfjsNodePackage,
  expected: { wheel: string; sha256: string },
): string | undefined {
  const marker = readMarker(pkg);
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
  return diffs.length ? `the addon was built for ${diffs.join(', ')}` : undefined;
}
