#!/usr/bin/env node
// `npm run bench [-- NAME …]`: every package's benchmark through turbo, one at a time (they measure the machine,
// so never two at once), with each benchmark's output passed through to stderr. The last stdout line is one JSON
// object keyed by package name, holding each benchmark's own last JSON line. NAMEs (`allreduce unet`) pick a subset.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { root, workspaceDirs } from './workspaces.mjs';

const wanted = process.argv.slice(2);
const benches = workspaceDirs()
  .map((dir) => JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')))
  .filter((pkg) => pkg.scripts?.bench)
  .filter((pkg) => wanted.length === 0 || wanted.some((w) => pkg.name === w || pkg.name.endsWith(`/${w}`)));
if (wanted.length > 0 && benches.length === 0) {
  process.stderr.write(`no benchmark matches ${wanted.join(', ')}\n`);
  process.exit(2);
}

function runOne(name) {
  return new Promise((resolve) => {
    const started = Date.now();
    process.stderr.write(`\n== ${name} bench (load ${loadavg()[0].toFixed(2)})\n`);
    const args = ['turbo', 'run', 'bench', `--filter=${name}`, '--log-prefix=none', '--output-logs=full'];
    const child = spawn('npx', args, { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (chunk) => {
      out += chunk;
      process.stderr.write(chunk);
    });
    child.on('close', (code) => {
      // The benchmark's last JSON line; turbo's own summary follows it.
      const json = out
        .split('\n')
        .map((line) => line.trim())
        .filter((line) => line.startsWith('{'))
        .at(-1);
      let result;
      try {
        result = JSON.parse(json ?? '');
      } catch {
        result = { error: `exit ${code}; no JSON line on stdout` };
      }
      resolve({ code, seconds: Math.round((Date.now() - started) / 1000), result });
    });
  });
}

const results = {};
let failed = false;
for (const { name } of benches) {
  const { code, seconds, result } = await runOne(name);
  results[name] = result;
  failed ||= code !== 0;
  process.stderr.write(`== ${name}: exit ${code} after ${seconds} s\n`);
}
process.stdout.write(`${JSON.stringify(results)}\n`);
process.exit(failed ? 1 : 0);
