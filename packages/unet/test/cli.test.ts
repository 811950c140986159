import { execFile } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { loadEngine, runUnetCli, saveCheckpoint, UNet3D } from '../src/index.js';

const run = promisify(execFile);
const bin = new URL('../dist/cli.js', import.meta.url).pathname;
const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runUnetCli(argv, { stdout: (t) => (out += t), stderr: (t) => (err += t) });
  return { code, out, err };
}

describe('lits-unet', () => {
  it('summary --json prints the total and per-block counts', async () => {
    const { code, out } = await cli('summary', '--json');
    expect(code).toBe(0);
    const json = JSON.parse(out) as { totalParams: number; blocks: { name: string; params: number }[] };
    expect(json.totalParams).toBe(2_339_491);
    // Every block's count as seed.md §1 gives it, in forward order.
    expect(json.blocks).toEqual([
      { name: 'inc', params: 28_704 },
      { name: 'down1', params: 174_496 },
      { name: 'down2', params: 697_152 },
      { name: 'mid', params: 885_504 },
      { name: 'up1', params: 442_752 },
      { name: 'up2', params: 110_784 },
      { name: 'outc', params: 99 },
    ]);
    expect(json.blocks.reduce((s, b) => s + b.params, 0)).toBe(json.totalParams);
    const narrow = JSON.parse((await cli('summary', '--json', '--width', '4')).out) as {
      totalParams: number;
    };
    expect(narrow.totalParams).toBeLessThan(json.totalParams / 50);
  });

  it('summary prints a table with the total; bad flags exit 2 with the reason', async () => {
    const { code, out } = await cli('summary');
    expect(code).toBe(0);
    expect(out).toMatch(/^up1 +Drop\(0\.001\), Upsample×2, cat\[128, 64\], ConvBlock\(192→64\) +442,752$/m);
    expect(out).toMatch(/^total .* 2,339,491$/m);
    const bad = await cli('summary', '--width', 'x');
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/--width must be a positive integer, got 'x'/);
    expect((await cli('summary', '--depth', '3')).code).toBe(2);
    expect((await cli('fly')).err).toMatch(/unknown command 'fly'/);
  });

  it('export writes a tfjs model from a checkpoint', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'unet-cli-'));
    dirs.push(dir);
    const { tf } = await loadEngine({ engine: 'cpu' });
    await saveCheckpoint(join(dir, 'ckpt'), {
      model: UNet3D.create(tf, { seed: 2, architecture: { width: 2 } }),
      epoch: 0,
      step: 0,
    });
    const saved = process.env['TFJS_ENGINE'];
    process.env['TFJS_ENGINE'] = 'cpu';
    try {
      const { code, out } = await cli(
        'export',
        '--checkpoint',
        join(dir, 'ckpt'),
        '--out',
        join(dir, 'model'),
      );
      expect(code).toBe(0);
      expect(out.trim()).toBe(join(dir, 'model', 'model.json'));
    } finally {
      if (saved === undefined) delete process.env['TFJS_ENGINE'];
      else process.env['TFJS_ENGINE'] = saved;
    }
    expect((await readdir(join(dir, 'model'))).sort()).toEqual(['model.json', 'weights.bin']);
    const missing = await cli('export', '--checkpoint', join(dir, 'nope'), '--out', join(dir, 'x'));
    expect(missing.code).toBe(1);
    expect(missing.err).toMatch(/checkpoint\.json: cannot be read/);
  });

  it('runs as the built bin', async () => {
    const { stdout } = await run(process.execPath, [bin, 'summary', '--json', '--width', '32']);
    const json = JSON.parse(stdout) as { totalParams: number; blocks: { name: string; params: number }[] };
    expect(json.totalParams).toBe(2_339_491);
    expect(json.blocks.map((b) => b.params)).toEqual([
      28_704, 174_496, 697_152, 885_504, 442_752, 110_784, 99,
    ]);
    await expect(run(process.execPath, [bin, 'summary', '--width', '-1'])).rejects.toMatchObject({ code: 2 });
  });
});
