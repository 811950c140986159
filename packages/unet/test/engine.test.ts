import { describe, expect, it } from 'vitest';
import { EngineUnavailableError, loadEngine, parseEngineRequest } from '../src/index.js';

describe('engine loader', () => {
  it('auto falls back to the pure-JS cpu engine here and says what it tried', async () => {
    const engine = await loadEngine({ engine: 'auto' });
    expect(engine.name).toBe('cpu');
    expect(engine.backend).toBe('cpu');
    expect(engine.packageName).toBe('@tensorflow/tfjs');
    expect(engine.description).toMatch(/^engine cpu \(@tensorflow\/tfjs 4\.22\.0, backend cpu\)$/);
    // Neither native package can be installed on this machine.
    expect(engine.attempts.map((a) => a.packageName)).toEqual([
      '@tensorflow/tfjs-node-gpu',
      '@tensorflow/tfjs-node',
    ]);
    expect(engine.attempts[0]!.error).toMatch(/tfjs-node-gpu/);
    expect(engine.tf.add(engine.tf.scalar(2), engine.tf.scalar(3)).dataSync()[0]).toBe(5);
  });

  it('fails clearly, naming the missing package, when gpu or node is requested explicitly', async () => {
    await expect(loadEngine({ engine: 'gpu' })).rejects.toThrow(
      /TFJS_ENGINE=gpu needs @tensorflow\/tfjs-node-gpu, which could not be loaded: .*CUDA 11\.2/,
    );
    await expect(loadEngine({ engine: 'node' })).rejects.toBeInstanceOf(EngineUnavailableError);
    await expect(loadEngine({ engine: 'node' })).rejects.toThrow(/needs @tensorflow\/tfjs-node,/);
  });

  it('reads TFJS_ENGINE and rejects unknown values', async () => {
    expect(parseEngineRequest(undefined)).toBe('auto');
    expect(parseEngineRequest(' CPU ')).toBe('cpu');
    expect(() => parseEngineRequest('tpu')).toThrow(/TFJS_ENGINE='tpu' is not one of auto, gpu, node, cpu/);
    const saved = process.env['TFJS_ENGINE'];
    process.env['TFJS_ENGINE'] = 'gpu';
    try {
      await expect(loadEngine()).rejects.toThrow(/TFJS_ENGINE=gpu/);
    } finally {
      if (saved === undefined) delete process.env['TFJS_ENGINE'];
      else process.env['TFJS_ENGINE'] = saved;
    }
  });

  it('sets the TF determinism variables before loading in deterministic mode', async () => {
    delete process.env['TF_DETERMINISTIC_OPS'];
    delete process.env['TF_CUDNN_DETERMINISTIC'];
    const failed = loadEngine({ engine: 'gpu', deterministic: true });
    // Set synchronously, i.e. before the native package's import even starts.
    expect(process.env['TF_DETERMINISTIC_OPS']).toBe('1');
    expect(process.env['TF_CUDNN_DETERMINISTIC']).toBe('1');
    await expect(failed).rejects.toThrow();
  });
});
