import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  assembleKustomization,
  type Dockerfile,
  execForm,
  finalStage,
  parseDockerfile,
  podSpecs,
  readCompose,
  readEnvFile,
  readLitsCommandTable,
} from '../src/index.js';
import { litsMain, repoPath, rootAllowScripts, TEST_TOKEN } from './repo.js';

const gpu = parseDockerfile(repoPath('docker/gpu-worker.Dockerfile'));
const cpu = parseDockerfile(repoPath('docker/coordinator.Dockerfile'));
const table = readLitsCommandTable(repoPath('apps/cli/src/main.ts'));

/** The value of `ARG name=value` in a Dockerfile. */
function dockerArg(df: Dockerfile, name: string): string | undefined {
  return df.instructions
    .find((i) => i.keyword === 'ARG' && i.args.startsWith(`${name}=`))
    ?.args.split('=')[1];
}

/** Every `lits` command line the deployment runs, with where it comes from. */
function deployedCommands(): { where: string; argv: string[] }[] {
  const out: { where: string; argv: string[] }[] = [];
  for (const df of [gpu, cpu]) out.push({ where: `${df.file} CMD`, argv: execForm(df, 'CMD') ?? [] });
  const env = { ...readEnvFile(repoPath('.env.example')), LITS_API_TOKEN: TEST_TOKEN };
  for (const file of ['docker-compose.yml', 'docker-compose.cpu.yml']) {
    const doc = readCompose(repoPath(file), env) as {
      services: Record<string, { image?: string; command?: string[] }>;
    };
    for (const [name, s] of Object.entries(doc.services))
      if (s.image?.startsWith('${') || s.image?.includes('lits-ddp/lits'))
        out.push({ where: `${file} ${name}`, argv: s.command ?? [] });
  }
  for (const o of ['gpu', 'cpu'])
    for (const r of assembleKustomization(repoPath('k8s/overlays', o)))
      for (const c of podSpecs(r.object).flatMap((s) => s.containers as { image: string; args?: string[] }[]))
        if (c.image.includes('lits-ddp/lits'))
          out.push({ where: `k8s/${o} ${r.object.metadata.name}`, argv: c.args ?? [] });
  return out;
}

