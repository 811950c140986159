// `lits doctor --json` as a user runs it, against the real Redis and MLflow of the test services: its output
// validates against DoctorReport, and its verdicts match what this machine has.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import Value from 'typebox/value';
import { describe, expect, it } from 'vitest';
import { serviceUrl } from '@lits-ddp/local-services/vitest';
import { nativeEngineReady } from '@lits-ddp/native-engine/vitest';
import { DoctorReport } from '../src/commands/doctor.js';

const lits = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const redisUrl = serviceUrl('redis');
const mlflowUrl = serviceUrl('mlflow');
const nativeBuilt = nativeEngineReady('the doctor test of the native engine');
/** Whether this machine has an NVIDIA kernel module: the doctor must then find the driver, and otherwise not. */
const hostHasDriver = existsSync('/proc/driver/nvidia/version');

interface DoctorRun {
  code: number | null;
  report: DoctorReport;
  stdout: string;
  stderr: string;
}

function runDoctor(
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [lits, 'doctor', ...args], { env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

async function runDoctorJson(args: string[], env: NodeJS.ProcessEnv): Promise<DoctorRun> {
  const run = await runDoctor(['--json', ...args], env);
  const lines = run.stdout.trim().split('\n');
  expect(lines, run.stderr).toHaveLength(1);
  const report: unknown = JSON.parse(lines[0] ?? '');
  expect([...Value.Errors(DoctorReport, report)], 'the output validates against DoctorReport').toEqual([]);
  return { ...run, report: report as DoctorReport };
}

/** A redis:// URL where nothing listens: a port the kernel just handed out and that was closed again. */
async function deadRedisUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (typeof address !== 'object' || address === null) throw new TypeError('no port was assigned');
  return `redis://127.0.0.1:${address.port}`;
}

const engine = (report: DoctorReport, name: 'gpu' | 'node' | 'cpu') => {
  const found = report.engines.find((e) => e.engine === name);
  expect(found, `engine ${name} is reported`).toBeDefined();
  return found as DoctorReport['engines'][number];
};

describe.skipIf(!redisUrl || !mlflowUrl)('lits doctor', () => {
  const env = { REDIS_URL: redisUrl, MLFLOW_TRACKING_URI: mlflowUrl, TFJS_ENGINE: undefined };

  it('reports the engines, the missing driver, and reachable Redis and MLflow; exit 0', async () => {
    const { code, report, stderr } = await runDoctorJson([], env);
    expect(code, stderr).toBe(0);
    expect(report.ok).toBe(true);
    expect(report.requested).toBe('auto');
    expect(report.problems).toEqual([]);

    const cpu = engine(report, 'cpu');
    expect(cpu).toMatchObject({
      loads: true,
      backend: 'cpu',
      libtensorflow: null,
      threads: null,
      error: null,
    });
    expect(cpu.version).toMatch(/^\d+\.\d+\.\d+/);

    const node = engine(report, 'node');
    if (nativeBuilt) {
      expect(node).toMatchObject({ loads: true, backend: 'tensorflow', gpuDevice: false, hint: null });
      expect(node.libtensorflow).toMatch(/^\d+\.\d+\.\d+/);
      // The pools a worker would load it with: LITS_ENGINE_THREADS unset here, so the protocol's default.
      expect(node.threads).toEqual({ intraOp: 1, interOp: 1, source: 'default' });
      expect(report.selected === 'node' || report.selected === 'gpu').toBe(true);
    } else {
      expect(node.loads).toBe(false);
      expect(node.hint).toContain('engine install');
    }

    const gpu = engine(report, 'gpu');
    if (gpu.loads) expect(gpu.gpuDevice).toBe(hostHasDriver);
    else {
      expect(gpu.error).toBeTruthy();
      expect(gpu.hint).toMatch(/install/);
    }

    expect(report.driver.found).toBe(hostHasDriver);
    expect(report.driver.env.CUDA_VISIBLE_DEVICES).toBe(process.env.CUDA_VISIBLE_DEVICES ?? null);
    if (!hostHasDriver) {
      expect(report.driver).toMatchObject({ version: null, kernelModule: null, gpus: [] });
      expect(report.driver.libcuda).toMatchObject({ name: 'libcuda.so.1', loads: false });
      expect(report.driver.hint).toMatch(/NVIDIA driver/);
    }
    expect(report.cudaLibraries.libraries.length).toBeGreaterThan(0);

    expect(report.runtime.node).toBe(process.version);
    expect(report.runtime.warning !== null).toBe(report.runtime.nodeMajor < 22);
    expect(report.services.redis).toMatchObject({ reachable: true, source: 'REDIS_URL', error: null });
    expect(report.services.redis.version).toMatch(/^\d+\.\d+/);
    expect(report.services.mlflow).toMatchObject({
      reachable: true,
      source: 'MLFLOW_TRACKING_URI',
      error: null,
    });
  });

  it('with a Redis URL where nothing listens: Redis unreachable, with what to do; exit 1', async () => {
    const dead = await deadRedisUrl();
    const { code, report } = await runDoctorJson(['--engine', 'cpu', '--redis-url', dead], env);
    expect(code).toBe(1);
    expect(report.ok).toBe(false);
    expect(report.services.redis).toMatchObject({ url: dead, source: '--redis-url', reachable: false });
    expect(report.services.redis.error).toBeTruthy();
    expect(report.services.redis.hint).toMatch(/start Redis/);
    expect(report.problems.some((p) => p.startsWith(`redis at ${dead} is unreachable`))).toBe(true);
    expect(report.services.mlflow.reachable).toBe(true);
  });

  it.skipIf(hostHasDriver)(
    '--engine gpu without a driver: exit 1, naming the driver; human output',
    async () => {
      const { code, stdout } = await runDoctor(['--engine', 'gpu'], env);
      expect(code).toBe(1);
      expect(stdout).toContain('NOT READY');
      for (const section of ['Engines', 'NVIDIA driver', 'CUDA libraries', 'Runtime', 'Services', 'Problems'])
        expect(stdout).toContain(section);
      expect(stdout).toMatch(/✗ no NVIDIA driver/);
    },
  );
});
