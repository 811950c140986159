// The GPU image's `npm install @tensorflow/tfjs-node-gpu` step, run with the real npm against a
// package of that name whose install script leaves the files the Dockerfile checks for. No Docker
// engine runs here, so this is how the step's npm flags and the root `allowScripts` are tested.
// The package is served once from a loopback stand-in registry into a private cache (so npm sees a
// registry package, which is what `allowScripts` names match); the installs themselves run --offline.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseDockerfile } from '../src/index.js';
import { repoPath, rootAllowScripts } from './repo.js';

const PACKAGE = '@tensorflow/tfjs-node-gpu';
const MARKER = 'install-script-ran';
const gpu = parseDockerfile(repoPath('docker/gpu-worker.Dockerfile'));

function dockerArg(name: string): string {
  const value = gpu.instructions
    .find((i) => i.keyword === 'ARG' && i.args.startsWith(`${name}=`))
    ?.args.split('=')[1];
  if (!value) throw new Error(`${gpu.file}: no ARG ${name}=…`);
  return value;
}

const VERSION = dockerArg('TFJS_NODE_GPU_VERSION');

/** The build RUN's `npm install … tfjs-node-gpu@…` (its arguments) and the `ls` check after it. */
function installStep(): { npmArgs: string[]; check: string } {
  const run = gpu.instructions.find((i) => i.keyword === 'RUN' && i.args.includes(`${PACKAGE}@`));
  const steps = (run?.args ?? '').split('&&').map((s) => s.trim());
  const install = steps.find((s) => s.startsWith('npm install ') && s.includes(`${PACKAGE}@`));
  const check = steps.find((s) => s.startsWith('ls ') && s.includes('tfjs_binding.node'));
  if (!install || !check)
    throw new Error(`${gpu.file}: no npm install of ${PACKAGE} followed by an ls check`);
  const npmArgs = install
    .split(/\s+/)
    .slice(1)
    .map((t) => t.replace(/^"(.*)"$/, '$1').replace('${TFJS_NODE_GPU_VERSION}', VERSION));
  return { npmArgs, check };
}

interface Ran {
  status: number | null;
  stdout: string;
  stderr: string;
}

function runIn(cwd: string, command: string, args: string[], env: NodeJS.ProcessEnv): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('error', reject);
    child.once('close', (status) => resolve({ status, stdout, stderr }));
  });
}

let home = '';
let registry = '';
let npmEnv: NodeJS.ProcessEnv = {};
const npm = (cwd: string, args: string[]): Promise<Ran> => runIn(cwd, 'npm', args, npmEnv);

/** A project like /app in the image: a root package.json carrying this allowScripts policy. */
function project(allowScripts: Record<string, boolean>): string {
  const dir = mkdtempSync(join(home, 'project-'));
  writeFileSync(
    join(dir, 'package.json'),
    JSON.stringify({ name: 'allow-scripts-probe', private: true, allowScripts }),
  );
  return dir;
}

const installed = (dir: string, file: string): boolean =>
  existsSync(join(dir, 'node_modules', PACKAGE, file));

