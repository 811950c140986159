import { execFile } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runLitsDataCli } from '../src/index.js';
import { cliPath, conformanceDir, strictTests, tempDir } from './test-environment.js';

const exec = promisify(execFile);
const tmp = tempDir('cli');
afterAll(tmp.cleanup);
const data = join(tmp.dir, 'data');

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

async function cli(...args: string[]): Promise<Result> {
  try {
    const { stdout, stderr } = await exec(process.execPath, [cliPath, ...args]);
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

function lastJson(stdout: string): Record<string, unknown> {
  const lines = stdout.trim().split('\n');
  expect(lines).toHaveLength(1);
  return JSON.parse(lines[0]!) as Record<string, unknown>;
}

const INSPECT_KEYS = [
  'affine',
  'byteOrder',
  'datatype',
  'file',
  'format',
  'max',
  'mean',
  'min',
  'nanCount',
  'orientation',
  'sclInter',
  'sclSlope',
  'shape',
  'spacing',
];

beforeAll(async () => {
  const r = await cli('synth', '--out', data, '--cases', '2', '--size', '24x20x10', '--seed', '5', '--json');
  expect(r.code).toBe(0);
});

describe('lits-data CLI', () => {
  it('synth --json reports the cases it wrote', async () => {
    const r = await cli('synth', '--out', join(tmp.dir, 'synth'), '--cases', '1', '--json');
    expect(r.code).toBe(0);
    const out = lastJson(r.stdout) as { cases: Array<{ id: number; image: string }> };
    expect(out.cases[0]!.image).toMatch(/volume-0\.nii\.gz$/);
    expect(r.stderr).toContain('synth: 1/1');
  });

  it('inspect --json prints one object with the documented keys; labelCounts only for label-like files', async () => {
    const seg = lastJson((await cli('inspect', join(data, 'segmentation-0.nii.gz'), '--json')).stdout);
    expect(Object.keys(seg).sort()).toEqual([...INSPECT_KEYS, 'labelCounts'].sort());
    expect(seg).toMatchObject({
      shape: [24, 20, 10],
      datatype: { code: 2, name: 'uint8' },
      byteOrder: 'little',
      orientation: 'LPS',
      nanCount: 0,
      min: 0,
    });
    const counts = seg.labelCounts as Record<string, number>;
    expect(Object.values(counts).reduce((a, b) => a + b, 0)).toBe(24 * 20 * 10);
    expect(Object.keys(counts).every((k) => ['0', '1', '2'].includes(k))).toBe(true);
    const vol = lastJson((await cli('inspect', join(data, 'volume-0.nii.gz'), '--json')).stdout);
    expect(Object.keys(vol).sort()).toEqual(INSPECT_KEYS);
    expect(vol.datatype).toEqual({ code: 4, name: 'int16' });
    const text = await cli('inspect', join(data, 'segmentation-0.nii.gz'));
    expect(text.stdout).toMatch(/orientation\s+LPS/);
    expect(text.stdout).toMatch(/labels\s+0: \d+/);
  });

  it.skipIf(!conformanceDir())(
    'inspect reports scaling, NaN counts and label counts of conformance files',
    async () => {
      const dir = conformanceDir()!;
      const functional = lastJson((await cli('inspect', join(dir, 'functional.nii'), '--json')).stdout);
      expect(functional.sclSlope).toBeCloseTo(0.0754069686, 9);
      expect(functional.min).toBeCloseTo(629.826171875, 3);
      expect(functional.max).toBeCloseTo(5571.62158203125, 2);
      expect(functional.labelCounts).toBeUndefined();
      const nan = lastJson((await cli('inspect', join(dir, 'resampled_anat_moved.nii'), '--json')).stdout);
      expect(nan.nanCount).toBe(153);
      const standard = lastJson((await cli('inspect', join(dir, 'standard.nii.gz'), '--json')).stdout);
      expect(standard.labelCounts).toEqual({ '0': 110, '255': 30 });
      expect(standard.byteOrder).toBe('little');
    },
  );

  it('validate exits 0 for a valid set and 1 with the per-file report otherwise', async () => {
    const ok = await cli('validate', data, '--json');
    expect(ok.code).toBe(0);
    expect(lastJson(ok.stdout)).toMatchObject({ ok: true, caseCount: 2 });
    const bad = join(tmp.dir, 'bad');
    await cli('synth', '--out', bad, '--cases', '1', '--size', '8x8x4');
    writeFileSync(join(bad, 'volume-7.nii.gz'), readFileSync(join(bad, 'volume-0.nii.gz')));
    const r = await cli('validate', bad, '--json');
    expect(r.code).toBe(1);
    expect(lastJson(r.stdout)).toMatchObject({
      ok: false,
      problems: [{ caseId: 7, reason: 'no mask (expected segmentation-7.nii or segmentation-7.nii.gz)' }],
    });
    const text = await cli('validate', bad);
    expect(text.code).toBe(1);
    expect(text.stdout).toMatch(/volume-7\.nii\.gz: no mask/);
  });

  it('preprocess writes plain progress lines when not on a TTY and prints the manifest with --json', async () => {
    const cache = join(tmp.dir, 'cache');
    const r = await cli(
      'preprocess',
      data,
      '--cache',
      cache,
      '--cube',
      '16',
      '--target-slices',
      '16',
      '--json',
    );
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('preprocess: 2 cases');
    expect(r.stderr).toMatch(/preprocess: 2\/2 case 1\n/);
    const manifest = lastJson(r.stdout) as {
      entries: Array<{ cached: boolean; file: string }>;
      config: unknown;
    };
    expect(manifest.config).toEqual({ preset: 'seed', targetSlices: 16, downscale: 2, cubeSize: 16 });
    expect(manifest.entries.map((e) => e.cached)).toEqual([false, false]);
    const again = await cli('preprocess', data, '--cache', cache, '--cube', '16', '--target-slices', '16');
    expect(again.stdout).toMatch(/2 cubes in .* \(0 new, 2 cached\)/);
    const improved = await cli(
      'preprocess',
      data,
      '--cache',
      cache,
      '--preset',
      'improved',
      '--spacing',
      '20x20x20',
      '--cube',
      '8',
      '--json',
    );
    expect(improved.code).toBe(0);
    expect(lastJson(improved.stdout).config).toEqual({
      preset: 'improved',
      targetSpacing: [20, 20, 20],
      window: [-200, 250],
      cubeSize: 8,
    });
  });

  it('preprocess draws a progress bar on a TTY (run under script(1) for a pseudo-terminal)', async () => {
    const script = '/usr/bin/script';
    if (!existsSync(script)) {
      if (strictTests())
        throw new Error('LITS_STRICT_TESTS=1 but script(1) is missing; the TTY test must run in CI');
      process.stderr.write('lits-data: skipping the TTY progress-bar test: script(1) is missing\n');
      return;
    }
    const command = [
      process.execPath,
      cliPath,
      'preprocess',
      data,
      '--cache',
      join(tmp.dir, 'tty-cache'),
      '--cube',
      '8',
    ]
      .map((a) => `'${a}'`)
      .join(' ');
    const { stdout } = await exec(script, ['-qec', command, '/dev/null']);
    expect(stdout).toMatch(/preprocess \[[^\]]+\] 2\/2 cases \| case 1/);
    expect(stdout).not.toMatch(/preprocess: 1\/2/);
    expect(stdout).toMatch(/2 cubes in .* \(2 new, 0 cached\)/);
  });

  it('errors are one line naming the file and reason, with a stack only under --verbose', async () => {
    const broken = join(tmp.dir, 'volume-3.nii.gz');
    const gz = readFileSync(join(data, 'volume-0.nii.gz'));
    writeFileSync(broken, gz.subarray(0, gz.length - 100));
    const r = await cli('inspect', broken);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^lits-data: .*volume-3\.nii\.gz: gzip stream truncated after \d+\.\d kB/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    const verbose = await cli('inspect', broken, '--verbose');
    expect(verbose.stderr).toMatch(/\n\s+at /);
    const json = await cli('inspect', broken, '--json');
    expect(lastJson(json.stdout)).toMatchObject({ ok: false, file: broken });
  });

  it('bad command lines exit 2 with usage', async () => {
    const unknown = await cli('frobnicate');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/unknown command 'frobnicate'/);
    expect(unknown.stderr).toContain('usage: lits-data');
    const size = await cli('synth', '--out', tmp.dir, '--cases', '1', '--size', '64x64');
    expect(size.code).toBe(2);
    expect(size.stderr).toMatch(/--size must look like 64x64x32, got '64x64'/);
    expect((await cli('preprocess', data, '--cache', tmp.dir, '--preset', 'fancy')).code).toBe(2);
    expect((await cli('--bogus')).code).toBe(2);
    expect((await cli('--help')).stdout).toContain('usage: lits-data');
  });

  it('--cache pointing at a file: one line naming the folder and what preprocess does there, exit 1, no stack', async () => {
    const file = join(tmp.dir, 'cache-is-a-file');
    writeFileSync(file, 'not a folder');
    const r = await cli('preprocess', data, '--cache', file, '--cube', '8');
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      `lits-data: ${file}: the cache folder is a file, not a folder (preprocess writes cubes there)\n`,
    );
    const below = await cli('preprocess', data, '--cache', join(file, 'cubes'), '--json');
    expect(below.code).toBe(1);
    expect(below.stderr).toMatch(/cannot create the cache folder: .*cache-is-a-file is a file, not a folder/);
    expect(below.stderr).not.toMatch(/ENOTDIR|\n\s+at /);
    expect(lastJson(below.stdout)).toMatchObject({ ok: false, file: join(file, 'cubes') });
  });

  it('a negative size names its option and exits 2, written --cube -16 or --cube=-16; --window -200,250 parses', async () => {
    for (const args of [['--cube', '-16'], ['--cube=-16']]) {
      const r = await cli('preprocess', data, '--cache', join(tmp.dir, 'neg'), ...args);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/^lits-data: --cube must be an integer ≥ 1, got '-16'\n/);
      expect(r.stderr).not.toMatch(/ambiguous/);
    }
    const slices = await cli('validate', data, '--target-slices', '-3');
    expect(slices.code).toBe(2);
    expect(slices.stderr).toMatch(/--target-slices must be an integer ≥ 1, got '-3'/);
    const window = await cli(
      'preprocess',
      data,
      '--cache',
      join(tmp.dir, 'window'),
      '--preset',
      'improved',
      '--spacing',
      '20x20x20',
      '--cube',
      '8',
      '--window',
      '-200,250',
      '--json',
    );
    expect(window.code).toBe(0);
    expect(lastJson(window.stdout).config).toMatchObject({ window: [-200, 250] });
  });

  it('label-map flags: either form on --label-map, class=value on --labels, never both; bad maps exit 2', async () => {
    expect((await cli('validate', data, '--label-map', '1:1,2:2')).code).toBe(0);
    expect((await cli('validate', data, '--labels', 'liver=1,tumour=2')).code).toBe(0);
    const both = await cli('validate', data, '--label-map', '5:1', '--labels', 'liver=5');
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/give --label-map or --labels, not both/);
    const pairs = await cli('validate', data, '--labels', '5:1');
    expect(pairs.code).toBe(2);
    expect(pairs.stderr).toMatch(/--labels takes class=value pairs/);
    const bad = await cli('validate', data, '--label-map', '5:spleen');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^lits-data: --label-map: class 'spleen' is not a LiTS class/);
    const negative = await cli('validate', data, '--label-map', '-1:0');
    expect(negative.code).toBe(0);
  });

  it('runLitsDataCli runs in-process for the umbrella `lits data` command', async () => {
    let out = '';
    const io = { stdout: { write: (t: string) => (out += t) }, stderr: { write: () => true } };
    const code = await runLitsDataCli(['inspect', join(data, 'segmentation-1.nii.gz'), '--json'], io);
    expect(code).toBe(0);
    expect(JSON.parse(out).shape).toEqual([24, 20, 10]);
    expect(await runLitsDataCli(['validate', join(tmp.dir, 'nowhere')], io)).toBe(1);
    expect(out).toMatch(/nowhere: 1 problem\(s\) in 0 cases\n.*nowhere: folder not found/);
  });
});
