import Value from 'typebox/value';
import { describe, expect, expectTypeOf, it } from 'vitest';
import {
  checkJson,
  DETERMINISM_MODES,
  ENGINE_KINDS,
  ENGINES,
  microBatchesPerStep,
  ResolvedSpec,
  resolveSpec,
  SEED_PARAM_NAMES,
  type DeterminismMode,
  type EngineName,
  type ExperimentSpecInput,
} from '../src/index.js';

describe('experiment spec', () => {
  it("carries the seed's 18 MLproject parameters with their MLproject defaults", () => {
    expect(SEED_PARAM_NAMES).toHaveLength(18);
    const r = resolveSpec({});
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.spec).toMatchObject({
      max_epochs: 1000,
      gpus: 2,
      accelerator: 'ddp',
      'general-seed': 0,
      'pytorch-seed': 0,
      'log-interval': 3000,
      lr: 0.0001,
      'training-batch-size': 1,
      'test-batch-size': 1,
      'class-weights': '0.2, 1.0, 2.5',
      'test-percent': 0.15,
      'test-epochs': 10,
      'dataset-path': '/data/',
      'dataset-size': 131,
      'n-channels': 1,
      'n-class': 3,
      num_workers: 24,
      'dropout-rate': 0.25,
      workers: 2,
      determinism: 'deterministic',
      'global-batch-size': 2,
      'micro-batch-size': 1,
      'unet-width': 32,
      'cube-size': 128,
    });
    expect(microBatchesPerStep(r.spec)).toBe(2);
  });

  it('derives the global batch from the seed meaning: training-batch-size per GPU × gpus', () => {
    const r = resolveSpec({ gpus: 2, 'training-batch-size': 4, workers: 4 });
    expect(r.ok && r.spec['global-batch-size']).toBe(8);
    const cpu = resolveSpec({ gpus: 0, accelerator: 'None', 'training-batch-size': 2 });
    expect(cpu.ok && [cpu.spec.workers, cpu.spec['global-batch-size']]).toEqual([1, 2]);
  });

  it('names the field of every schema error', () => {
    const r = resolveSpec({ lr: -1, determinism: 'sometimes', max_epochs: 1.5, bogus: 1 });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    const byPath = Object.fromEntries(r.errors.map((e) => [e.path, e.message]));
    expect(byPath['/lr']).toMatch(/> 0|must be >/);
    expect(byPath['/determinism']).toBe('must be one of "random", "seed", "deterministic"');
    expect(byPath['/max_epochs']).toMatch(/integer/);
    expect(byPath['/bogus']).toBe('unknown field');
    // workers defaults to gpus, so gpus is bounded like workers (a run that could never start is refused).
    for (const gpus of [65, 1e308]) {
      const many = resolveSpec({ gpus });
      expect(!many.ok && many.errors.map((e) => e.path)).toEqual(['/gpus']);
    }
    const more = resolveSpec({ 'cube-size': 'big' });
    expect(!more.ok && more.errors).toEqual([{ path: '/cube-size', message: 'must be integer' }]);
  });

  it('checks the rules that span fields, naming the field to change', () => {
    // Ranks share a step's micro-batches unevenly when N does not divide K; each needs at least one.
    const uneven = resolveSpec({ 'global-batch-size': 4, workers: 3 });
    expect(uneven.ok && uneven.spec['min-workers']).toBe(3);
    const tooMany = resolveSpec({ 'global-batch-size': 4, workers: 5 });
    expect(!tooMany.ok && tooMany.errors).toEqual([
      {
        path: '/workers',
        message: expect.stringMatching(/must be at most the 4 micro-batches per step.*got 5/),
      },
    ]);
    const elastic = resolveSpec({ 'global-batch-size': 4, workers: 2, 'min-workers': 1, 'max-workers': 4 });
    expect(elastic.ok && [elastic.spec['min-workers'], elastic.spec['max-workers']]).toEqual([1, 4]);
    const bounds = resolveSpec({ 'global-batch-size': 4, workers: 2, 'min-workers': 3, 'max-workers': 8 });
    expect(!bounds.ok && bounds.errors.map((e) => [e.path, e.message])).toEqual([
      ['/max-workers', expect.stringMatching(/at most the 4 micro-batches per step.*got 8/) as string],
      ['/min-workers', 'must be at most workers (2), got 3'],
    ]);
    const below = resolveSpec({ workers: 2, 'max-workers': 1 });
    expect(!below.ok && below.errors).toEqual([
      { path: '/max-workers', message: 'must be at least workers (2), got 1' },
    ]);
    const micro = resolveSpec({ 'global-batch-size': 4, 'micro-batch-size': 3 });
    expect(!micro.ok && micro.errors[0]?.path).toBe('/micro-batch-size');
    const weights = resolveSpec({ 'class-weights': '1, x, 2' });
    expect(!weights.ok && weights.errors[0]).toEqual({
      path: '/class-weights',
      message: expect.stringMatching(/not a number/),
    });
    const count = resolveSpec({ 'class-weights': '1, 2' });
    expect(!count.ok && count.errors[0]?.message).toMatch(/needs 3 comma-separated numbers/);
    const cube = resolveSpec({ 'cube-size': 30 });
    expect(!cube.ok && cube.errors[0]?.path).toBe('/cube-size');
    const epochs = resolveSpec({ max_epochs: 5, 'test-epochs': 10 });
    expect(!epochs.ok && epochs.errors[0]?.path).toBe('/test-epochs');
  });

  it("takes an optional label-map (absent: LiTS/MSD's 0/1/2) and refuses one that does not parse, naming /label-map", () => {
    const none = resolveSpec({});
    expect(none.ok && 'label-map' in none.spec).toBe(false);
    for (const text of ['5:1,*:0', 'liver=5,tumour=6', ' 6:tumour , *:background ', '-1:0,0.5:1'])
      expect(resolveSpec({ 'label-map': text })).toMatchObject({ ok: true, spec: { 'label-map': text } });
    const refused: Array<[string, string]> = [
      ['5:1,liver=6', "mixes value:class and class=value pairs in '5:1,liver=6'"],
      ['5', "'5' is not value:class"],
      ['5:3', "class '3' is not a LiTS class (0, 1, 2, background, liver or tumour)"],
      ['spleen=1', "class 'spleen' is not a LiTS class (0, 1, 2, background, liver or tumour)"],
      ['0x5:1', "'0x5' is not a label value (a decimal number such as 5)"],
      ['5:1,5.0:2', 'maps value 5 twice (to 1 and 2)'],
      ['*:0,*:1', 'maps * twice (to 0 and 1)'],
      [' , ', 'is empty; e.g. 5:1,*:0 or liver=5'],
    ];
    for (const [text, message] of refused)
      expect(resolveSpec({ 'label-map': text })).toEqual({
        ok: false,
        errors: [{ path: '/label-map', message }],
      });
    const empty = resolveSpec({ 'label-map': '' });
    expect(!empty.ok && empty.errors.map((e) => e.path)).toEqual(['/label-map']);
    const number = resolveSpec({ 'label-map': 5 });
    expect(!number.ok && number.errors).toEqual([{ path: '/label-map', message: 'must be string' }]);
  });

  it('refuses what is not an object', () => {
    for (const bad of [null, 3, 'x', [1]])
      expect(resolveSpec(bad)).toEqual({
        ok: false,
        errors: [{ path: '/', message: 'the spec must be a JSON object' }],
      });
  });

  it('does not modify its input', () => {
    const input = { lr: 0.001 };
    resolveSpec(input);
    expect(input).toEqual({ lr: 0.001 });
  });

  it('describes a resolved spec by its schema: resolveSpec output checks against ResolvedSpec, fields typed from it', () => {
    for (const raw of [{}, { 'run-name': 'r', 'label-map': '5:1,*:0', engine: 'node', gpus: 0 }]) {
      const r = resolveSpec(raw);
      expect(r.ok && Value.Check(ResolvedSpec, r.spec)).toBe(true);
    }
    const r = resolveSpec({});
    if (!r.ok) throw new Error('the default spec resolves');
    const { workers: _w, ...withoutWorkers } = r.spec;
    expect(() => checkJson(ResolvedSpec, withoutWorkers, 'stored spec')).toThrow(/workers/);
    expect(() => checkJson(ResolvedSpec, { ...r.spec, engine: 'tpu' }, 'stored spec')).toThrow(/engine/);
    // Compile-time: the Static<> types are the literal unions and optionals callers had from the interface.
    expectTypeOf<ResolvedSpec['determinism']>().toEqualTypeOf<DeterminismMode>();
    expectTypeOf<ResolvedSpec['engine']>().toEqualTypeOf<EngineName>();
    expectTypeOf<ResolvedSpec['split']>().toEqualTypeOf<'auto' | 'lits' | 'seeded'>();
    expectTypeOf<ResolvedSpec['label-map']>().toEqualTypeOf<string | undefined>();
    expectTypeOf<ResolvedSpec['workers']>().toEqualTypeOf<number>();
    expectTypeOf<ExperimentSpecInput>().toEqualTypeOf<Partial<ResolvedSpec>>();
    expect(DETERMINISM_MODES).toContain(r.spec.determinism);
  });

  it("lists the engines once: a spec asks for one of ENGINE_KINDS or 'auto'", () => {
    expect(ENGINES).toEqual(['auto', ...ENGINE_KINDS]);
    for (const engine of ENGINES) expect(resolveSpec({ engine }).ok).toBe(true);
    const bad = resolveSpec({ engine: 'tpu' });
    expect(!bad.ok && bad.errors).toEqual([
      { path: '/engine', message: 'must be one of "auto", "gpu", "node", "cpu"' },
    ]);
  });
});
