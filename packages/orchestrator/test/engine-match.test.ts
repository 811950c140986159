// Which workers a run may lease, by engine: pure functions over registry entries, then the same rules against a
// real Redis registry through WorkerPool.lease.
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collectSystemInfo, WorkerAgent } from '@lits-ddp/trainer';
import { serviceUrl } from '@lits-ddp/local-services/vitest';
import {
  resolveSpec,
  type ExperimentSpecInput,
  type ResolvedSpec,
  type WorkerInfo,
} from '@lits-ddp/protocol';
import {
  chooseRunEngine,
  describeWait,
  engineFallback,
  RunEngineChoice,
  sameEngine,
  workerEngine,
} from '../src/orchestration/engine-match.js';
import { WorkerPool } from '../src/orchestration/worker-pool.js';

process.env.LITS_KEY_PREFIX = `engine-${randomBytes(3).toString('hex')}`;

function spec(input: ExperimentSpecInput): ResolvedSpec {
  const r = resolveSpec({ 'dataset-path': '/data', ...input });
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.spec;
}

let counter = 0;
function worker(engine: string, intraOp?: number, extra: Partial<WorkerInfo> = {}): WorkerInfo {
  return {
    id: `w${counter++}`,
    host: 'h',
    pid: 1,
    engine,
    engineThreads: intraOp === undefined ? null : { intraOp, interOp: 1 },
    device: 'cpu',
    startedAt: 0,
    state: 'idle',
    system: collectSystemInfo('4.22.0'),
    ...extra,
  };
}

const node1 = { name: 'node', threads: { intraOp: 1, interOp: 1 } } as const;
const cpu = { name: 'cpu', threads: null } as const;

describe('choosing a run engine', () => {
  it('auto prefers gpu, then node, then cpu, among engines with enough live workers', () => {
    const auto = spec({ workers: 2 });
    const pool = [worker('cpu'), worker('cpu'), worker('node', 1), worker('node', 1), worker('gpu', 1)];
    expect(chooseRunEngine(auto, undefined, pool, 2)).toEqual(node1);
    expect(chooseRunEngine(auto, undefined, pool, 1)).toEqual({
      name: 'gpu',
      threads: { intraOp: 1, interOp: 1 },
    });
    // One native worker cannot hold two ranks: pure JS it is, and the fallback says why.
    const fewNative = [worker('cpu'), worker('cpu'), worker('node', 1)];
    expect(chooseRunEngine(auto, undefined, fewNative, 2)).toEqual(cpu);
    expect(engineFallback(auto, cpu, fewNative.slice(0, 2))).toMatch(
      /no 2 live native workers with 1 intra-op thread: running the pure-JS cpu engine/,
    );
    expect(engineFallback(auto, node1, [worker('node', 1)])).toBeNull();
  });

  it('a native worker counts only with the spec’s thread count; an explicit engine takes nothing else', () => {
    const pool = [worker('node', 2), worker('node', 2), worker('cpu')];
    expect(chooseRunEngine(spec({ engine: 'node' }), undefined, pool, 2)).toBeUndefined();
    expect(chooseRunEngine(spec({ engine: 'node', 'engine-threads': 2 }), undefined, pool, 2)).toEqual({
      name: 'node',
      threads: { intraOp: 2, interOp: 1 },
    });
    expect(chooseRunEngine(spec({ engine: 'cpu' }), undefined, pool, 1)).toEqual(cpu);
    expect(chooseRunEngine(spec({ engine: 'gpu' }), undefined, pool, 1)).toBeUndefined();
    // Workers older than the thread field, or with an engine this coordinator does not know, never match.
    expect(
      chooseRunEngine(spec({ engine: 'node' }), undefined, [worker('node'), worker('tpu')], 1),
    ).toBeUndefined();
    expect(describeWait(spec({ engine: 'node' }), undefined, pool, 2)).toBe(
      'waiting for 2 free workers running engine node with 1 intra-op thread; live workers: ' +
        '2 × node with 2 intra-op / 1 inter-op thread, 1 × cpu',
    );
  });

  it('once fixed, a run leases its own engine only, and auto waits for busy native workers', () => {
    const auto = spec({ workers: 2 });
    const busy = [
      worker('node', 1, { state: 'busy' }),
      worker('node', 1, { state: 'busy' }),
      worker('cpu'),
      worker('cpu'),
    ];
    // Live, not idle, decides: the busy native pair wins over idle pure JS.
    expect(chooseRunEngine(auto, undefined, busy, 2)).toEqual(node1);
    expect(chooseRunEngine(auto, cpu, busy, 2)).toEqual(cpu);
    const choice = new RunEngineChoice(auto);
    const first = choice.fix(node1, [worker('node', 1, { libtensorflow: '2.18.1' })]);
    expect(first?.tags).toEqual({
      engine: 'node',
      'engine.intra_op_threads': '1',
      'engine.inter_op_threads': '1',
      'engine.libtensorflow': '2.18.1',
    });
    expect(choice.fix(cpu, [])).toBeUndefined();
    expect(choice.pick([worker('cpu'), worker('cpu')], 2)).toEqual(node1);
    expect(choice.outcome()).toEqual({ engine: node1, libtensorflow: '2.18.1' });
  });

  it('a worker whose own auto fell back is named in the run’s fallback', () => {
    const broken = worker('node', 1, {
      engineFallback: 'auto fell back to @tensorflow/tfjs-node: libcudart.so.11 missing',
    });
    expect(engineFallback(spec({}), node1, [broken])).toBe(
      'worker: auto fell back to @tensorflow/tfjs-node: libcudart.so.11 missing',
    );
    expect(engineFallback(spec({ engine: 'node' }), node1, [broken])).toBeNull();
    expect(sameEngine(workerEngine(broken), node1)).toBe(true);
    expect(sameEngine(undefined, node1)).toBe(false);
  });

  it('records the GPU variables the run’s engine loaded with as tags, except the per-worker device list', () => {
    const gpu = worker('gpu', 1, {
      engineEnvironment: {
        CUDA_VISIBLE_DEVICES: '3',
        CUDA_DEVICE_ORDER: 'PCI_BUS_ID',
        TF_FORCE_GPU_ALLOW_GROWTH: 'true',
        TF_CUDNN_USE_AUTOTUNE: '0',
        NVIDIA_TF32_OVERRIDE: '0',
      },
    });
    const fixed = new RunEngineChoice(spec({ engine: 'gpu' })).fix(
      { name: 'gpu', threads: { intraOp: 1, interOp: 1 } },
      [gpu],
    );
    expect(fixed?.tags).toMatchObject({
      engine: 'gpu',
      'engine.env.CUDA_DEVICE_ORDER': 'PCI_BUS_ID',
      'engine.env.TF_FORCE_GPU_ALLOW_GROWTH': 'true',
      'engine.env.TF_CUDNN_USE_AUTOTUNE': '0',
      'engine.env.NVIDIA_TF32_OVERRIDE': '0',
    });
    expect(fixed?.tags).not.toHaveProperty('engine.env.CUDA_VISIBLE_DEVICES');
  });
});

