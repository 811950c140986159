import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '@lits-ddp/local-services';
import { serviceUrl } from '@lits-ddp/local-services/vitest';
import { collectSystemInfo, WorkerAgent } from '@lits-ddp/trainer';
import { CoordinatorClient } from '@lits-ddp/coordinator-client';
import { createLogger, startCoordinator, type RunningCoordinator } from '@lits-ddp/coordinator-service';
import { experimentJobName, loadKubernetesJobLauncher, type JobSettings } from '@lits-ddp/orchestrator';
import { KubernetesApiStandIn } from './kubernetes-api-stand-in.js';
import { phantomHome, tinySpec, TOKEN, waitFor } from './process-harness.js';

const KubernetesJobLauncher = await loadKubernetesJobLauncher();

const keyPrefix = `k8s-${randomBytes(3).toString('hex')}`;
process.env.LITS_KEY_PREFIX = keyPrefix;
const redisUrl = serviceUrl('redis');

const settings: JobSettings = {
  namespace: 'lits',
  image: 'lits-ddp/lits:cpu',
  engine: 'cpu',
  gpusPerPod: 0,
  dataClaim: 'lits-data',
  dataMountPath: '/data',
  envConfigMap: 'lits-config',
  ttlSecondsAfterFinished: 600,
  runAsUser: 1000,
};

