import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger, startCoordinator, type RunningCoordinator } from '@lits-ddp/coordinator-service';
import { generatePhantomDataset } from '@lits-ddp/lits-data';
import { freePort } from '@lits-ddp/local-services';
import { serviceUrl } from '@lits-ddp/local-services/vitest';
import { WorkerProcesses } from '../src/index.js';
import { tinySpecInput } from './phantom-runs.js';

process.env.LITS_KEY_PREFIX = `cli-client-${randomBytes(3).toString('hex')}`;
const redisUrl = serviceUrl('redis');
const TOKEN = 'cli-client-token-0123456789';
const LITS = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const run = promisify(execFile);

describe.skipIf(!redisUrl)('lits submit / status / logs / cancel against a running coordinator', () => {
  let base: string;
  let coordinator: RunningCoordinator;
  let workers: WorkerProcesses;
  let env: NodeJS.ProcessEnv;

  const lits = async (...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> => {
    try {
      const { stdout, stderr } = await run(process.execPath, [LITS, ...args], { env, timeout: 300_000 });
      return { code: 0, stdout, stderr };
    } catch (err) {
      const e = err as { code?: number; stdout?: string; stderr?: string };
      return { code: e.code ?? -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
    }
  };
  const specFile = async (name: string, spec: Record<string, unknown>): Promise<string> => {
    const file = join(base, `${name}.json`);
    await writeFile(file, JSON.stringify(spec));
    return file;
  };
  const tiny = tinySpecInput('phantoms', { max_epochs: 2 });

  beforeAll(async () => {
    base = await mkdtemp(join(tmpdir(), 'cli-client-'));
    await generatePhantomDataset({
      outDir: join(base, 'data', 'phantoms'),
      cases: 8,
      size: [32, 32, 16],
      seed: 7,
    });
    coordinator = await startCoordinator({
      redisUrl: redisUrl as string,
      port: await freePort(),
      tokens: [TOKEN],
      dataRoot: join(base, 'data'),
      home: join(base, 'home'),
      logger: createLogger('warn'),
    });
    env = { ...process.env, LITS_API_URL: coordinator.url, LITS_API_TOKEN: TOKEN, CI: '1' };
    workers = new WorkerProcesses(['cli-w0', 'cli-w1'], {
      redisUrl: redisUrl as string,
      engine: 'cpu',
      threads: 1,
      heartbeatIntervalS: 1,
      logDir: join(base, 'worker-logs'),
    });
    workers.startAll();
  });
  afterAll(async () => {
    await workers?.stopAll();
    await coordinator?.close();
    await rm(base, { recursive: true, force: true });
  });

  it('submits with --wait and follows to the end; status and logs show the finished run', async () => {
    const submitted = await lits(
      'submit',
      await specFile('tiny', tiny),
      '--wait',
      '--idempotency-key',
      'cli-1',
    );
    expect(submitted.code, submitted.stderr).toBe(0);
    const [id, status] = submitted.stdout.trim().split('\n').at(-1)!.split(' ');
    expect(status).toBe('finished');
    expect(submitted.stderr).toMatch(/status running/);
    expect(submitted.stderr).toMatch(/epoch 1: .*train_avg_loss=/);

    const again = await lits('submit', await specFile('tiny', tiny), '--idempotency-key', 'cli-1');
    expect(again.stdout.trim()).toBe(id);

    const list = await lits('status');
    expect(list.stdout).toMatch(new RegExp(`${id}\\s+finished`));
    const one = JSON.parse((await lits('status', id!, '--json')).stdout) as Record<string, unknown>;
    expect(one).toMatchObject({ id, status: 'finished', workers: 2, tracking: { kind: 'local' } });
    const text = await lits('status', id!);
    expect(text.stdout).toMatch(/train_avg_loss/);

    const logs = await lits('logs', id!);
    expect(logs.code).toBe(0);
    expect(logs.stdout).toMatch(/status\s+\{"status":"queued"/);
    expect(logs.stdout).toMatch(/finished/);
    const followed = await lits('logs', id!, '--follow', '--json');
    const lines = followed.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string; status?: string });
    expect(lines.at(-1)).toMatchObject({ type: 'end', status: 'finished' });
    expect(lines.filter((l) => l.type === 'metrics').length).toBeGreaterThanOrEqual(2);
    expect(followed.code).toBe(0);
  });

  it('cancels an experiment that waits for workers, and reports bad input clearly', async () => {
    const big = await lits('submit', await specFile('big', { ...tiny, workers: 4 }));
    expect(big.code, big.stderr).toBe(0);
    const id = big.stdout.trim();
    const cancelled = await lits('cancel', id);
    expect(cancelled.code).toBe(0);
    expect(cancelled.stdout.trim()).toMatch(new RegExp(`^${id} (cancelled|cancelling)$`));
    for (let i = 0; i < 40; i++) {
      if (JSON.parse((await lits('status', id, '--json')).stdout).status === 'cancelled') break;
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(JSON.parse((await lits('status', id, '--json')).stdout).status).toBe('cancelled');
    expect((await lits('cancel', id)).stderr).toMatch(/409 experiment .* already cancelled/);

    const missing = await lits('submit', join(base, 'nope.json'));
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/nope\.json: ENOENT/);
    const bad = await lits('submit', await specFile('bad', { ...tiny, lr: -1, 'dataset-path': '../etc' }));
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/\/lr: must be > 0/);
    const unknown = await lits('status', 'no-such-experiment');
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/404/);
    env = { ...env, LITS_API_TOKEN: 'wrong-token-0123456789' };
    const denied = await lits('status');
    expect(denied.code).toBe(1);
    expect(denied.stderr).toMatch(/401/);
    env = { ...env, LITS_API_TOKEN: TOKEN };
  });
});
