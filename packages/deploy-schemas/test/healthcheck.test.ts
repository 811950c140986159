import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '@lits-ddp/local-services';
import { serviceUrl } from '@lits-ddp/local-services/vitest';
import { execForm, finalStage, parseDockerfile } from '../src/index.js';
import { litsMain, repoPath } from './repo.js';

const redisUrl = serviceUrl('redis');
const script = repoPath('docker/healthcheck.mjs');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The HEALTHCHECK of an image's final stage, as an argv (its exec form). */
function healthcheckArgv(file: string): string[] {
  const df = parseDockerfile(repoPath(file));
  const ins = finalStage(df).find((i) => i.keyword === 'HEALTHCHECK');
  const json = ins?.args.replace(/^.*?CMD\s+/, '') ?? '';
  const argv = JSON.parse(json) as string[];
  expect(execForm(df, 'ENTRYPOINT')).toEqual(['lits']);
  // Inside the image the script lives at /app/docker/healthcheck.mjs; here, in the repository.
  return argv.map((a) => (a === '/app/docker/healthcheck.mjs' ? script : a));
}

function probe(argv: string[], env: NodeJS.ProcessEnv): { status: number | null; out: string } {
  const [cmd, ...args] = argv;
  const run = spawnSync(cmd === 'node' ? process.execPath : (cmd as string), args, {
    encoding: 'utf8',
    env: { ...process.env, ...env },
    timeout: 30_000,
    // Resolves ioredis and @lits-ddp/protocol from the repository's node_modules, as /app does in the image.
    cwd: repoPath('.'),
  });
  return { status: run.status, out: `${run.stdout}${run.stderr}` };
}

async function until(check: () => boolean, what: string, ms = 90_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (check()) return;
    await sleep(500);
  }
  throw new Error(`timed out waiting for ${what}`);
}

const children: ChildProcess[] = [];
afterAll(() => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
});

describe.skipIf(!redisUrl)('image healthchecks against real processes', () => {
  it('worker image: healthy while its lits worker heartbeats, unhealthy once it is gone', async () => {
    const argv = healthcheckArgv('docker/gpu-worker.Dockerfile');
    // A key prefix of its own, so workers of other tests on this host do not count.
    const env = { REDIS_URL: redisUrl, LITS_KEY_PREFIX: `hc-${randomBytes(4).toString('hex')}` };
    expect(probe(argv, env)).toMatchObject({
      status: 1,
      out: expect.stringMatching(/no heartbeating worker/),
    });
    const worker = spawn(process.execPath, [litsMain(), 'worker', '--engine', 'cpu', '--heartbeat-s', '1'], {
      env: { ...process.env, ...env },
      stdio: 'ignore',
    });
    children.push(worker);
    await until(() => probe(argv, env).status === 0, 'the worker to heartbeat');
    expect(probe(argv, env).out).toMatch(/heartbeats/);
    worker.kill('SIGKILL');
    await until(() => probe(argv, env).status === 1, 'the heartbeat to expire', 30_000);
    expect(probe(argv, { REDIS_URL: '' }).out).toMatch(/REDIS_URL is not set/);
  }, 150_000);

  it('coordinator image: healthy while lits serve answers /healthz on PORT', async () => {
    const argv = healthcheckArgv('docker/coordinator.Dockerfile');
    const port = String(await freePort());
    const env = { PORT: port };
    expect(probe(argv, env).status).toBe(1);
    const serve = spawn(process.execPath, [litsMain(), 'serve', '--no-auth', '--port', port], {
      env: {
        ...process.env,
        REDIS_URL: redisUrl,
        LITS_KEY_PREFIX: `hc-${randomBytes(4).toString('hex')}`,
        LITS_HOME: repoPath('packages/deploy-schemas/test-results/home'),
      },
      stdio: 'ignore',
    });
    children.push(serve);
    await until(() => probe(argv, env).status === 0, 'lits serve to answer');
    serve.kill('SIGTERM');
  }, 150_000);
});
