// The outage tracker with real connections to a redis-server this test stops and starts.
import { EventEmitter } from 'node:events';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisServer } from '@lits-ddp/local-services';
import {
  isRedisUnreachable,
  RedisOutageTracker,
  type RedisOutageFields,
  type RedisOutageLog,
} from '../src/index.js';

interface Line {
  level: 'warn' | 'info';
  fields: RedisOutageFields;
  message: string;
}

/** A log that keeps its lines, and resolves a wait once a line of a level has come. */
function capturingLog(): {
  log: RedisOutageLog;
  lines: Line[];
  next: (level: Line['level']) => Promise<Line>;
} {
  const lines: Line[] = [];
  const waiting: { level: Line['level']; resolve: (l: Line) => void }[] = [];
  const add = (level: Line['level'], fields: RedisOutageFields, message: string): void => {
    const line = { level, fields, message };
    lines.push(line);
    for (const w of waiting.filter((w) => w.level === level)) {
      waiting.splice(waiting.indexOf(w), 1);
      w.resolve(line);
    }
  };
  return {
    lines,
    log: { warn: (f, m) => add('warn', f, m), info: (f, m) => add('info', f, m) },
    next: (level) => new Promise((resolve) => waiting.push({ level, resolve })),
  };
}

describe('RedisOutageTracker (real redis-server)', () => {
  let server: RedisServer;
  beforeAll(async () => {
    server = await RedisServer.start({ install: false });
  });
  afterAll(async () => {
    await server.dispose();
  });

  it('logs one line when its connections fail and one when one is back, through many failed attempts', async () => {
    const { log, lines, next } = capturingLog();
    const tracker = new RedisOutageTracker(log);
    const a = tracker.follow(new Redis(server.url, { maxRetriesPerRequest: null }), 'a');
    // A duplicate has no listener of its own: followed, ioredis prints nothing for it.
    const b = tracker.follow(a.duplicate(), 'b');
    let attempts = 0;
    a.on('error', () => attempts++);
    try {
      await Promise.all([a.ping(), b.ping()]);
      const began = next('warn');
      await server.stop();
      const begin = await began;
      expect(begin.fields.redisRole).toMatch(/^[ab]$/);
      expect(begin.fields.reason).toMatch(/^connect ECONNREFUSED 127\.0\.0\.1:\d+$/);
      expect(begin.message).toBe(
        `Redis unreachable (${begin.fields.redisRole} connection: ${begin.fields.reason}); reconnecting, logged once until it is back`,
      );
      expect(tracker.outage).toMatchObject({ role: begin.fields.redisRole, reason: begin.fields.reason });
      // Outside errors: part of the outage, whatever the role.
      const refused = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
      expect(tracker.absorbs(refused, 'elsewhere')).toBe(true);
      expect(tracker.absorbs(new Error('Connection is closed.'), 'elsewhere')).toBe(true);
      expect(tracker.absorbs(new Error('WRONGTYPE Operation against a key'), 'a')).toBe(false);
      while (attempts < 6) await new Promise((resolve) => a.once('error', resolve));
      const ended = next('info');
      await server.start();
      const end = await ended;
      expect(end.message).toMatch(/^Redis reachable again after \d+\.\d s$/);
      expect(end.fields).toMatchObject({ redisRole: begin.fields.redisRole, reason: begin.fields.reason });
      expect(end.fields.downS).toBeGreaterThan(0);
      await Promise.all([a.ping(), b.ping()]);
      expect(lines.map((l) => l.level)).toEqual(['warn', 'info']);
      expect(tracker.outage).toBeUndefined();
    } finally {
      a.disconnect();
      b.disconnect();
    }
  });

  it("absorbs an unreachable error of a followed role (beginning the outage), and that source's 'ready' ends it", async () => {
    const { log, lines } = capturingLog();
    const tracker = new RedisOutageTracker(log, () => 1000);
    const backend = new EventEmitter();
    tracker.followEvents(backend, 'queue worker');
    const reset = Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
    expect(tracker.absorbs(reset, 'not followed')).toBe(false);
    expect(tracker.absorbs(new Error('Connection is closed.'), 'queue worker')).toBe(false);
    let unreachable = false;
    void tracker.unreachable().then(() => (unreachable = true));
    expect(tracker.absorbs(reset, 'queue worker')).toBe(true);
    await Promise.resolve();
    expect(unreachable).toBe(true);
    await tracker.unreachable();
    backend.emit('error', reset);
    backend.emit('ready');
    expect(lines.map((l) => [l.level, l.message])).toEqual([
      [
        'warn',
        'Redis unreachable (queue worker connection: read ECONNRESET); reconnecting, logged once until it is back',
      ],
      ['info', 'Redis reachable again after 0.0 s'],
    ]);
  });

  it('counts socket errors and given-up commands as unreachable, not an error of one command', () => {
    const code = (c: string): Error => Object.assign(new Error(c), { code: c });
    expect(isRedisUnreachable(code('ECONNREFUSED'))).toBe(true);
    expect(isRedisUnreachable(code('ETIMEDOUT'))).toBe(true);
    expect(isRedisUnreachable(new AggregateError([code('ECONNREFUSED')], ''))).toBe(true);
    const gaveUp = Object.assign(new Error('Reached the max retries per request limit'), {
      name: 'MaxRetriesPerRequestError',
    });
    expect(isRedisUnreachable(gaveUp)).toBe(true);
    expect(isRedisUnreachable(new Error('Connection is closed.'))).toBe(false);
    expect(isRedisUnreachable(new Error('ERR unknown command'))).toBe(false);
    expect(isRedisUnreachable('ECONNREFUSED')).toBe(false);
  });
});
