import { describe, expect, it } from 'vitest';
import { nativeEngineStatus } from '@lits-ddp/native-engine';
import {
  applyGpuDefaults,
  GPU_ENVIRONMENT_KEYS,
  gpuEnvironment,
  EngineUnavailableError,
  engineUnavailable,
  engineFallbackReason,
  engineIdentity,
  engineIdentityDifference,
  loadEngine,
  parseEngineIdentity,
  parseEngineRequest,
  parseThreadCount,
  type EngineIdentity,
} from '../src/index.js';

// Each vitest file runs in its own process: this one loads native TensorFlow once, with 1 intra-op thread.
const native = nativeEngineStatus();

describe('engine loader', () => {
  it('auto loads the native engine where it is built, pinned and named; elsewhere pure JS, saying why', async () => {
    const engine = await loadEngine({ engine: 'auto', threads: { intraOp: 1, interOp: 1 } });
    if (!native.ready) {
      expect(engine.name).toBe('cpu');
      expect(engine.fallback).toMatch(/^auto fell back to @tensorflow\/tfjs: .*engine install/);
      return;
    }
    expect(engine.name).toBe('node');
    expect(engine.backend).toBe('tensorflow');
    expect(engine.libtensorflow).toBe('2.18.1');
    expect(engine.threads).toEqual({ intraOp: 1, interOp: 1 });
    expect(process.env['TF_NUM_INTRAOP_THREADS']).toBe('1');
    // TensorFlow's oneDNN default, made explicit and recorded with the instruction set it dispatches on.
    expect(engine.onednn).toBe(true);
    expect(engine.cpuIsa).toMatch(/^x86_64 (avx512_core\w*|avx2\w*|avx|sse)$/);
    expect(engineIdentity(engine)).toMatchObject({ name: 'node', onednn: true, cpuIsa: engine.cpuIsa });
    expect(engine.description).toBe(
      'engine node (@tensorflow/tfjs-node 4.22.0, libtensorflow 2.18.1, backend tensorflow, 1 intra-op thread, 1 inter-op thread)',
    );
    // tfjs-node-gpu is simply not installed: an expected miss, not a fallback.
    expect(engine.attempts).toEqual([
      expect.objectContaining({ engine: 'gpu', packageName: '@tensorflow/tfjs-node-gpu', installed: false }),
    ]);
    expect(engine.fallback).toBeNull();
    expect(engine.tf.add(engine.tf.scalar(2), engine.tf.scalar(3)).dataSync()[0]).toBe(5);
    // TensorFlow sizes its pools once per process: other counts need another process.
    await expect(loadEngine({ engine: 'node', threads: { intraOp: 2, interOp: 1 } })).rejects.toThrow(
      /already loaded in this process with 1 intra-op thread, 1 inter-op thread; 2 intra-op threads, 1 inter-op thread needs a new process/,
    );
    // The same counts (or none) reuse what is loaded; the cpu engine is always there beside it.
    expect((await loadEngine({ engine: 'node' })).threads).toEqual({ intraOp: 1, interOp: 1 });
    const cpu = await loadEngine({ engine: 'cpu' });
    expect([cpu.name, cpu.backend, cpu.threads, cpu.libtensorflow, cpu.onednn]).toEqual([
      'cpu',
      'cpu',
      null,
      null,
      null,
    ]);
    expect(cpu.description).toBe('engine cpu (@tensorflow/tfjs 4.22.0, backend cpu)');
  });

  it('the fallback reason: none for a missing package before a native engine, the failures before pure JS', () => {
    const gpuMissing = {
      engine: 'gpu',
      packageName: '@tensorflow/tfjs-node-gpu',
      error: "Cannot find package '@tensorflow/tfjs-node-gpu'",
      installed: false,
    } as const;
    const nodeBroken = {
      engine: 'node',
      packageName: '@tensorflow/tfjs-node',
      error: 'The Node.js native addon module (tfjs_binding.node) can not be found',
      installed: true,
    } as const;
    const gpuBroken = {
      ...gpuMissing,
      error: 'libcudart.so.11.0: cannot open shared object file',
      installed: true,
    } as const;
    expect(engineFallbackReason('auto', 'node', [gpuMissing])).toBeNull();
    expect(engineFallbackReason('auto', 'node', [gpuBroken])).toBe(
      'auto fell back to @tensorflow/tfjs-node: @tensorflow/tfjs-node-gpu: libcudart.so.11.0: cannot open shared object file',
    );
    expect(engineFallbackReason('auto', 'cpu', [gpuMissing, nodeBroken])).toBe(
      "auto fell back to @tensorflow/tfjs: @tensorflow/tfjs-node-gpu: Cannot find package '@tensorflow/tfjs-node-gpu'; " +
        '@tensorflow/tfjs-node: The Node.js native addon module (tfjs_binding.node) can not be found ' +
        '(build the native engine with: npm run lits -- engine install)',
    );
    expect(engineFallbackReason('cpu', 'cpu', [])).toBeNull();
  });

  it('fails clearly, naming the missing package and the command that builds it, for an explicit engine', async () => {
    const missing = (engine: 'gpu' | 'node'): EngineUnavailableError =>
      engineUnavailable(engine, [
        {
          engine,
          packageName: `@tensorflow/tfjs-${engine === 'gpu' ? 'node-gpu' : 'node'}`,
          error: 'Cannot find package',
          installed: false,
        },
      ]);
    expect(missing('gpu').message).toBe(
      'TFJS_ENGINE=gpu needs @tensorflow/tfjs-node-gpu, which could not be loaded: Cannot find package. ' +
        'Build it with: npm run lits -- engine install --gpu (or use TFJS_ENGINE=auto|cpu).',
    );
    expect(missing('node').message).toMatch(/Build it with: npm run lits -- engine install \(or use/);
    expect(missing('gpu')).toMatchObject({ code: 'ENGINE_UNAVAILABLE' });
    // And from the loader: where `engine install --gpu` ran (our CI's suite builds it), the gpu engine loads, on the
    // CPU device without a driver; elsewhere the explicit request fails with that error.
    if (nativeEngineStatus({ flavour: 'gpu' }).ready) {
      const gpu = await loadEngine({ engine: 'gpu' });
      expect([gpu.name, gpu.backend, gpu.fallback]).toEqual(['gpu', 'tensorflow', null]);
    } else {
      await expect(loadEngine({ engine: 'gpu' })).rejects.toThrow(
        /TFJS_ENGINE=gpu needs @tensorflow\/tfjs-node-gpu, which could not be loaded: .*engine install --gpu/,
      );
      await expect(loadEngine({ engine: 'gpu' })).rejects.toBeInstanceOf(EngineUnavailableError);
    }
  });

  it('reads TFJS_ENGINE and thread counts, and rejects unknown values', async () => {
    expect(parseEngineRequest(undefined)).toBe('auto');
    expect(parseEngineRequest(' CPU ')).toBe('cpu');
    expect(() => parseEngineRequest('tpu')).toThrow(/TFJS_ENGINE='tpu' is not one of auto, gpu, node, cpu/);
    expect(() => parseEngineRequest('tpu')).toThrow(
      expect.objectContaining({ code: 'ENGINE_CONFIG_INVALID' }),
    );
    expect(parseThreadCount(' 4 ', '--threads')).toBe(4);
    for (const bad of ['0', '1.5', 'two', '2000'])
      expect(() => parseThreadCount(bad, '--threads')).toThrow(
        `--threads=${bad} is not a whole number of threads from 1 to 1024`,
      );
    const saved = process.env['TFJS_ENGINE'];
    process.env['TFJS_ENGINE'] = 'gpu';
    try {
      // The gpu engine where `engine install --gpu` built it, else the error naming TFJS_ENGINE=gpu.
      const viaEnv = await loadEngine().then(
        (engine) => engine.name,
        (err: unknown) => String(err),
      );
      expect(viaEnv).toMatch(/^gpu$|TFJS_ENGINE=gpu/);
    } finally {
      if (saved === undefined) delete process.env['TFJS_ENGINE'];
      else process.env['TFJS_ENGINE'] = saved;
    }
  });

  it('sets the TF determinism variables before loading in deterministic mode', async () => {
    for (const key of GPU_ENVIRONMENT_KEYS) delete process.env[key];
    process.env['NVIDIA_TF32_OVERRIDE'] = '1';
    const failed = loadEngine({ engine: 'gpu', deterministic: true });
    // Set synchronously, i.e. before the native package's import even starts; TF32 forced off.
    expect(gpuEnvironment()).toEqual({
      CUDA_DEVICE_ORDER: 'PCI_BUS_ID',
      TF_FORCE_GPU_ALLOW_GROWTH: 'true',
      TF_DETERMINISTIC_OPS: '1',
      TF_CUDNN_DETERMINISTIC: '1',
      TF_CUDNN_USE_AUTOTUNE: '0',
      NVIDIA_TF32_OVERRIDE: '0',
    });
    await failed.catch(() => undefined);
  });

  it('GPU defaults: allow-growth and PCI bus order unless set, the deterministic variables only when asked', () => {
    const env: NodeJS.ProcessEnv = { TF_FORCE_GPU_ALLOW_GROWTH: 'false', CUDA_VISIBLE_DEVICES: '1,0' };
    applyGpuDefaults(false, env);
    expect(gpuEnvironment(env)).toEqual({
      CUDA_VISIBLE_DEVICES: '1,0',
      CUDA_DEVICE_ORDER: 'PCI_BUS_ID',
      TF_FORCE_GPU_ALLOW_GROWTH: 'false',
    });
  });

  it('an engine identity: what differs, and a malformed one refused naming its source', () => {
    const a: EngineIdentity = {
      name: 'node',
      version: '4.22.0',
      libtensorflow: '2.18.1',
      threads: { intraOp: 1, interOp: 1 },
    };
    expect(engineIdentityDifference(a, { ...a })).toBeNull();
    expect(engineIdentityDifference(a, { ...a, threads: { intraOp: 2, interOp: 1 } })).toBe(
      'node (tfjs 4.22.0, libtensorflow 2.18.1, 1 intra-op thread, 1 inter-op thread) vs ' +
        'node (tfjs 4.22.0, libtensorflow 2.18.1, 2 intra-op threads, 1 inter-op thread)',
    );
    expect(
      engineIdentityDifference(a, { name: 'cpu', version: '4.22.0', libtensorflow: null, threads: null }),
    ).toMatch(/ vs cpu \(tfjs 4\.22\.0\)$/);
    expect(parseEngineIdentity(JSON.parse(JSON.stringify(a)), 'x')).toEqual(a);
    // The machine class counts once both sides record it; an older record without it is "unknown", not different.
    const amx = { ...a, onednn: true, cpuIsa: 'x86_64 avx512_core_amx' };
    expect(engineIdentityDifference(amx, { ...amx, cpuIsa: 'x86_64 avx2' })).toMatch(
      /oneDNN on, x86_64 avx512_core_amx\) vs .*oneDNN on, x86_64 avx2\)$/,
    );
    expect(engineIdentityDifference(amx, { ...amx, onednn: false })).not.toBeNull();
    expect(engineIdentityDifference(amx, a)).toBeNull();
    expect(() => parseEngineIdentity({ ...amx, onednn: 'yes' }, 'ckpt engine')).toThrow(
      'ckpt engine: engine identity onednn must be a boolean or null',
    );
    expect(() => parseEngineIdentity({ ...a, name: 'tpu' }, 'ckpt engine')).toThrow(
      'ckpt engine: engine identity name must be gpu, node or cpu',
    );
  });
});
