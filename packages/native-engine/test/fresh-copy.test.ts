import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cacheRoot } from '@lits-ddp/local-services';
import { afterAll, describe, expect, it } from 'vitest';
import { runCommand } from '../src/exec.js';
import { libtensorflowCacheDir } from '../src/libtensorflow.js';
import { ensureNativeEngine, nativeEngineStatus, TENSORFLOW_CPU_VERSION } from '../src/index.js';
import { copyTfjsNode } from './package-copy.js';
import { buildUnavailable, shouldRun } from './requirements.js';
import { RESTORE_UTIL_JS } from '../src/node-compat.js';

const roots: string[] = [];
afterAll(() => roots.forEach((r) => rmSync(r, { recursive: true, force: true })));

function freshCopy(): string {
  const root = mkdtempSync(join(tmpdir(), 'lits-native-engine-'));
  roots.push(root);
  return copyTfjsNode(root);
}

const suite = 'a fresh copy of @tensorflow/tfjs-node (as after npm ci)';

describe.runIf(shouldRun(suite, buildUnavailable()))(suite, () => {
  it('is reported not ready, with the reason, before anything is built', () => {
    const packageDir = freshCopy();
    const status = nativeEngineStatus({ packageDir });
    expect(status.ready).toBe(false);
    expect(status.reason).toMatch(/lits-native-engine\.json: the native engine was never provisioned/);
    expect(status.packageDir).toBe(packageDir);
    expect(status.addonPath).toBe(join(packageDir, 'lib', 'napi-v8', 'tfjs_binding.node'));
  });

  it('stages libtensorflow from the cache, builds the addon with node-gyp, and it loads', async () => {
    const packageDir = freshCopy();
    const report = await ensureNativeEngine({ packageDir });
    expect(report).toMatchObject({
      status: 'installed',
      packageDir,
      addonPath: join(packageDir, 'lib', 'napi-v8', 'tfjs_binding.node'),
      libtensorflowVersion: TENSORFLOW_CPU_VERSION,
      tfjsNodeVersion: '4.22.0',
      napi: 8,
    });
    expect(report.steps.build).toBeGreaterThan(0);

    // The libraries are the cache's files (hard links), not 680 MB of copies, when on one file system.
    const cached = join(libtensorflowCacheDir(cacheRoot()), 'lib', 'libtensorflow_cc.so.2');
    const staged = join(packageDir, 'deps', 'lib', 'libtensorflow_cc.so.2');
    if (statSync(cached).dev === statSync(staged).dev) {
      expect(statSync(staged).ino).toBe(statSync(cached).ino);
    }
    expect(existsSync(join(packageDir, 'deps', 'include', 'tensorflow', 'c', 'c_api.h'))).toBe(true);

    const check = await runCommand(
      process.execPath,
      [
        '-e',
        `${RESTORE_UTIL_JS}
         const tf = require(process.argv[1]);
         console.log(JSON.stringify([tf.getBackend(), tf.backend().binding.TF_Version, tf.sum(tf.ones([2, 3])).dataSync()[0]]));`,
        packageDir,
      ],
      { env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: '2' } },
    );
    expect(check.code, check.output).toBe(0);
    expect(JSON.parse(check.stdout.trim().split('\n').at(-1) ?? '')).toEqual([
      'tensorflow',
      TENSORFLOW_CPU_VERSION,
      6,
    ]);
    expect(nativeEngineStatus({ packageDir }).ready).toBe(true);

    // A marker without its addon (someone deleted lib/) is not ready, and says why.
    rmSync(join(packageDir, 'lib'), { recursive: true });
    const status = nativeEngineStatus({ packageDir });
    expect(status.ready).toBe(false);
    expect(status.reason).toBe(`the addon ${report.addonPath} is missing`);
  });
});
