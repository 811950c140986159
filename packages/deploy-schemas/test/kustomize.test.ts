import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { assembleKustomization, strategicMerge } from '../src/index.js';

function tree(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'kustomize-'));
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  return dir;
}

const K = 'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n';
const DEPLOYMENT = `apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: web
          image: example/web:1.0
          env: [{name: A, value: '1'}, {name: B, value: '2'}]
        - name: side
          image: example/side@sha256:abc
`;

describe('assembleKustomization', () => {
  it('applies namespace, labels (templates too), images and strategic-merge patches through nested bases', () => {
    const dir = tree({
      'base/kustomization.yaml': `${K}namespace: ns\nlabels:\n  - pairs: {team: a}\n    includeTemplates: true\nresources: [web.yaml]\n`,
      'base/web.yaml': DEPLOYMENT,
      'overlay/kustomization.yaml': `${K}resources: [../base]\nimages:\n  - {name: example/web, newName: reg.io/web, newTag: '2.0'}\npatches:\n  - path: patch.yaml\n`,
      'overlay/patch.yaml': `apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  template:\n    spec:\n      containers:\n        - name: web\n          env: [{name: B, value: '3'}, {name: C, value: '4'}]\n`,
    });
    const [web] = assembleKustomization(join(dir, 'overlay'));
    const o = web?.object as unknown as {
      metadata: { namespace: string; labels: Record<string, string> };
      spec: {
        template: {
          metadata: { labels: Record<string, string> };
          spec: { containers: { image: string; env: unknown[] }[] };
        };
      };
    };
    expect(o.metadata).toMatchObject({ namespace: 'ns', labels: { team: 'a' } });
    expect(o.spec.template.metadata.labels).toEqual({ app: 'web', team: 'a' });
    const [main, side] = o.spec.template.spec.containers;
    expect(main?.image).toBe('reg.io/web:2.0');
    expect(side?.image).toBe('example/side@sha256:abc');
    expect(main?.env).toEqual([
      { name: 'A', value: '1' },
      { name: 'B', value: '3' },
      { name: 'C', value: '4' },
    ]);
  });

  it('refuses what it cannot assemble faithfully, naming the file', () => {
    const missing = tree({ 'kustomization.yaml': `${K}resources: [nope.yaml]\n` });
    expect(() => assembleKustomization(missing)).toThrow(
      /kustomization\.yaml: resource "nope\.yaml" does not exist/,
    );
    const unknown = tree({ 'kustomization.yaml': `${K}configMapGenerator: []\n` });
    expect(() => assembleKustomization(unknown)).toThrow(/field "configMapGenerator" is not supported/);
    const twice = tree({
      'kustomization.yaml': `${K}resources: [a.yaml, b.yaml]\n`,
      'a.yaml': DEPLOYMENT,
      'b.yaml': DEPLOYMENT,
    });
    expect(() => assembleKustomization(twice)).toThrow(/apps\/v1 Deployment web is defined twice/);
    const stray = tree({
      'kustomization.yaml': `${K}resources: [a.yaml]\npatches: [{path: p.yaml}]\n`,
      'a.yaml': DEPLOYMENT,
      'p.yaml': 'apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: other}\n',
    });
    expect(() => assembleKustomization(stray)).toThrow(
      /p\.yaml: patch target apps\/v1 Deployment other matches 0/,
    );
    const nameless = tree({
      'kustomization.yaml': `${K}resources: [a.yaml]\n`,
      'a.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n',
    });
    expect(() => assembleKustomization(nameless)).toThrow(/a\.yaml: document 1 has no metadata\.name/);
  });

  it('merges keyed lists by key, deletes on null and replaces other lists', () => {
    expect(
      strategicMerge(
        { volumeMounts: [{ mountPath: '/a', name: 'x' }], args: ['a', 'b'], keep: 1, drop: 2 },
        { volumeMounts: [{ mountPath: '/a', readOnly: true }], args: ['c'], drop: null },
      ),
    ).toEqual({ volumeMounts: [{ mountPath: '/a', name: 'x', readOnly: true }], args: ['c'], keep: 1 });
  });
});
