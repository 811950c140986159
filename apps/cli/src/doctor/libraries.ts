// Shared libraries as the dynamic loader sees them: whether it opens each one (in a child process) and, for the
// report, where on disk it is.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import Type from 'typebox';
import { errorMessage } from '@lits-ddp/errors';
import { decodeJson } from '@lits-ddp/protocol';
import { entryFile, lastLine, runNodeChild } from './child.js';
import { probeLine } from './engine-probe-result.js';
import type { DoctorLibrary } from './report-schema.js';

const LibraryProbeResults = Type.Array(
  Type.Object({
    name: Type.String(),
    loads: Type.Boolean(),
    error: Type.Union([Type.String(), Type.Null()]),
  }),
);

/** Folders the driver's and CUDA's libraries usually live in, beyond LD_LIBRARY_PATH and the ldconfig cache. */
const USUAL_FOLDERS = [
  '/usr/local/nvidia/lib64', // the NVIDIA device plugin's mount in Kubernetes pods
  '/usr/lib/x86_64-linux-gnu',
  '/usr/lib64',
  '/usr/local/cuda/lib64',
  '/usr/lib/wsl/lib',
];

/** soname → path from `ldconfig -p`; empty where ldconfig is absent (not Linux, a minimal image). */
function ldconfigCache(): Promise<Map<string, string>> {
  return new Promise((resolve) => {
    const tryAt = (candidates: string[]): void => {
      const [bin, ...rest] = candidates;
      if (!bin) return resolve(new Map());
      execFile(bin, ['-p'], { timeout: 5000, maxBuffer: 8 * 1024 * 1024 }, (err, stdout) => {
        if (err) return tryAt(rest);
        const map = new Map<string, string>();
        for (const m of stdout.matchAll(/^\s*(\S+) \(([^)]*)\) => (\S+)$/gm)) {
          const [, name, flags, path] = m;
          // 32-bit copies (libc6 without x86-64) are not what a 64-bit TensorFlow opens.
          if (name && path && !map.has(name) && (process.arch !== 'x64' || flags?.includes('x86-64')))
            map.set(name, path);
        }
        resolve(map);
      });
    };
    tryAt(['ldconfig', '/sbin/ldconfig', '/usr/sbin/ldconfig']);
  });
}

/**
 * Each library in `names`: opened by the loader in a child process (by path when it lies in `firstFolder`, where
 * TensorFlow's $ORIGIN RUNPATH finds it, else by name), and located on disk.
 */
export async function probeLibraries(
  names: readonly string[],
  firstFolder: string | null = null,
): Promise<DoctorLibrary[]> {
  const cache = await ldconfigCache();
  const folders = [
    ...(firstFolder ? [firstFolder] : []),
    ...(process.env.LD_LIBRARY_PATH ?? '').split(':').filter((d) => d !== ''),
    ...USUAL_FOLDERS,
  ];
  const locate = (name: string): string | null =>
    folders.map((d) => join(d, name)).find((p) => existsSync(p)) ?? cache.get(name) ?? null;
  const targets = names.map((name) => {
    const inFirst = firstFolder ? join(firstFolder, name) : null;
    return inFirst && existsSync(inFirst) ? inFirst : name;
  });
  const outcome = await runNodeChild(entryFile('library-probe-child'), targets, { timeoutMs: 60_000 });
  const line = probeLine(outcome.stdout);
  // One broken probe answers for all of them: none is known to load.
  const failed = (why: string): { loads: boolean; error: string | null }[] =>
    names.map(() => ({ loads: false, error: why }));
  let opened: { loads: boolean; error: string | null }[];
  if (line === undefined)
    opened = failed(
      `the library probe ended ${outcome.signal ? `by ${outcome.signal}` : `with code ${outcome.code}`}: ${lastLine(outcome.stderr) ?? 'no message'}`,
    );
  else {
    try {
      opened = decodeJson(LibraryProbeResults, line, 'the library probe');
    } catch (err) {
      opened = failed(errorMessage(err));
    }
  }
  return names.map((name, i) => ({
    name,
    loads: opened[i]?.loads ?? false,
    path: locate(name),
    error: opened[i]?.error ?? null,
  }));
}
