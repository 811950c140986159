import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import {
  assembleKustomization,
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

  it('the GPU image runs on CUDA 11.2 + cuDNN 8 with tfjs-node-gpu 4.22.0 installed at build time', () => {
    const arg = (name: string): string | undefined =>
      gpu.instructions.find((i) => i.keyword === 'ARG' && i.args.startsWith(`${name}=`))?.args.split('=')[1];
    expect(arg('CUDA_IMAGE')).toMatch(/^nvidia\/cuda:11\.2\.\d+-cudnn8-runtime-ubuntu\d+\.\d+$/);
    expect(arg('TFJS_NODE_GPU_VERSION')).toBe('4.22.0');
    expect(arg('NODE_IMAGE')).toMatch(/^node:20\./);
    expect(gpu.stages.at(-1)?.from).toBe('${CUDA_IMAGE}');
    const install = gpu.instructions.find((i) => i.keyword === 'RUN' && i.args.includes('tfjs-node-gpu@'));
    expect(install?.args).toMatch(/npm install .*"@tensorflow\/tfjs-node-gpu@\$\{TFJS_NODE_GPU_VERSION\}"/);
    // Its install script fetches libtensorflow: approved in the root package.json, never by flag
    // (npm 11 refuses --allow-scripts in a project install; npm-allow-scripts.test.ts runs both).
    expect(install?.args).not.toMatch(/--allow-scripts|--ignore-scripts/);
    // tfjs-node's script is denied: it would download libtensorflow from outside the registries (and, failing,
    // drop the package); `lits engine install` builds its addon from the PyPI wheel instead.
    expect(rootAllowScripts()).toEqual({
      'core-js': false,
      '@tensorflow/tfjs-node-gpu': true,
      '@tensorflow/tfjs-node': false,
    });
    expect(install?.args).toMatch(/ls .*tfjs_binding\.node .*libtensorflow\.so\*/);
    expect(execForm(gpu, 'CMD')).toEqual(['worker', '--engine', 'gpu']);
    expect(execForm(cpu, 'CMD')).toEqual(['serve']);
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
