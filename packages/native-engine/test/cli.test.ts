import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findExecutable } from '@lits-ddp/local-services';
import { afterAll, describe, expect, it } from 'vitest';
import { runCommand } from '../src/exec.js';
import { runEngineCli, type NativeEngineStatus } from '../src/index.js';
import { buildUnavailable, shouldRun } from './requirements.js';

const bin = new URL('../dist/cli.js', import.meta.url).pathname;
const roots: string[] = [];
afterAll(() => roots.forEach((r) => rmSync(r, { recursive: true, force: true })));

async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runEngineCli(argv, { stdout: (t) => (out += t), stderr: (t) => (err += t) });
  return { code, out, err };
}

describe('lits-engine', () => {
  it('exits 2 on usage errors and prints the usage', async () => {
    for (const argv of [
      [],
      ['frobnicate'],
      ['install', '--bogus'],
      ['status', 'extra'],
      ['status', '--force'],
      ['status', '--gpu', '--optional'],
    ]) {
      const r = await cli(...argv);
      expect(r.code, argv.join(' ')).toBe(2);
      expect(r.err).toContain('lits-engine install [--gpu] [--json] [--optional] [--force]');
    }
    const help = await cli('--help');
    expect(help.code).toBe(0);
    expect(help.out).toContain('lits-engine status [--gpu] [--json]');
  });

  it('status --json prints the status, and the exit code says whether it is ready', async () => {
    const r = await cli('status', '--json');
    const status = JSON.parse(r.out) as NativeEngineStatus;
    expect(r.code).toBe(status.ready ? 0 : 1);
    if (!status.ready) expect(status.reason).toBeTruthy();
  });

  const suite = 'lits-engine install --optional';
  describe.runIf(shouldRun(suite, buildUnavailable()))(suite, () => {
    it('prints the reason and exits 0 when the engine cannot be provisioned (no g++)', async () => {
      const root = mkdtempSync(join(tmpdir(), 'lits-native-engine-'));
      roots.push(root);
      const path = join(root, 'bin');
      mkdirSync(path);
      const python = spawnSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' });
      symlinkSync(python.stdout.trim(), join(path, 'python3'));
      symlinkSync(findExecutable('make') ?? '/usr/bin/make', join(path, 'make'));
      // --force so the check runs even where the engine is installed; it fails before touching anything.
      const env = { ...process.env, PATH: path };
      const optional = await runCommand(
        process.execPath,
        [bin, 'install', '--force', '--optional', '--json'],
        {
          env,
        },
      );
      expect(optional.code, optional.output).toBe(0);
      const json = JSON.parse(optional.stdout.trim()) as { ready: boolean; missing: string; reason: string };
      expect(json).toMatchObject({ ready: false, missing: 'g++' });
      expect(json.reason).toContain('apt-get install -y g++ make');
      expect(optional.output).toContain('native engine unavailable (g++), continuing without it');

      const strict = await runCommand(process.execPath, [bin, 'install', '--force'], { env });
      expect(strict.code).toBe(1);
      expect(strict.output).toContain('g++ not found on PATH');
    });
  });
});
