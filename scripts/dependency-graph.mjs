#!/usr/bin/env node
// The workspace dependency graph of docs/architecture.md, generated from the code by dependency-cruiser.
//   node scripts/dependency-graph.mjs --write   rewrite the graph between the markers
//   node scripts/dependency-graph.mjs --check   exit 1 when the doc's graph is not the code's (CI)
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { root } from './workspaces.mjs';

const DOC = join(root, 'docs', 'architecture.md');
const START = '<!-- dependency-graph:start (npm run deps:graph) -->';
const END = '<!-- dependency-graph:end -->';

const cruise = spawnSync(
  join(root, 'node_modules', '.bin', 'depcruise'),
  [
    'apps',
    'packages',
    '--config',
    '.dependency-cruiser.cjs',
    '--include-only',
    '^(apps|packages)/[^/]+/src/',
    '--collapse',
    '^(packages|apps)/[^/]+',
    '--output-type',
    'mermaid',
  ],
  { cwd: root, encoding: 'utf8' },
);
if (cruise.status !== 0) {
  process.stderr.write(cruise.stderr || cruise.stdout);
  process.exit(1);
}
const block = `${START}\n\n\`\`\`mermaid\n${cruise.stdout.trim()}\n\`\`\`\n\n${END}`;

const doc = readFileSync(DOC, 'utf8');
const from = doc.indexOf(START);
const to = doc.indexOf(END);
if (from < 0 || to < from) {
  process.stderr.write(`${DOC}: the markers ${START} … ${END} are missing\n`);
  process.exit(1);
}
const updated = doc.slice(0, from) + block + doc.slice(to + END.length);

if (process.argv.includes('--write')) {
  writeFileSync(DOC, updated);
  console.log(`dependency graph written to ${DOC}`);
} else if (updated !== doc) {
  process.stderr.write(
    'docs/architecture.md: the dependency graph is not the code’s; run `npm run deps:graph`\n',
  );
  process.exit(1);
} else {
  console.log('docs/architecture.md: the dependency graph matches the code');
}