const redisUrl = serviceUrl('redis');

describe.skipIf(!redisUrl)('leasing by engine (real Redis registry)', () => {
  let redis: Redis;
  const agents: WorkerAgent[] = [];
  beforeAll(async () => {
    redis = new Redis(redisUrl as string);
    for (const [id, engine, threads] of [
      ['lease-cpu', 'cpu', null],
      ['lease-node-1', 'node', { intraOp: 1, interOp: 1 }],
      ['lease-node-2', 'node', { intraOp: 2, interOp: 1 }],
    ] as const) {
      const agent = new WorkerAgent({
        redisUrl: redisUrl as string,
        workerId: id,
        engine,
        engineThreads: threads,
        device: 'cpu',
        system: collectSystemInfo('4.22.0'),
        heartbeatIntervalS: 0.5,
      });
      await agent.start();
      agents.push(agent);
    }
  });
  afterAll(async () => {
    await Promise.all(agents.map((a) => a.stop()));
    await redis.quit();
  });

  it('an engine: node run leases only the native worker with its thread count', async () => {
    const pool = new WorkerPool(redis);
    let live: WorkerInfo[] = [];
    for (let i = 0; i < 50 && live.length < 3; i++) {
      live = (await pool.list()).filter((w) => w.heartbeatAgeMs !== undefined).map((w) => w.info);
      if (live.length < 3) await new Promise((r) => setTimeout(r, 100));
    }
    const engine = chooseRunEngine(spec({ engine: 'node', workers: 1 }), undefined, live, 1);
    expect(engine).toEqual(node1);
    const accept = (info: WorkerInfo): boolean => sameEngine(workerEngine(info), node1);
    const leased = await pool.lease('run-node', 1, ['lease-cpu', 'lease-node-2'], false, accept);
    expect(leased).toEqual(['lease-node-1']);
    // The one matching worker is taken: a second run of that engine gets none, even with others idle.
    expect(await pool.lease('run-node-2', 1, [], false, accept)).toBeUndefined();
    await pool.release('run-node', ['lease-node-1']);
  });
});
