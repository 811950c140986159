// The coordinator's HTTP app (no queue processor) for bench/load.mjs, in its own process so the
// load generator does not share its event loop. Prints its URL on stdout; SIGTERM stops it.
import { pino } from 'pino';
import { buildApp, createLogger } from '../dist/index.js';

const [redisUrl, dataRoot, home, token] = process.argv.slice(2);
const app = await buildApp({
  redisUrl,
  tokens: [token],
  dataRoot,
  home,
  rateLimit: { max: 1_000_000, timeWindowMs: 60_000 },
  logger: createLogger('warn', pino.destination(2)),
});
const url = await app.listen({ port: 0, host: '127.0.0.1' });
process.stdout.write(`${url}\n`);
process.once('SIGTERM', async () => {
  // The bench's jobs are left behind when this fails: say so, then stop anyway.
  await app.ctx.queue.queue
    .obliterate({ force: true })
    .catch((err) => process.stderr.write(`could not empty the bench queue: ${err.message}\n`));
  await app.close();
  process.exit(0);
});
