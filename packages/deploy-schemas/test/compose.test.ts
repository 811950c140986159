import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ensureMlflow, freePort } from '@lits-ddp/local-services';
import { mergeCompose, readCompose, readEnvFile, validateCompose } from '../src/index.js';
import { repoPath, TEST_TOKEN } from './repo.js';

type Service = {
  command?: string[];
  environment?: Record<string, string>;
  ports?: string[];
  volumes?: string[];
  scale?: number;
  image?: string;
  deploy?: {
    resources?: {
      reservations?: { devices?: { driver: string; device_ids?: string[]; capabilities: string[] }[] };
    };
  };
};
type Compose = { services: Record<string, Service>; volumes: Record<string, unknown> };

const env = { ...readEnvFile(repoPath('.env.example')), LITS_API_TOKEN: TEST_TOKEN };
const base = readCompose(repoPath('docker-compose.yml'), env) as Compose;
const cpu = readCompose(repoPath('docker-compose.cpu.yml'), env) as Compose;

describe('docker-compose.yml', () => {
  it('is valid against the Compose Specification, alone and with the CPU override', () => {
    expect(validateCompose(base, 'docker-compose.yml')).toEqual([]);
    expect(validateCompose(cpu, 'docker-compose.cpu.yml')).toEqual([]);
    expect(validateCompose(mergeCompose(base, cpu), 'merged')).toEqual([]);
  });

  it('needs the API token from the environment or .env, as compose would', () => {
    expect(() => readCompose(repoPath('docker-compose.yml'), { ...env, LITS_API_TOKEN: '' })).toThrow(
      /LITS_API_TOKEN is missing/,
    );
    expect(base.services.coordinator?.environment?.LITS_API_TOKEN).toBe(TEST_TOKEN);
  });

  it('runs redis with AOF on a volume, the coordinator on 8080 and a shared data volume', () => {
    const redis = base.services.redis as Service;
    expect(redis.command?.join(' ')).toMatch(/--appendonly yes/);
    expect(redis.volumes).toContain('redis-data:/data');
    expect(base.services.coordinator?.ports).toEqual(['8080:8080']);
    expect(Object.keys(base.volumes)).toEqual(
      expect.arrayContaining(['redis-data', 'mlflow-data', 'lits-data']),
    );
    for (const name of ['coordinator', 'gpu-worker-0', 'gpu-worker-1'])
      expect(base.services[name]?.volumes).toEqual(['lits-data:/data', './data/datasets:/data/datasets:ro']);
  });

  it('gives each GPU worker exactly one distinct GPU and a distinct worker id', () => {
    const workers = Object.entries(base.services).filter(([name]) => name.startsWith('gpu-worker-'));
    expect(workers.length).toBeGreaterThanOrEqual(2);
    const devices = workers.map(([, s]) => s.deploy?.resources?.reservations?.devices ?? []);
    for (const d of devices) {
      expect(d).toHaveLength(1);
      expect(d[0]).toMatchObject({ driver: 'nvidia', capabilities: ['gpu'] });
      expect(d[0]?.device_ids).toHaveLength(1);
    }
    const ids = devices.map((d) => d[0]?.device_ids?.[0]);
    expect(new Set(ids).size).toBe(workers.length);
    const workerIds = workers.map(([, s]) => s.command?.[s.command.indexOf('--id') + 1]);
    expect(new Set(workerIds).size).toBe(workers.length);
    expect(workers.map(([name]) => name)).toEqual(ids.map((i) => `gpu-worker-${i}`));
  });

  it('GPU workers run the GPU image with allow-growth and PCI bus order; the coordinator the CPU image', () => {
    const workers = Object.entries(base.services).filter(([name]) => name.startsWith('gpu-worker-'));
    for (const [name, s] of workers) {
      expect(s.image, name).toBe('lits-ddp/lits:gpu-node24-cuda12.5');
      expect(s.environment, name).toMatchObject({
        TFJS_ENGINE: 'gpu',
        TF_FORCE_GPU_ALLOW_GROWTH: 'true',
        CUDA_DEVICE_ORDER: 'PCI_BUS_ID',
      });
      // The device reservation decides which GPU the container sees; a fixed list here would override it.
      expect(s.environment?.NVIDIA_VISIBLE_DEVICES, name).toBeUndefined();
      expect(s.environment?.CUDA_VISIBLE_DEVICES, name).toBeUndefined();
    }
    expect(base.services.coordinator?.image).toBe('lits-ddp/lits:cpu-node24');
  });

  it('CPU override: no GPU worker is created and CPU workers run the CPU image', () => {
    const merged = mergeCompose(base, cpu) as Compose;
    expect(merged.services['gpu-worker-0']?.scale).toBe(0);
    expect(merged.services['gpu-worker-1']?.scale).toBe(0);
    expect(merged.services['cpu-worker']).toMatchObject({
      image: 'lits-ddp/lits:cpu-node24',
      command: ['worker', '--engine', 'cpu'],
    });
  });
});

