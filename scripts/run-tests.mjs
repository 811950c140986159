#!/usr/bin/env node
// The whole test suite: build, start one real redis-server and one MLflow server for every package,
// run each package's vitest through turbo, then print one summary line over all packages.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { root, workspaceDirs } from './workspaces.mjs';

const workspaces = workspaceDirs();
const extraArgs = process.argv.slice(2);
const started = Date.now();

const run = (cmd, args) => spawnSync(cmd, args, { cwd: root, stdio: 'inherit' }).status ?? 1;

for (const dir of workspaces) rmSync(join(dir, 'test-results'), { recursive: true, force: true });

if (run('npx', ['turbo', 'run', 'build', '--output-logs=errors-only']) !== 0) process.exit(1);
// The dependency rules (no app imports an app, no cycles) and the graph in docs/architecture.md.
if (run('npm', ['run', 'deps', '--silent']) !== 0) process.exit(1);
// The native TensorFlow engine (tfjs-node's addon, built from registry packages) for the native suites. Where it
// cannot be built, those suites skip and say why, except in our CI (LITS_STRICT_TESTS=1), where that fails here.
const strict = process.env.LITS_STRICT_TESTS === '1';
const engineArgs = ['packages/native-engine/dist/cli.js', 'install', ...(strict ? [] : ['--optional'])];
if (run('node', engineArgs) !== 0) process.exit(1);
// One package at a time: the machine has 2 cores and vitest already uses both within a package.
const status = run('node', [
  'packages/local-services/dist/cli.js',
  'run',
  '--',
  'npx',
  'turbo',
  'run',
  'test',
  '--concurrency=1',
  '--continue',
  ...extraArgs,
]);

const totals = { files: 0, passed: 0, failed: 0, skipped: 0 };
const failedPackages = [];
const failures = [];
for (const dir of workspaces) {
  const file = join(dir, 'test-results', 'vitest.json');
  if (!existsSync(file)) continue;
  const report = JSON.parse(readFileSync(file, 'utf8'));
  totals.files += report.numTotalTestSuites ? report.testResults.length : 0;
  totals.passed += report.numPassedTests;
  totals.failed += report.numFailedTests;
  totals.skipped += report.numPendingTests + (report.numTodoTests ?? 0);
  if (report.numFailedTests > 0 || report.success === false) failedPackages.push(dir.slice(root.length));
  for (const suite of report.testResults) {
    const where = join(dir.slice(root.length), suite.name.slice(dir.length + 1));
    // A file that failed before any test ran (an import or setup error) has no assertion results.
    if (suite.status === 'failed' && suite.assertionResults.every((test) => test.status !== 'failed')) {
      failures.push(`${where}: ${firstLines(suite.message)}`);
    }
    for (const test of suite.assertionResults) {
      if (test.status === 'failed')
        failures.push(`${where} > ${test.fullName}: ${firstLines(test.failureMessages.join('\n'))}`);
    }
  }
}
// CI shows only the end of the output: repeat each failure, with the start of its message, after the summary.
function firstLines(text = '') {
  return text.split('\n').slice(0, 6).join('\n    ');
}
const seconds = ((Date.now() - started) / 1000).toFixed(0);
console.log(
  `\nlits-ddp tests: ${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped ` +
    `in ${totals.files} files (${seconds} s)${failedPackages.length ? ` — failing: ${failedPackages.join(', ')}` : ''}`,
);
for (const failure of failures) console.log(`FAILED ${failure}`);
process.exit(status !== 0 || totals.failed > 0 ? 1 : 0);
