import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { V1Container, V1EnvVar } from '@kubernetes/client-node';
import { validateKubernetes, readLitsCommandTable } from '@lits-ddp/deploy-schemas';
import { RUN_FAILED_EXIT_CODE as WORKER_RUN_FAILED_EXIT_CODE, runWorkerCli } from '@lits-ddp/trainer';
import {
  buildExperimentJob,
  experimentJobName,
  experimentLabelValue,
  experimentWorkerIds,
  readJobSettings,
  launcherKind,
  RUN_FAILED_EXIT_CODE,
  WORKER_CONTAINER,
  type JobSettings,
} from '@lits-ddp/orchestrator';

const settings: JobSettings = {
  namespace: 'lits',
  image: 'registry.example/lits-ddp/lits:gpu',
  engine: 'gpu',
  gpusPerPod: 1,
  dataClaim: 'lits-data',
  dataMountPath: '/data',
  envConfigMap: 'lits-config',
  ttlSecondsAfterFinished: 3600,
  runAsUser: 1000,
};
const cliMain = fileURLToPath(new URL('../../../apps/cli/src/main.ts', import.meta.url));

function workerContainer(job: ReturnType<typeof buildExperimentJob>): V1Container {
  const c = job.spec?.template.spec?.containers[0];
  if (!c) throw new Error('no container');
  return c;
}

/** Kubernetes' $(VAR) expansion: each env value sees the variables defined before it. */
function expand(value: string, env: Record<string, string>): string {
  return value.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (whole, name: string) => env[name] ?? whole);
}

function podEnvironment(vars: V1EnvVar[], index: number): Record<string, string> {
  const env: Record<string, string> = {};
  for (const v of vars) {
    if (
      v.valueFrom?.fieldRef?.fieldPath === "metadata.annotations['batch.kubernetes.io/job-completion-index']"
    )
      env[v.name] = String(index);
    else env[v.name] = expand(v.value ?? '', env);
  }
  return env;
}

describe('buildExperimentJob', () => {
  const job = buildExperimentJob(
    { experimentId: 'exp-20261126-abcd', workers: 4, maxRestarts: 3, engineThreads: 1 },
    settings,
  );

  it('is a valid batch/v1 Job under the strict Kubernetes 1.32 schema', () => {
    expect(validateKubernetes(job, 'buildExperimentJob')).toEqual([]);
  });

  it('is Indexed with completions = parallelism = workers, backoffLimit = max-restarts and a TTL', () => {
    expect(job.metadata).toMatchObject({
      name: 'lits-exp-20261126-abcd',
      namespace: 'lits',
      labels: { 'lits-ddp/experiment-id': 'exp-20261126-abcd', 'app.kubernetes.io/part-of': 'lits-ddp' },
      annotations: { 'lits-ddp/experiment-id': 'exp-20261126-abcd' },
    });
    expect(job.spec).toMatchObject({
      completionMode: 'Indexed',
      completions: 4,
      parallelism: 4,
      backoffLimit: 3,
      ttlSecondsAfterFinished: 3600,
    });
    expect(job.spec?.template.metadata?.labels).toEqual(job.metadata?.labels);
    expect(job.spec?.template.spec?.restartPolicy).toBe('Never');
  });

  it("fails the Job at once only on lits worker's run-failed exit code; crashes (Node's exit 1) use backoffLimit", () => {
    expect(RUN_FAILED_EXIT_CODE).toBe(WORKER_RUN_FAILED_EXIT_CODE);
    expect(RUN_FAILED_EXIT_CODE).not.toBe(1);
    expect(job.spec?.podFailurePolicy).toEqual({
      rules: [
        {
          action: 'FailJob',
          onExitCodes: { containerName: WORKER_CONTAINER, operator: 'In', values: [RUN_FAILED_EXIT_CODE] },
        },
        { action: 'Ignore', onPodConditions: [{ type: 'DisruptionTarget', status: 'True' }] },
      ],
    });
    expect(workerContainer(job).name).toBe(WORKER_CONTAINER);
  });

  it('asks one nvidia.com/gpu per pod and mounts the data PVC where the coordinator has it', () => {
    const c = workerContainer(job);
    expect(c.resources?.limits).toEqual({ 'nvidia.com/gpu': '1' });
    expect(c.volumeMounts).toEqual([{ name: 'data', mountPath: '/data' }]);
    expect(job.spec?.template.spec?.volumes).toEqual([
      { name: 'data', persistentVolumeClaim: { claimName: 'lits-data' } },
    ]);
    expect(c.envFrom).toEqual([{ configMapRef: { name: 'lits-config' } }]);
    const cpu = buildExperimentJob(
      { experimentId: 'e', workers: 1, maxRestarts: 0, engineThreads: 1 },
      { ...settings, gpusPerPod: 0 },
    );
    expect(workerContainer(cpu).resources?.limits).toBeUndefined();
    expect(validateKubernetes(cpu)).toEqual([]);
  });

  it('rank = JOB_COMPLETION_INDEX: pod i runs lits worker --id <id>-w<i>, the supervisor ranks in that order', () => {
    const c = workerContainer(job);
    const ids = experimentWorkerIds('exp-20261126-abcd', 4);
    for (let index = 0; index < 4; index++) {
      const env = podEnvironment(c.env ?? [], index);
      const args = (c.args ?? []).map((a) => expand(a, env));
      expect(args).toEqual([
        'worker',
        '--id',
        ids[index],
        '--engine',
        'gpu',
        '--threads',
        '1',
        '--exit-when-run-ends',
        'exp-20261126-abcd',
      ]);
      expect(env.TFJS_ENGINE).toBe('gpu');
    }
  });

  it('runs a lits command CI runs: in the command table, and lits worker accepts every flag', async () => {
    const [command, ...rest] = workerContainer(job).args ?? [];
    expect(readLitsCommandTable(cliMain)).toContain(command);
    const printed: string[] = [];
    const write = process.stdout.write.bind(process.stdout);
    process.stdout.write = ((chunk: string) => printed.push(chunk) > 0) as typeof process.stdout.write;
    try {
      expect(await runWorkerCli([...rest, '--help'])).toBe(0);
    } finally {
      process.stdout.write = write;
    }
    expect(printed.join('')).toMatch(/--exit-when-run-ends/);
  });

  it('names Jobs within the limits of pod hostnames, whatever the experiment id', () => {
    for (const id of ['exp-1', 'Exp.With_Dots', 'x'.repeat(128), 'a-', 'A']) {
      const name = experimentJobName(id);
      expect(name).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
      expect(`${name}-99999`.length).toBeLessThanOrEqual(63);
      const label = experimentLabelValue(id);
      expect(label.length).toBeLessThanOrEqual(63);
      const j = buildExperimentJob(
        { experimentId: id, workers: 1, maxRestarts: 0, engineThreads: 1 },
        settings,
      );
      expect(validateKubernetes(j, id)).toEqual([]);
    }
    expect(experimentJobName('Exp.With_Dots')).not.toBe(experimentJobName('exp-with-dots'));
  });

  it('refuses impossible inputs', () => {
    expect(() =>
      buildExperimentJob({ experimentId: 'e', workers: 0, maxRestarts: 0, engineThreads: 1 }, settings),
    ).toThrow(/workers/);
    expect(() =>
      buildExperimentJob({ experimentId: 'e', workers: 1, maxRestarts: -1, engineThreads: 1 }, settings),
    ).toThrow(/max-restarts/);
  });
});

