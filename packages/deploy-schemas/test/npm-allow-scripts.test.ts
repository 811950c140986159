// The GPU image's npm steps, run with the real npm against a package named @tensorflow/tfjs-node-gpu whose install
// script leaves a marker (the real one downloads libtensorflow from outside the registries). No Docker engine runs
// here, so this is how the Dockerfile's `npm ci` and `npm prune` flags and the root `allowScripts` are tested.
// The package is served once from a loopback stand-in registry into a private cache (so npm sees a registry
// package, which is what `allowScripts` names match); the installs themselves run --offline.
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

/** tfjs-node-gpu's version in the lockfile: what `npm ci` installs in the image. */
const VERSION = (
  JSON.parse(readFileSync(repoPath('package-lock.json'), 'utf8')) as {
    packages: Record<string, { version?: string }>;
  }
).packages[`node_modules/${PACKAGE}`]?.version as string;

/** The arguments of one npm step (`npm ci …`, `npm prune …`) of the build stage's RUN. */
function npmStep(command: 'ci' | 'prune'): string[] {
  const run = gpu.instructions.find((i) => i.keyword === 'RUN' && i.args.includes('npm ci'));
  const step = (run?.args ?? '')
    .replace(/^(--[\w-]+=\S+\s+)+/, '')
    .split('&&')
    .map((s) => s.trim())
    .find((s) => s.startsWith(`npm ${command} `));
  if (!step) throw new Error(`${gpu.file}: no npm ${command} step in the build RUN`);
  return step.split(/\s+/).slice(1);
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

/**
 * A project like /app in the image: a root package.json with this allowScripts policy and tfjs-node-gpu as an
 * optional dependency (as @lits-ddp/unet has it), and its lockfile, written without running anything.
 */
async function project(allowScripts: Record<string, boolean>): Promise<string> {
  const dir = mkdtempSync(join(home, 'project-'));
  writeFileSync(
    join(dir, 'package.json'),
    JSON.stringify({
      name: 'allow-scripts-probe',
      private: true,
      optionalDependencies: { [PACKAGE]: VERSION },
      allowScripts,
    }),
  );
  const locked = await npm(dir, ['install', '--package-lock-only', '--offline', '--no-audit', '--no-fund']);
  expect(locked.status, locked.stderr).toBe(0);
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

  // The stand-in tfjs-node-gpu: its install script leaves a marker where the real one downloads libtensorflow.
  const source = join(home, 'package');
  mkdirSync(source);
  writeFileSync(
    join(source, 'package.json'),
    JSON.stringify({ name: PACKAGE, version: VERSION, scripts: { install: 'node install.js' } }),
  );
  writeFileSync(join(source, 'install.js'), `require('node:fs').writeFileSync('${MARKER}', 'yes');`);
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

describe("the GPU image's npm ci and npm prune, with the real npm", () => {
  it('runs with the npm version the Dockerfile pins', async () => {
    const version = await npm(home, ['--version']);
    expect(version.stdout.trim(), 'this test checks the behaviour of the npm that builds the image').toBe(
      dockerArg('NPM_VERSION'),
    );
  });

  it("the Dockerfile's npm ci and the root allowScripts install tfjs-node-gpu without running its download script", async () => {
    const dir = await project(rootAllowScripts());
    const run = await npm(dir, [...npmStep('ci'), '--offline']);
    expect(run.status, run.stderr).toBe(0);
    expect(installed(dir, 'package.json')).toBe(true);
    expect(installed(dir, MARKER)).toBe(false);
    // Denied, not merely unreviewed: npm warns about packages its allowScripts does not cover.
    expect(run.stderr).not.toMatch(/not yet covered by allowScripts/);
  });

  it('the false entry is what stops it: unlisted, npm ci runs the script', async () => {
    const { [PACKAGE]: _entry, ...others } = rootAllowScripts();
    const dir = await project(others);
    const run = await npm(dir, [...npmStep('ci'), '--offline']);
    expect(run.status, run.stderr).toBe(0);
    expect(installed(dir, MARKER)).toBe(true);
  });

  it("the Dockerfile's npm prune keeps tfjs-node-gpu and the addon built into it after npm ci", async () => {
    const dir = await project(rootAllowScripts());
    const ci = await npm(dir, [...npmStep('ci'), '--offline']);
    expect(ci.status, ci.stderr).toBe(0);
    // Where `lits engine install --gpu` puts the addon (node-pre-gyp's module_path); an empty stand-in here.
    const built = join(dir, 'node_modules', PACKAGE, 'lib', 'napi-v8');
    mkdirSync(built, { recursive: true });
    writeFileSync(join(built, 'tfjs_binding.node'), '');
    const prune = await npm(dir, [...npmStep('prune'), '--offline']);
    expect(prune.status, prune.stderr).toBe(0);
    expect(installed(dir, 'package.json')).toBe(true);
    expect(installed(dir, 'lib/napi-v8/tfjs_binding.node')).toBe(true);
  });
});