describe('Dockerfiles', () => {
  it.each([gpu, cpu])('$file: multi-stage, pinned bases, non-root, healthcheck, entrypoint lits', (df) => {
    expect(df.stages.length).toBeGreaterThanOrEqual(2);
    const args = Object.fromEntries(
      df.instructions
        .filter((i) => i.keyword === 'ARG' && i.args.includes('='))
        .map((i) => i.args.split('=') as [string, string]),
    );
    for (const { from } of df.stages) {
      const image = from.replace(/^\$\{(\w+)\}$/, (_, name: string) => args[name] ?? from);
      if (df.stages.some((s) => s.name === image)) continue;
      expect(image, `${df.file}: FROM ${from}`).toMatch(/^[\w./-]+:\d+(\.\d+)+[\w.-]*$/);
    }
    const final = finalStage(df);
    const user = final.filter((i) => i.keyword === 'USER').at(-1)?.args;
    expect(user).toBeDefined();
    expect(user).not.toMatch(/^(root|0)(:|$)/);
    expect(
      final.some(
        (i) => i.keyword === 'HEALTHCHECK' && /CMD \["node", "\/app\/docker\/healthcheck\.mjs"/.test(i.args),
      ),
    ).toBe(true);
    expect(execForm(df, 'ENTRYPOINT')).toEqual(['lits']);
  });

  it.each([gpu, cpu])('$file: Node 24 LTS, pinned to a release, on Debian bookworm', (df) => {
    expect(dockerArg(df, 'NODE_IMAGE')).toMatch(/^node:24\.\d+\.\d+-bookworm-slim$/);
    expect(df.stages.map((s) => s.from)).toEqual(df.stages.map(() => '${NODE_IMAGE}'));
  });

  it.each([gpu, cpu])('$file: installs nothing outside the lockfile and fetches nothing by URL', (df) => {
    for (const run of df.instructions.filter((i) => i.keyword === 'RUN')) {
      // `npm install -g npm@<pin>` (the lockfile's npm) is the one npm install allowed.
      const installs = run.args.split('&&').filter((step) => /\bnpm (install|i|add)\b/.test(step));
      for (const step of installs)
        expect(step.trim(), `${df.file}:${run.line}`).toMatch(/^npm install -g "npm@\$\{NPM_VERSION\}"/);
      expect(run.args, `${df.file}:${run.line}`).not.toMatch(
        /--no-save|--allow-scripts|--ignore-scripts|\bcurl\b|\bwget\b/,
      );
    }
    expect(df.instructions.filter((i) => i.keyword === 'ADD')).toEqual([]);
  });

  it('the GPU image: npm ci, then the install-layer script; tfjs-node-gpu comes from the lockfile, its download script denied', () => {
    const build = gpu.instructions.find((i) => i.keyword === 'RUN' && i.args.includes('npm ci'));
    // RUN flags (--mount=type=cache,…) come before the command.
    const command = (build?.args ?? '').replace(/^(--[\w-]+=\S+\s+)+/, '');
    const steps = command.split('&&').map((s) => s.trim());
    expect(steps[0]).toMatch(/^npm ci\b/);
    expect(steps[1]).toBe('scripts/gpu-install-layer.sh');
    expect(steps[2]).toMatch(/^npm prune --omit=dev\b/);
    // The script is what a host without Docker runs (CI included): the same three commands.
    const script = readFileSync(repoPath('scripts/gpu-install-layer.sh'), 'utf8');
    const commands = [...script.matchAll(/^step \w+ (.+)$/gm)].map((m) => m[1]);
    expect(commands).toEqual([
      'npx turbo run build --filter=@lits-ddp/cli... --output-logs=errors-only',
      'npm run lits -- engine install --gpu',
      'node docker/engine-forward-check.mjs --engine gpu',
    ]);
    const syntax = spawnSync('bash', ['-n', repoPath('scripts/gpu-install-layer.sh')], { encoding: 'utf8' });
    expect(syntax.status, syntax.stderr).toBe(0);
    // Every file the image copies exists (COPY of a missing path fails the build, which no CI step runs).
    for (const copy of gpu.instructions.filter((i) => i.keyword === 'COPY' && !i.args.startsWith('--from'))) {
      const sources = copy.args.split(/\s+/).slice(0, -1);
      for (const source of sources)
        expect(existsSync(repoPath(source)), `${gpu.file}:${copy.line} ${source}`).toBe(true);
    }
    const lock = JSON.parse(readFileSync(repoPath('package-lock.json'), 'utf8')) as {
      packages: Record<string, { version?: string; optional?: boolean }>;
    };
    expect(lock.packages['node_modules/@tensorflow/tfjs-node-gpu']?.version).toBe('4.22.0');
    // Both tfjs-node packages' install scripts would download libtensorflow from outside the registries:
    // `lits engine install` builds their addons from PyPI wheels instead (npm-allow-scripts.test.ts runs npm ci).
    expect(rootAllowScripts()).toEqual({
      'core-js': false,
      '@tensorflow/tfjs-node-gpu': false,
      '@tensorflow/tfjs-node': false,
    });
    expect(execForm(gpu, 'CMD')).toEqual(['worker', '--engine', 'gpu']);
    expect(execForm(cpu, 'CMD')).toEqual(['serve']);
  });

  it('the GPU image: GPU defaults in its environment, and the runtime stage itself loads the engine', () => {
    const final = finalStage(gpu);
    const env = Object.fromEntries(
      final
        .filter((i) => i.keyword === 'ENV')
        .flatMap((i) => [...i.args.matchAll(/(\w+)=("[^"]*"|\S+)/g)])
        .map((m) => [m[1], (m[2] as string).replace(/^"(.*)"$/, '$1')]),
    );
    expect(env).toMatchObject({
      TFJS_ENGINE: 'gpu',
      TF_FORCE_GPU_ALLOW_GROWTH: 'true',
      CUDA_DEVICE_ORDER: 'PCI_BUS_ID',
      NVIDIA_VISIBLE_DEVICES: 'all',
      NVIDIA_DRIVER_CAPABILITIES: 'compute,utility',
      NVIDIA_REQUIRE_CUDA: 'cuda>=12.0',
    });
    // After the copy, as the image's user: the staged CUDA libraries resolve without the build tools.
    const user = final.findIndex((i) => i.keyword === 'USER');
    const check = final.findIndex(
      (i) => i.keyword === 'RUN' && i.args === 'node /app/docker/engine-forward-check.mjs --engine gpu',
    );
    expect(user).toBeGreaterThan(0);
    expect(check).toBeGreaterThan(user);
    expect(final.some((i) => i.keyword === 'COPY' && /docker\/gpu-smoke\.mjs/.test(i.args))).toBe(true);
  });
});

describe('container commands are lits commands CI runs', () => {
  it('reads the lits command table from apps/cli/src/main.ts', () => {
    expect(table).toEqual(expect.arrayContaining(['serve', 'worker', 'train', 'submit', 'demo']));
  });

  it('every image, compose service and k8s container runs a known lits command whose flags lits accepts', () => {
    const commands = deployedCommands();
    expect(commands.map((c) => c.where)).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/gpu-worker\.Dockerfile CMD/),
        'docker-compose.yml coordinator',
        'docker-compose.yml gpu-worker-0',
        'docker-compose.cpu.yml cpu-worker',
        'k8s/gpu lits-coordinator',
      ]),
    );
    const main = litsMain();
    for (const { where, argv } of commands) {
      const [name] = argv;
      expect(table, `${where}: ${argv.join(' ')}`).toContain(name);
      // parseArgs is strict: an unknown flag or a missing value fails before --help is honoured.
      const run = spawnSync(process.execPath, [main, ...argv, '--help'], {
        encoding: 'utf8',
        timeout: 60_000,
      });
      expect(run.status, `${where}: lits ${argv.join(' ')} --help\n${run.stderr}`).toBe(0);
      expect(run.stdout).toMatch(new RegExp(`^lits ${name} `));
    }
  });
});
