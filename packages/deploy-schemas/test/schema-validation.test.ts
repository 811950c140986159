import { describe, expect, it } from 'vitest';
import { assertNoIssues, kubernetesKinds, validateCompose, validateKubernetes } from '../src/index.js';

const job = (spec: Record<string, unknown>): Record<string, unknown> => ({
  apiVersion: 'batch/v1',
  kind: 'Job',
  metadata: { name: 'lits-x' },
  spec: {
    template: {
      spec: { restartPolicy: 'Never', containers: [{ name: 'worker', image: 'lits-ddp/lits:gpu' }] },
    },
    ...spec,
  },
});

describe('Kubernetes schemas (v1.32, strict)', () => {
  it('vendors every kind the manifests and the Job builder use', () => {
    expect(kubernetesKinds()).toEqual(
      expect.arrayContaining([
        'batch/v1 Job',
        'apps/v1 Deployment',
        'apps/v1 StatefulSet',
        'v1 Service',
        'v1 ConfigMap',
        'v1 Secret',
        'v1 PersistentVolumeClaim',
        'v1 Namespace',
        'v1 ServiceAccount',
        'rbac.authorization.k8s.io/v1 Role',
        'rbac.authorization.k8s.io/v1 RoleBinding',
      ]),
    );
  });

  it('accepts an Indexed Job and rejects misspelt fields and wrong types', () => {
    expect(validateKubernetes(job({ completionMode: 'Indexed', completions: 2, parallelism: 2 }))).toEqual(
      [],
    );
    const issues = validateKubernetes(job({ completionMod: 'Indexed', backoffLimit: '3' }), 'job.yaml');
    expect(issues).toEqual(
      expect.arrayContaining([
        { file: 'job.yaml', path: '/spec', message: 'unknown field "completionMod"' },
        expect.objectContaining({ path: '/spec/backoffLimit' }),
      ]),
    );
    expect(() => assertNoIssues(issues)).toThrow(/job\.yaml \/spec: unknown field "completionMod"/);
  });

  it('checks int32 ranges and nested container fields', () => {
    const issues = validateKubernetes(
      job({
        backoffLimit: 2 ** 31,
        template: { spec: { containers: [{ name: 'w', image: 'x', comand: ['lits'] }] } },
      }),
    );
    expect(issues.map((i) => i.path)).toEqual(
      expect.arrayContaining(['/spec/backoffLimit', '/spec/template/spec/containers/0']),
    );
  });

  it('reports a kind it has no schema for instead of passing it', () => {
    const [issue] = validateKubernetes(
      { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' } },
      'pod.yaml',
    );
    expect(issue).toMatchObject({
      file: 'pod.yaml',
      path: '/kind',
      message: expect.stringContaining('no schema for v1 Pod'),
    });
    expect(validateKubernetes([], 'list.yaml')[0]?.message).toMatch(/must be a mapping/);
  });
});

describe('Compose Specification schema', () => {
  it('accepts GPU reservations, healthchecks and ports, and rejects typos and bad durations', () => {
    const service = {
      image: 'x',
      ports: ['8080:8080', '127.0.0.1:5000:5000/tcp'],
      healthcheck: { test: ['CMD', 'true'], interval: '1m30s', start_period: '500ms' },
      deploy: {
        resources: {
          reservations: { devices: [{ driver: 'nvidia', device_ids: ['0'], capabilities: ['gpu'] }] },
        },
      },
    };
    expect(validateCompose({ services: { a: service } })).toEqual([]);
    const issues = validateCompose({
      services: { a: { ...service, comand: ['x'], healthcheck: { interval: 'soon' }, ports: ['80:eighty'] } },
      volums: {},
    });
    expect(issues.map((i) => `${i.path} ${i.message}`)).toEqual(
      expect.arrayContaining([
        '/ unknown field "volums"',
        '/services/a unknown field "comand"',
        '/services/a/healthcheck/interval must match format "duration"',
      ]),
    );
    expect(issues.some((i) => i.path.startsWith('/services/a/ports/0'))).toBe(true);
  });
});