describe.skipIf(!redisUrl)('k8s mode: the coordinator runs each experiment as an Indexed Job', () => {
  let api: KubernetesApiStandIn;
  let coordinator: RunningCoordinator;
  let client: CoordinatorClient;
  let decoy: WorkerAgent;
  const podLog: string[] = [];

  beforeAll(async () => {
    api = new KubernetesApiStandIn({
      podEnv: { REDIS_URL: redisUrl as string, LITS_KEY_PREFIX: keyPrefix },
      runPods: (job) => job.metadata?.annotations?.['lits-ddp/experiment-id']?.startsWith('runs-') === true,
      refuseCreate: (job) =>
        job.metadata?.name?.includes('forbidden')
          ? {
              code: 403,
              reason: 'Forbidden',
              message:
                'jobs.batch is forbidden: User "system:serviceaccount:lits:default" cannot create resource "jobs"',
            }
          : undefined,
      onPodOutput: (line) => podLog.push(line),
      crashFirstStart: (job, index) =>
        index === 1 &&
        job.metadata?.annotations?.['lits-ddp/experiment-id']?.startsWith('runs-crash-') === true,
    });
    await api.start();
    // A registered, idle worker that is not the Job's: k8s runs must never lease it.
    decoy = new WorkerAgent({
      redisUrl: redisUrl as string,
      workerId: 'decoy',
      engine: 'cpu',
      device: 'cpu',
      system: collectSystemInfo('4.22.0'),
      heartbeatIntervalS: 1,
    });
    await decoy.start();
    const { dataRoot, home } = await phantomHome();
    coordinator = await startCoordinator({
      redisUrl: redisUrl as string,
      port: await freePort(),
      tokens: [TOKEN],
      dataRoot,
      home,
      logger: createLogger('warn'),
      processor: {
        launcher: new KubernetesJobLauncher(settings, api.kubeConfig()),
        launcherPollMs: 300,
        // Long enough for pods to start on a busy machine; the Pending test waits it out once.
        waitForWorkersMs: 60_000,
      },
    });
    client = new CoordinatorClient({ url: coordinator.url, token: TOKEN });
  });

  afterAll(async () => {
    await coordinator?.close();
    await decoy?.stop();
    await api?.close();
  });

  const deletesOf = (name: string) =>
    api.requests
      .filter((r) => r.method === 'DELETE' && r.path === `/apis/batch/v1/namespaces/lits/jobs/${name}`)
      .map((r) => r.query.get('propagationPolicy'));

  /** Both pods exit 0 and the Job completes. */
  const expectJobComplete = async (name: string) => {
    const entry = api.jobs.get(name);
    await waitFor(
      'the pods to exit',
      async () => (entry?.exitCodes.every((c) => c !== null) ? true : undefined),
      30_000,
    );
    expect(entry?.exitCodes).toEqual([0, 0]);
    expect(entry?.job.status?.conditions?.[0]?.type).toBe('Complete');
  };

  const settle = (id: string, statuses: string[], ms = 240_000) =>
    waitFor(
      `experiment ${id} to reach ${statuses.join('/')}`,
      async () => {
        const e = await client.get(id);
        return statuses.includes(e.status) ? e : undefined;
      },
      ms,
    );

  it('trains on the Job pods: rank i is the pod of completion index i, and the pods exit 0 at the end', async () => {
    const id = `runs-${keyPrefix}`;
    await client.submit(tinySpec({ workers: 2, max_epochs: 2 }), { id });
    const done = await settle(id, ['finished', 'failed', 'cancelled']);
    expect(done.status, `${done.error ?? ''}\n${podLog.slice(-20).join('\n')}`).toBe('finished');
    expect(done.workerIds).toEqual([`${id}-w0`, `${id}-w1`]);
    const created = api.requests.filter(
      (r) => r.method === 'POST' && r.path === '/apis/batch/v1/namespaces/lits/jobs',
    );
    expect(created.map((r) => (r.body as { metadata: { name: string } }).metadata.name)).toContain(
      experimentJobName(id),
    );
    await expectJobComplete(experimentJobName(id));
    // A finished run's Job stays until ttlSecondsAfterFinished.
    expect(deletesOf(experimentJobName(id))).toEqual([]);
  }, 300_000);

  it('a replaced pod keeps its index, so its rank: the run restarts with the same ranks and finishes', async () => {
    const id = `runs-replaced-${keyPrefix}`;
    const name = experimentJobName(id);
    await client.submit(tinySpec({ workers: 2, max_epochs: 3, 'max-restarts': 2 }), { id });
    await waitFor('training to start', async () => {
      const e = await client.get(id);
      return e.status === 'running' && (e.progress?.fraction ?? 0) > 0 ? true : undefined;
    });
    api.killPod(name, 1);
    const done = await settle(id, ['finished', 'failed', 'cancelled']);
    expect(done.status, `${done.error ?? ''}\n${podLog.slice(-20).join('\n')}`).toBe('finished');
    expect(done.restarts).toBe(1);
    expect(done.workerIds).toEqual([`${id}-w0`, `${id}-w1`]);
    expect(api.podStarts(name)).toEqual([1, 2]);
  }, 300_000);

  it("a pod that crashes with Node's exit code 1 is replaced within backoffLimit: the Job does not fail, the run finishes", async () => {
    const id = `runs-crash-${keyPrefix}`;
    const name = experimentJobName(id);
    await client.submit(tinySpec({ workers: 2, max_epochs: 2, 'max-restarts': 1 }), { id });
    const done = await settle(id, ['finished', 'failed', 'cancelled']);
    expect(done.status, `${done.error ?? ''}\n${podLog.slice(-20).join('\n')}`).toBe('finished');
    expect(done.workerIds).toEqual([`${id}-w0`, `${id}-w1`]);
    const entry = api.jobs.get(name);
    expect(entry?.exits[0]).toEqual({ index: 1, code: 1 });
    expect(api.podStarts(name)).toEqual([1, 2]);
    await expectJobComplete(name);
  }, 300_000);

  it('a failed Job shows up in the experiment status with the reason Kubernetes gives', async () => {
    const id = `fails-${keyPrefix}`;
    const name = experimentJobName(id);
    await client.submit(tinySpec({ workers: 2 }), { id });
    await waitFor('the Job', async () => (api.jobs.has(name) ? true : undefined), 60_000);
    api.podsWaiting(name, 'ImagePullBackOff');
    await new Promise((r) => setTimeout(r, 1000));
    api.failJob(name, 'BackoffLimitExceeded', 'Job has reached the specified backoff limit');
    const done = await settle(id, ['finished', 'failed', 'cancelled'], 120_000);
    expect(done.status).toBe('failed');
    expect(done.error).toBe(
      `Kubernetes Job ${name} failed: BackoffLimitExceeded (Job has reached the specified backoff limit)`,
    );
    // Kubernetes ended its pods already; the Job stays until its TTL, so kubectl logs shows why.
    expect(deletesOf(name)).toEqual([]);
    expect(api.jobs.has(name)).toBe(true);
  }, 180_000);

  it('a run that fails while its Job is still active deletes the Job, so its Pending pods never start later', async () => {
    const id = `pending-${keyPrefix}`;
    const name = experimentJobName(id);
    await client.submit(tinySpec({ workers: 1, 'max-restarts': 0 }), { id });
    await waitFor('the Job', async () => (api.jobs.has(name) ? true : undefined), 60_000);
    const done = await settle(id, ['finished', 'failed', 'cancelled'], 150_000);
    expect(done.status).toBe('failed');
    expect(done.error).toMatch(/fewer than 1 live, free workers after waiting/);
    expect(deletesOf(name)).toEqual(['Background']);
    expect(api.jobs.has(name)).toBe(false);
  }, 240_000);

  it('cancel deletes the Job with Background propagation', async () => {
    const id = `cancel-${keyPrefix}`;
    const name = experimentJobName(id);
    await client.submit(tinySpec({ workers: 2 }), { id });
    await waitFor('the Job', async () => (api.jobs.has(name) ? true : undefined), 60_000);
    expect((await client.cancel(id)).status).toBe('cancelling');
    const done = await settle(id, ['finished', 'failed', 'cancelled'], 120_000);
    expect(done.status).toBe('cancelled');
    expect(deletesOf(name)).toEqual(['Background']);
    expect(api.jobs.has(name)).toBe(false);
  }, 180_000);

  it('a Job the API refuses fails the experiment with the API message', async () => {
    const id = `forbidden-${keyPrefix}`;
    await client.submit(tinySpec({ workers: 1 }), { id });
    const done = await settle(id, ['finished', 'failed', 'cancelled'], 60_000);
    expect(done.status).toBe('failed');
    expect(done.error).toMatch(
      new RegExp(
        `could not create Kubernetes Job ${experimentJobName(id)} in namespace lits: HTTP 403: jobs.batch is forbidden`,
      ),
    );
  }, 120_000);

  it('ensure() is idempotent (a coordinator taking a run over); remove() deletes, tolerates a Job already gone, keeps a failed one', async () => {
    const launcher = new KubernetesJobLauncher(settings, api.kubeConfig());
    const input = { experimentId: `twice-${keyPrefix}`, workers: 1, maxRestarts: 0, engineThreads: 1 };
    await launcher.ensure(input);
    await launcher.ensure(input);
    const name = experimentJobName(input.experimentId);
    expect(
      api.requests.filter(
        (r) => r.method === 'POST' && (r.body as { metadata: { name: string } }).metadata.name === name,
      ),
    ).toHaveLength(2);
    expect(await launcher.failure(input.experimentId)).toBeUndefined();
    expect(await launcher.warnings(input.experimentId)).toEqual([]);
    api.podsWaiting(name, 'ErrImagePull');
    expect(await launcher.warnings(input.experimentId)).toEqual([
      `pod ${name}-0-abcde: ErrImagePull (Back-off pulling image)`,
    ]);
    await launcher.remove(input.experimentId);
    await launcher.remove(input.experimentId);
    expect(deletesOf(name)).toEqual(['Background']);
    expect(await launcher.failure(input.experimentId)).toMatch(/no longer exists/);

    const failed = { experimentId: `kept-${keyPrefix}`, workers: 1, maxRestarts: 0, engineThreads: 1 };
    await launcher.ensure(failed);
    const keptName = experimentJobName(failed.experimentId);
    api.failJob(keptName, 'PodFailurePolicy', 'Container worker for pod 0 failed with exit code 3');
    await launcher.remove(failed.experimentId);
    expect(deletesOf(keptName)).toEqual([]);
    expect(api.jobs.has(keptName)).toBe(true);
  });
});