describe('k8s settings from the environment', () => {
  it('reads LITS_K8S_* with defaults, as the k8s/ ConfigMap sets them', () => {
    expect(launcherKind({})).toBe('local');
    expect(launcherKind({ LITS_LAUNCHER: 'kubernetes' })).toBe('kubernetes');
    expect(
      readJobSettings({
        LITS_K8S_NAMESPACE: 'lits',
        LITS_K8S_WORKER_IMAGE: 'img:1',
        LITS_K8S_ENV_CONFIGMAP: 'lits-config',
      }),
    ).toEqual({
      namespace: 'lits',
      image: 'img:1',
      engine: 'gpu',
      gpusPerPod: 1,
      dataClaim: 'lits-data',
      dataMountPath: '/data',
      envConfigMap: 'lits-config',
      ttlSecondsAfterFinished: 86_400,
      runAsUser: 1000,
    });
  });

  it('names the variable and the reason when a setting is wrong', () => {
    const base = { LITS_K8S_NAMESPACE: 'lits', LITS_K8S_WORKER_IMAGE: 'img:1' };
    expect(() => launcherKind({ LITS_LAUNCHER: 'k8s' })).toThrow(
      /LITS_LAUNCHER must be local or kubernetes, got "k8s"/,
    );
    expect(() => readJobSettings({ LITS_K8S_NAMESPACE: 'lits' })).toThrow(
      /LITS_K8S_WORKER_IMAGE must be set/,
    );
    expect(() => readJobSettings({ ...base, LITS_K8S_GPUS_PER_POD: 'one' })).toThrow(
      /LITS_K8S_GPUS_PER_POD must be an integer ≥ 0, got "one"/,
    );
    expect(() => readJobSettings({ ...base, LITS_K8S_WORKER_ENGINE: 'cuda' })).toThrow(
      /LITS_K8S_WORKER_ENGINE must be one of auto, gpu, node, cpu/,
    );
    expect(() => readJobSettings({ ...base, LITS_K8S_DATA_CLAIM: 'Data_PVC' })).toThrow(
      /LITS_K8S_DATA_CLAIM must be a DNS label/,
    );
    expect(() => readJobSettings({ ...base, LITS_K8S_DATA_MOUNT: 'data' })).toThrow(
      /LITS_K8S_DATA_MOUNT must be an absolute path/,
    );
  });
});
