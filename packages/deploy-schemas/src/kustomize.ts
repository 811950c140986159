import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { DeployFileError } from './errors.js';

/** A Kubernetes object as assembled, with the file it came from. */
export interface AssembledResource {
  source: string;
  object: KubeObject;
}

export type KubeObject = Record<string, unknown> & {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
};

interface ImageOverride {
  name: string;
  newName?: string;
  newTag?: string;
  digest?: string;
}

interface LabelSet {
  pairs: Record<string, string>;
  includeTemplates?: boolean;
}

interface Kustomization {
  resources: string[];
  namespace?: string;
  labels: LabelSet[];
  images: ImageOverride[];
  patches: { path: string }[];
}

/** The subset of kustomize this assembler implements; any other field is refused, not ignored. */
const KNOWN_FIELDS = new Set(['apiVersion', 'kind', 'resources', 'namespace', 'labels', 'images', 'patches']);
const CLUSTER_SCOPED = new Set([
  'Namespace',
  'ClusterRole',
  'ClusterRoleBinding',
  'PersistentVolume',
  'StorageClass',
]);
/** Strategic-merge keys of the lists our manifests patch; other lists are replaced. */
const MERGE_KEYS: Record<string, string> = {
  containers: 'name',
  initContainers: 'name',
  env: 'name',
  volumes: 'name',
  volumeMounts: 'mountPath',
  ports: 'containerPort',
};

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

function fail(file: string, message: string): never {
  throw new DeployFileError(file, message);
}

/** Parses every YAML document of a file; each must be a Kubernetes object with a name. */
export function readManifests(file: string): KubeObject[] {
  const docs = parseAllDocuments(readFileSync(file, 'utf8'));
  const out: KubeObject[] = [];
  for (const [i, doc] of docs.entries()) {
    if (doc.errors.length > 0) fail(file, `YAML document ${i + 1}: ${doc.errors[0]?.message}`);
    const value: unknown = doc.toJS();
    if (value === null || value === undefined) continue;
    if (!isRecord(value)) fail(file, `document ${i + 1} is not a mapping`);
    const meta = value.metadata;
    if (typeof value.apiVersion !== 'string' || typeof value.kind !== 'string' || !isRecord(meta))
      fail(file, `document ${i + 1} needs apiVersion, kind and metadata`);
    if (typeof meta.name !== 'string' || meta.name === '')
      fail(file, `document ${i + 1} has no metadata.name`);
    out.push(value as KubeObject);
  }
  return out;
}

function readKustomization(dir: string): { file: string; k: Kustomization } {
  const file = ['kustomization.yaml', 'kustomization.yml', 'Kustomization']
    .map((n) => join(dir, n))
    .find((f) => existsSync(f));
  if (!file) fail(dir, 'no kustomization.yaml');
  const docs = parseAllDocuments(readFileSync(file, 'utf8'));
  const raw: unknown = docs[0]?.toJS();
  if (docs.length !== 1 || !isRecord(raw)) fail(file, 'must hold exactly one mapping');
  for (const key of Object.keys(raw))
    if (!KNOWN_FIELDS.has(key)) fail(file, `field "${key}" is not supported by this assembler`);
  if (raw.kind !== 'Kustomization' || raw.apiVersion !== 'kustomize.config.k8s.io/v1beta1')
    fail(file, 'must be apiVersion kustomize.config.k8s.io/v1beta1, kind Kustomization');
  const list = (key: string): unknown[] => {
    const v = raw[key] ?? [];
    if (!Array.isArray(v)) fail(file, `${key} must be a list`);
    return v;
  };
  const resources = list('resources').map((r, i) =>
    typeof r === 'string' ? r : fail(file, `resources[${i}] must be a path`),
  );
  const labels = list('labels').map((l, i): LabelSet => {
    if (!isRecord(l) || !isRecord(l.pairs)) fail(file, `labels[${i}] needs pairs`);
    if (l.includeSelectors === true) fail(file, `labels[${i}]: includeSelectors is not supported`);
    const pairs = l.pairs;
    const bad = Object.keys(pairs).find((key) => typeof pairs[key] !== 'string');
    if (bad !== undefined) fail(file, `labels[${i}].pairs.${bad} must be a string`);
    return { pairs: pairs as Record<string, string>, includeTemplates: l.includeTemplates === true };
  });
  const images = list('images').map((im, i): ImageOverride => {
    if (!isRecord(im) || typeof im.name !== 'string') fail(file, `images[${i}] needs a name`);
    const bad = (['newName', 'newTag', 'digest'] as const).find(
      (key) => im[key] !== undefined && typeof im[key] !== 'string',
    );
    if (bad) fail(file, `images[${i}].${bad} must be a string`);
    return im as unknown as ImageOverride;
  });
  const patches = list('patches').map((p, i) => {
    if (!isRecord(p) || typeof p.path !== 'string' || Object.keys(p).length !== 1)
      fail(file, `patches[${i}] must be {path} (a strategic-merge patch file)`);
    return { path: p.path };
  });
  if (raw.namespace !== undefined && typeof raw.namespace !== 'string')
    fail(file, 'namespace must be a string');
  return {
    file,
    k: {
      resources,
      labels,
      images,
      patches,
      ...(raw.namespace ? { namespace: raw.namespace as string } : {}),
    },
  };
}

