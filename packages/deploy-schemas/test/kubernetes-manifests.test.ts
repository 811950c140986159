import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  assembleKustomization,
  kustomizationFiles,
  podSpecs,
  validateKubernetes,
  type KubeObject,
} from '../src/index.js';
import { repoPath } from './repo.js';

const overlays = ['gpu', 'cpu'];
const assembled = Object.fromEntries(
  overlays.map((o) => [o, assembleKustomization(repoPath('k8s/overlays', o))]),
);

function yamlFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return yamlFiles(path);
    return /\.ya?ml$/.test(name) ? [resolve(path)] : [];
  });
}

const find = (objects: KubeObject[], kind: string, name: string): KubeObject => {
  const hit = objects.find((o) => o.kind === kind && o.metadata.name === name);
  if (!hit) throw new Error(`no ${kind} ${name}`);
  return hit;
};

type Container = {
  name: string;
  image: string;
  args?: string[];
  envFrom?: unknown[];
  env?: { name: string }[];
};

describe('k8s/ manifests', () => {
  it.each(overlays)(
    'overlay %s: every assembled resource is valid against the Kubernetes 1.32 schemas',
    (o) => {
      const resources = assembled[o] ?? [];
      expect(resources.length).toBeGreaterThan(10);
      expect(resources.flatMap((r) => validateKubernetes(r.object, r.source))).toEqual([]);
    },
  );

  it('every YAML file under k8s/ is reached by an overlay (nothing escapes validation)', () => {
    const used = new Set(overlays.flatMap((o) => kustomizationFiles(repoPath('k8s/overlays', o))));
    expect(yamlFiles(repoPath('k8s')).filter((f) => !used.has(f))).toEqual([]);
  });

  it('holds the namespace, Redis with a PVC, MLflow with a PVC and a Service, the coordinator, settings and data', () => {
    const objects = (assembled.gpu ?? []).map((r) => r.object);
    const kinds = objects.map((o) => `${o.kind}/${o.metadata.name}`);
    expect(kinds).toEqual(
      expect.arrayContaining([
        'Namespace/lits',
        'StatefulSet/redis',
        'Service/redis',
        'PersistentVolumeClaim/mlflow-data',
        'Deployment/mlflow',
        'Service/mlflow',
        'Deployment/lits-coordinator',
        'Service/lits-coordinator',
        'ServiceAccount/lits-coordinator',
        'Role/lits-coordinator',
        'RoleBinding/lits-coordinator',
        'ConfigMap/lits-config',
        'PersistentVolumeClaim/lits-data',
      ]),
    );
    for (const o of objects)
      if (o.kind !== 'Namespace') expect(o.metadata.namespace, kinds.join()).toBe('lits');
    const redis = find(objects, 'StatefulSet', 'redis') as unknown as {
      spec: { volumeClaimTemplates: unknown[] };
    };
    expect(redis.spec.volumeClaimTemplates).toHaveLength(1);
    const [redisContainer] = podSpecs(find(objects, 'StatefulSet', 'redis')).flatMap(
      (s) => s.containers as Container[],
    );
    expect(redisContainer?.args?.join(' ')).toMatch(/--appendonly yes/);
  });

  it('lets the coordinator create, follow and delete Jobs and read pods, and nothing more', () => {
    const objects = (assembled.gpu ?? []).map((r) => r.object);
    const role = find(objects, 'Role', 'lits-coordinator') as unknown as {
      rules: { apiGroups: string[]; resources: string[]; verbs: string[] }[];
    };
    expect(role.rules).toEqual([
      { apiGroups: ['batch'], resources: ['jobs'], verbs: ['create', 'get', 'list', 'watch', 'delete'] },
      { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch'] },
    ]);
    const binding = find(objects, 'RoleBinding', 'lits-coordinator') as unknown as {
      subjects: { kind: string; name: string; namespace: string }[];
    };
    expect(binding.subjects).toEqual([
      { kind: 'ServiceAccount', name: 'lits-coordinator', namespace: 'lits' },
    ]);
    const spec = podSpecs(find(objects, 'Deployment', 'lits-coordinator'))[0];
    expect(spec?.serviceAccountName).toBe('lits-coordinator');
  });

  it.each([
    ['gpu', 'lits-ddp/lits:gpu-node24-cuda12.5', 'gpu', '1'],
    ['cpu', 'lits-ddp/lits:cpu-node24', 'cpu', '0'],
  ])(
    'overlay %s: the coordinator runs in k8s mode with the Job settings of that overlay',
    (o, image, engine, gpus) => {
      const objects = (assembled[o] ?? []).map((r) => r.object);
      const config = find(objects, 'ConfigMap', 'lits-config') as unknown as { data: Record<string, string> };
      expect(config.data).toMatchObject({
        LITS_LAUNCHER: 'kubernetes',
        LITS_K8S_WORKER_IMAGE: image,
        LITS_K8S_WORKER_ENGINE: engine,
        LITS_K8S_GPUS_PER_POD: gpus,
        LITS_K8S_DATA_CLAIM: 'lits-data',
        REDIS_URL: 'redis://redis:6379',
        MLFLOW_TRACKING_URI: 'http://mlflow:5000',
      });
      const [coordinator] = podSpecs(find(objects, 'Deployment', 'lits-coordinator')).flatMap(
        (s) => s.containers as Container[],
      );
      expect(coordinator?.envFrom).toEqual([
        { configMapRef: { name: 'lits-config' } },
        { secretRef: { name: 'lits-api-token' } },
      ]);
      expect(coordinator?.env?.map((e) => e.name)).toContain('LITS_K8S_NAMESPACE');
      expect(coordinator?.image).toBe('lits-ddp/lits:cpu-node24');
    },
  );

  it('overlay gpu: the worker pods get allow-growth and PCI bus order from the ConfigMap; overlay cpu does not', () => {
    const data = (o: string) =>
      (
        find(
          (assembled[o] ?? []).map((r) => r.object),
          'ConfigMap',
          'lits-config',
        ) as unknown as {
          data: Record<string, string>;
        }
      ).data;
    expect(data('gpu')).toMatchObject({
      LITS_K8S_ENV_CONFIGMAP: 'lits-config',
      TF_FORCE_GPU_ALLOW_GROWTH: 'true',
      CUDA_DEVICE_ORDER: 'PCI_BUS_ID',
    });
    expect(data('cpu').TF_FORCE_GPU_ALLOW_GROWTH).toBeUndefined();
  });

  it.each(overlays)(
    'overlay %s: holds no Secret and no token, so re-applying it never resets the one created by hand',
    (o) => {
      const resources = assembled[o] ?? [];
      expect(resources.filter((r) => r.object.kind === 'Secret').map((r) => r.source)).toEqual([]);
      for (const r of resources) expect(JSON.stringify(r.object), r.source).not.toMatch(/LITS_API_TOKEN/);
      const docs = readFileSync(repoPath('docs/deploy.md'), 'utf8');
      expect(docs).toMatch(/kubectl -n lits create secret generic lits-api-token/);
    },
  );

  it('lists the in-cluster MLflow names in --allowed-hosts, with and without the port', () => {
    const objects = (assembled.gpu ?? []).map((r) => r.object);
    const [mlflow] = podSpecs(find(objects, 'Deployment', 'mlflow')).flatMap(
      (s) => s.containers as Container[],
    );
    const args = mlflow?.args ?? [];
    const hosts = (args[args.indexOf('--allowed-hosts') + 1] ?? '').split(',');
    expect(hosts).toEqual(
      expect.arrayContaining(['mlflow', 'mlflow:5000', 'mlflow.lits.svc.cluster.local:5000']),
    );
  });
});