describe('docker-compose.multihost.yml (the first host when workers on other hosts join)', () => {
  const hostEnv = {
    ...env,
    REDIS_PASSWORD: 'redis-password-0123',
    REDIS_PUBLISH_ADDRESS: '10.0.0.5',
    LITS_NFS_SERVER: '10.0.0.10',
    LITS_NFS_EXPORT: '/export/lits',
  };
  const file = repoPath('docker-compose.multihost.yml');
  const multihost = readCompose(file, hostEnv) as Compose;
  const merged = mergeCompose(base, multihost) as Compose;

  it('is valid against the Compose Specification, alone and merged onto docker-compose.yml', () => {
    expect(validateCompose(multihost, 'docker-compose.multihost.yml')).toEqual([]);
    expect(validateCompose(merged, 'merged')).toEqual([]);
  });

  it('needs the password, the address to publish Redis on and the NFS export', () => {
    for (const name of ['REDIS_PASSWORD', 'REDIS_PUBLISH_ADDRESS', 'LITS_NFS_SERVER', 'LITS_NFS_EXPORT'])
      expect(() => readCompose(file, { ...hostEnv, [name]: '' }), name).toThrow(
        new RegExp(`${name} is missing`),
      );
  });

  it('Redis asks for the password and is published on the private address only; every client uses it', () => {
    const redis = merged.services.redis as Service;
    expect(redis.command?.join(' ')).toMatch(/--appendonly yes .*--requirepass redis-password-0123$/);
    expect(redis.ports).toEqual(['10.0.0.5:6379:6379']);
    expect(redis.environment?.REDISCLI_AUTH).toBe('redis-password-0123');
    const clients = Object.entries(merged.services).filter(([, s]) => s.environment?.REDIS_URL);
    expect(clients.map(([name]) => name).sort()).toEqual(['coordinator', 'gpu-worker-0', 'gpu-worker-1']);
    for (const [name, s] of clients) {
      expect(s.environment?.REDIS_URL, name).toBe('redis://:redis-password-0123@redis:6379');
      expect(s.environment?.LITS_HOME, name).toBe('/data/home');
    }
  });

  it('is what docs/deploy.md shows', () => {
    const docs = readFileSync(repoPath('docs/deploy.md'), 'utf8');
    const shown = /What the override changes:\s*```yaml\n([\s\S]*?)```/.exec(docs)?.[1];
    expect(shown, 'docs/deploy.md: the yaml block after "What the override changes:"').toBeDefined();
    const dir = mkdtempSync(join(tmpdir(), 'compose-docs-'));
    try {
      writeFileSync(join(dir, 'shown.yml'), shown ?? '');
      expect(readCompose(join(dir, 'shown.yml'), hostEnv)).toEqual(multihost);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('backs the lits-data volume (/data in every container) with the NFS export', () => {
    expect(merged.volumes['lits-data']).toEqual({
      driver: 'local',
      driver_opts: { type: 'nfs', o: 'addr=10.0.0.10,nfsvers=4.1,rw', device: ':/export/lits' },
    });
  });
});

/** GET with an explicit Host header (fetch would send the address it connects to). */
function get(port: number, host: string, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers: { Host: host }, timeout: 5000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.end();
  });
}

describe('the compose MLflow command, run by the real MLflow server', () => {
  let server: ChildProcess | undefined;
  const dir = mkdtempSync(join(tmpdir(), 'compose-mlflow-'));
  afterAll(() => {
    if (server?.pid) process.kill(-server.pid, 'SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers the coordinator at Host mlflow:5000 and refuses an unlisted Host', async () => {
    const command = base.services.mlflow?.command as string[];
    expect(command.slice(0, 2)).toEqual(['mlflow', 'server']);
    const { path: python } = await ensureMlflow();
    const port = await freePort();
    // The same flags, with this machine's port and folders in place of the container's.
    const args = command.slice(1).map((a, i, all) => {
      const flag = all[i - 1];
      if (flag === '--host') return '127.0.0.1';
      if (flag === '--port') return String(port);
      if (flag === '--backend-store-uri') return `sqlite:///${join(dir, 'mlflow.db')}`;
      if (flag === '--artifacts-destination') return join(dir, 'artifacts');
      if (flag === '--workers') return '1';
      return a;
    });
    server = spawn(python, ['-m', 'mlflow', ...args], {
      detached: true,
      stdio: 'ignore',
      env: { ...process.env, MLFLOW_DISABLE_TELEMETRY: 'true' },
    });
    const path = '/api/2.0/mlflow/experiments/search?max_results=1';
    const deadline = Date.now() + 150_000;
    let status = 0;
    while (Date.now() < deadline) {
      status = await get(port, 'mlflow:5000', path).catch(() => 0);
      if (status !== 0) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    expect(status).toBe(200);
    expect(await get(port, 'mlflow', path)).toBe(200);
    expect(await get(port, 'attacker.example:5000', path)).toBe(403);
  }, 180_000);
});