/** Strategic merge, limited to what MERGE_KEYS names: maps merge, `null` deletes, keyed lists merge by key. */
export function strategicMerge(base: unknown, patch: unknown, field = ''): unknown {
  if (patch === null) return undefined;
  if (Array.isArray(patch) && Array.isArray(base) && MERGE_KEYS[field]) {
    const key = MERGE_KEYS[field];
    const out = [...base];
    for (const item of patch) {
      const at = isRecord(item) ? out.findIndex((b) => isRecord(b) && b[key] === item[key]) : -1;
      if (at >= 0) out[at] = strategicMerge(out[at], item);
      else out.push(item);
    }
    return out;
  }
  if (!isRecord(patch) || !isRecord(base)) return patch;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(patch)) {
    const merged = strategicMerge(base[k], v, k);
    if (merged === undefined) delete out[k];
    else out[k] = merged;
  }
  return out;
}

/** The pod specs inside a workload (Deployment/StatefulSet/Job templates, or a Pod). */
export function podSpecs(obj: KubeObject): Record<string, unknown>[] {
  if (obj.kind === 'Pod' && isRecord(obj.spec)) return [obj.spec];
  const template = isRecord(obj.spec) && isRecord(obj.spec.template) ? obj.spec.template : undefined;
  return template && isRecord(template.spec) ? [template.spec] : [];
}

function containersOf(obj: KubeObject): Record<string, unknown>[] {
  return podSpecs(obj).flatMap((spec) =>
    [spec.containers, spec.initContainers].flatMap((c) => (Array.isArray(c) ? c.filter(isRecord) : [])),
  );
}

function applyImages(obj: KubeObject, images: ImageOverride[]): void {
  for (const c of containersOf(obj)) {
    if (typeof c.image !== 'string') continue;
    const name = c.image.replace(/@.*$/, '').replace(/:[^/:]*$/, '');
    const override = images.find((im) => im.name === name);
    if (!override) continue;
    const suffix = override.digest
      ? `@${override.digest}`
      : override.newTag
        ? `:${override.newTag}`
        : c.image.slice(name.length);
    c.image = `${override.newName ?? name}${suffix}`;
  }
}

const idOf = (o: KubeObject): string => `${o.apiVersion} ${o.kind} ${o.metadata.name}`;

/**
 * Builds a kustomization the way `kustomize build` does for the fields it supports: resources
 * (files and nested kustomizations), namespace, labels, images and strategic-merge patches. Every
 * path must resolve; a patch must hit exactly one resource.
 */
export function assembleKustomization(dir: string): AssembledResource[] {
  const root = resolve(dir);
  const { file, k } = readKustomization(root);
  const out: AssembledResource[] = [];
  for (const entry of k.resources) {
    const path = resolve(root, entry);
    if (!existsSync(path)) fail(file, `resource "${entry}" does not exist`);
    if (statSync(path).isDirectory()) out.push(...assembleKustomization(path));
    else
      out.push(...readManifests(path).map((object) => ({ source: relative(process.cwd(), path), object })));
  }
  const ids = new Set<string>();
  for (const r of out) {
    if (ids.has(idOf(r.object))) fail(file, `${idOf(r.object)} is defined twice`);
    ids.add(idOf(r.object));
  }
  for (const { path } of k.patches) {
    const patchFile = resolve(root, path);
    if (!existsSync(patchFile)) fail(file, `patch "${path}" does not exist`);
    for (const patch of readManifests(patchFile)) {
      const hits = out.filter(
        (r) =>
          r.object.kind === patch.kind &&
          r.object.apiVersion === patch.apiVersion &&
          r.object.metadata.name === patch.metadata.name,
      );
      if (hits.length !== 1) fail(patchFile, `patch target ${idOf(patch)} matches ${hits.length} resources`);
      const hit = hits[0] as AssembledResource;
      hit.object = strategicMerge(hit.object, patch) as KubeObject;
    }
  }
  for (const r of out) {
    const o = r.object;
    if (k.namespace && !CLUSTER_SCOPED.has(o.kind)) o.metadata.namespace = k.namespace;
    for (const set of k.labels) {
      o.metadata.labels = { ...o.metadata.labels, ...set.pairs };
      if (!set.includeTemplates) continue;
      // Pod templates and a StatefulSet's volume claim templates, as kustomize does.
      const spec = isRecord(o.spec) ? o.spec : {};
      const templates = [
        spec.template,
        ...(Array.isArray(spec.volumeClaimTemplates) ? spec.volumeClaimTemplates : []),
      ];
      for (const template of templates.filter(isRecord)) {
        const meta = isRecord(template.metadata) ? template.metadata : (template.metadata = {});
        meta.labels = { ...(isRecord(meta.labels) ? meta.labels : {}), ...set.pairs };
      }
    }
    applyImages(o, k.images);
  }
  return out;
}

/** Absolute paths of every file a kustomization tree names: kustomizations, resources and patches. */
export function kustomizationFiles(dir: string): string[] {
  const root = resolve(dir);
  const { file, k } = readKustomization(root);
  const files = [file];
  for (const entry of k.resources) {
    const path = resolve(root, entry);
    if (existsSync(path) && statSync(path).isDirectory()) files.push(...kustomizationFiles(path));
    else files.push(path);
  }
  files.push(...k.patches.map((p) => resolve(root, p.path)));
  return files;
}