beforeAll(async () => {
  home = mkdtempSync(join(tmpdir(), 'npm-allow-scripts-'));
  writeFileSync(join(home, 'user.npmrc'), '');
  writeFileSync(join(home, 'global.npmrc'), '');
  // No npm_* variable of the test runner (npm_config_allow_scripts would change the outcome) and
  // no user or global .npmrc (e.g. omit-lockfile-registry-resolved, which changes the package's identity).
  npmEnv = {
    ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k))),
    npm_config_userconfig: join(home, 'user.npmrc'),
    npm_config_globalconfig: join(home, 'global.npmrc'),
    npm_config_cache: join(home, 'cache'),
    npm_config_update_notifier: 'false',
  };

  // The stand-in tfjs-node-gpu: its install script leaves what the real one downloads.
  const source = join(home, 'package');
  mkdirSync(source);
  writeFileSync(
    join(source, 'package.json'),
    JSON.stringify({ name: PACKAGE, version: VERSION, scripts: { install: 'node install.js' } }),
  );
  writeFileSync(
    join(source, 'install.js'),
    [
      "const { mkdirSync, writeFileSync } = require('node:fs');",
      "mkdirSync('lib/napi-v8', { recursive: true });",
      "mkdirSync('deps/lib', { recursive: true });",
      "writeFileSync('lib/napi-v8/tfjs_binding.node', '');",
      "writeFileSync('deps/lib/libtensorflow.so.2', '');",
      `writeFileSync('${MARKER}', 'yes');`,
    ].join('\n'),
  );
  const packed = await npm(source, ['pack', '--offline', '--json', '--pack-destination', home]);
  expect(packed.status, packed.stderr).toBe(0);
  const tarball = readFileSync(
    join(home, (JSON.parse(packed.stdout) as { filename: string }[])[0]!.filename),
  );

  const server = createServer((req, res) => {
    const base = registry.replace(/\/$/, '');
    const tarballPath = `/${PACKAGE}/-/tfjs-node-gpu-${VERSION}.tgz`;
    if (req.url?.toLowerCase() === `/${PACKAGE.replace('/', '%2f')}`) {
      const integrity = `sha512-${createHash('sha512').update(tarball).digest('base64')}`;
      const manifest = {
        name: PACKAGE,
        version: VERSION,
        scripts: { install: 'node install.js' },
        dist: { tarball: `${base}${tarballPath}`, integrity },
      };
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          name: PACKAGE,
          'dist-tags': { latest: VERSION },
          versions: { [VERSION]: manifest },
        }),
      );
    } else if (req.url === tarballPath) {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      res.end(tarball);
    } else {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end('{}');
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('no address');
  registry = `http://127.0.0.1:${address.port}/`;
  npmEnv.npm_config_registry = registry;
  try {
    const cached = await npm(home, ['cache', 'add', `${PACKAGE}@${VERSION}`]);
    expect(cached.status, cached.stderr).toBe(0);
  } finally {
    // From here on nothing answers at the registry address: every install below is offline.
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}, 120_000);

afterAll(() => {
  if (home) rmSync(home, { recursive: true, force: true });
});

describe("the GPU image's tfjs-node-gpu install step, with the real npm", () => {
  it('runs with the npm version the Dockerfile pins', async () => {
    const version = await npm(home, ['--version']);
    expect(version.stdout.trim(), 'this test checks the behaviour of the npm that builds the image').toBe(
      dockerArg('NPM_VERSION'),
    );
  });

  it("the Dockerfile's npm flags and the root allowScripts run the package's install script, and the ls check passes", async () => {
    const { npmArgs, check } = installStep();
    const dir = project(rootAllowScripts());
    const run = await npm(dir, [...npmArgs, '--offline']);
    expect(run.status, run.stderr).toBe(0);
    expect(installed(dir, MARKER)).toBe(true);
    // Approved, not merely unreviewed: npm warns about packages its allowScripts does not cover.
    expect(run.stderr).not.toMatch(/not yet covered by allowScripts/);
    const ls = await runIn(dir, 'sh', ['-c', check], npmEnv);
    expect(ls.status, ls.stderr).toBe(0);
  });

  it('the root allowScripts entry is what covers it: --strict-allow-scripts passes with it, refuses without', async () => {
    const { npmArgs } = installStep();
    const approved = project(rootAllowScripts());
    const withEntry = await npm(approved, [...npmArgs, '--offline', '--strict-allow-scripts']);
    expect(withEntry.status, withEntry.stderr).toBe(0);
    expect(installed(approved, MARKER)).toBe(true);

    const { [PACKAGE]: _entry, ...others } = rootAllowScripts();
    const unreviewed = project(others);
    const without = await npm(unreviewed, [...npmArgs, '--offline', '--strict-allow-scripts']);
    expect(without.status).not.toBe(0);
    expect(without.stderr).toMatch(/ESTRICTALLOWSCRIPTS/);
    expect(installed(unreviewed, MARKER)).toBe(false);
  });

  it('a false entry (as core-js has) installs the package without running its script', async () => {
    const { npmArgs } = installStep();
    const dir = project({ ...rootAllowScripts(), [PACKAGE]: false });
    const run = await npm(dir, [...npmArgs, '--offline']);
    expect(run.status, run.stderr).toBe(0);
    expect(installed(dir, 'package.json')).toBe(true);
    expect(installed(dir, MARKER)).toBe(false);
  });

  it('npm refuses --allow-scripts in a project install (EALLOWSCRIPTS), so the Dockerfile must not pass it', async () => {
    const { npmArgs } = installStep();
    const dir = project(rootAllowScripts());
    const run = await npm(dir, [...npmArgs, '--offline', `--allow-scripts=${PACKAGE}`]);
    expect(run.status).not.toBe(0);
    expect(run.stderr).toMatch(/EALLOWSCRIPTS/);
    expect(run.stderr).toMatch(/--allow-scripts is not allowed in project-scoped installs/);
    expect(installed(dir, MARKER)).toBe(false);
  });
});
