import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '@lits-ddp/local-services';
import { serviceUrl } from '@lits-ddp/local-services/vitest';
import { appBin } from './app-bins.js';
import { waitFor } from './process-harness.js';

const redisUrl = serviceUrl('redis');
const LITS = appBin('@lits-ddp/cli', 'lits');

describe.skipIf(!redisUrl)('lits serve on SIGTERM', () => {
  let home: string | undefined;
  afterAll(async () => {
    if (home) await rm(home, { recursive: true, force: true });
  });

  it('exits, with code 0, as soon as it has logged `stopped`: nothing keeps the process alive after', async () => {
    home = await mkdtemp(join(tmpdir(), 'serve-shutdown-'));
    const port = await freePort();
    const child = spawn(
      process.execPath,
      [LITS, 'serve', '--no-auth', '--port', String(port), '--home', home, '--redis', redisUrl as string],
      {
        env: {
          ...process.env,
          LITS_KEY_PREFIX: `shutdown-${randomBytes(3).toString('hex')}`,
          LOG_LEVEL: 'info',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const exited = new Promise<{ code: number | null; at: number }>((resolve) =>
      child.once('exit', (code) => resolve({ code, at: Date.now() })),
    );
    await waitFor('lits serve to answer /healthz', async () => {
      const ok = await fetch(`http://127.0.0.1:${port}/healthz`).then(
        (r) => r.ok,
        () => false,
      );
      return ok ? true : undefined;
    });
    child.kill('SIGTERM');
    const { code, at } = await exited;
    expect(code, output).toBe(0);
    const stopped = output
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { msg?: string; time?: number })
      .find((l) => l.msg === 'stopped');
    expect(stopped?.time, output).toBeDefined();
    // It used to linger ~20 s (a close timeout's timer left pending); exiting takes milliseconds once nothing is left.
    const lingerMs = at - (stopped?.time as number);
    process.stdout.write(`lits serve exited ${lingerMs} ms after logging stopped\n`);
    expect(lingerMs).toBeLessThan(5000);
  });
});
