import { statSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { runCommand } from '../src/exec.js';
import { ensureNativeEngine, nativeEngineStatus, TENSORFLOW_CPU_VERSION } from '../src/index.js';
import { buildUnavailable, shouldRun } from './requirements.js';
import { RESTORE_UTIL_JS } from '../src/node-compat.js';

const suite = 'the checkout’s @tensorflow/tfjs-node';

describe.runIf(shouldRun(suite, buildUnavailable()))(suite, () => {
  it('ends with a loadable native engine, and a second install is a no-op', async () => {
    const lines: string[] = [];
    const first = await ensureNativeEngine({ log: (l) => lines.push(l) });
    expect(first.libtensorflowVersion).toBe(TENSORFLOW_CPU_VERSION);
    if (first.status === 'installed') {
      expect(Object.keys(first.steps)).toEqual([
        'preflight',
        'libtensorflow',
        'node-headers',
        'stage',
        'build',
        'load-check',
        'marker',
      ]);
      expect(lines.some((l) => /^build: .* \(\d+ ms\)$/.test(l))).toBe(true);
    }

    // Loaded the way the trainer loads it: by package name, from the repository root.
    const check = await runCommand(
      process.execPath,
      [
        '-e',
        `${RESTORE_UTIL_JS}
         const tf = require('@tensorflow/tfjs-node');
         const y = tf.conv3d(tf.ones([1, 3, 3, 3, 1]), tf.ones([3, 3, 3, 1, 1]), 1, 'valid');
         console.log(JSON.stringify([tf.getBackend(), tf.backend().binding.TF_Version, y.dataSync()[0]]));`,
      ],
      {
        cwd: new URL('../../..', import.meta.url).pathname,
        env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: '2' },
      },
    );
    expect(check.code, check.output).toBe(0);
    expect(JSON.parse(check.stdout.trim().split('\n').at(-1) ?? '')).toEqual([
      'tensorflow',
      TENSORFLOW_CPU_VERSION,
      27,
    ]);

    const mtime = statSync(first.addonPath).mtimeMs;
    const second = await ensureNativeEngine();
    expect(second.status).toBe('already-present');
    expect(second.libtensorflowVersion).toBe(TENSORFLOW_CPU_VERSION);
    expect(second.steps).toEqual({});
    expect(statSync(first.addonPath).mtimeMs).toBe(mtime);

    const status = nativeEngineStatus();
    expect(status).toMatchObject({ ready: true, addonPath: first.addonPath });
    expect(status.marker?.libtensorflow).toBe(TENSORFLOW_CPU_VERSION);
  });
});
