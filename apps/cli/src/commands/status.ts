import { parseArgs } from 'node:util';
import type { ExperimentDetail } from '@lits-ddp/protocol';
import { describeGeneration } from '../display/run-display.js';
import { CLIENT_ENV_HELP, clientFrom, reportApiError } from './logs.js';

const USAGE = `lits status [id] [--status S] [--limit N] [--url URL] [--json]

Without an id: the experiments, newest first. With one: its status, world size and generations,
progress, metrics and tracking.
${CLIENT_ENV_HELP}`;

const fmt = (v: number | undefined): string => (v === undefined ? '-' : v.toFixed(4));

const count = (n: number, what: string): string => `${n} ${what}${n === 1 ? '' : 's'}`;

/** The world size now, and the generations that led to it (oldest first, each with when it started). */
export function sizeLines(d: ExperimentDetail): string[] {
  if (d.worldSize === undefined) return [];
  const generation = d.generations?.at(-1)?.generation;
  const [min, max] = [d.spec['min-workers'], d.spec['max-workers']].map((v) => String(v ?? d.workers));
  const lines = [
    `world     ${count(d.worldSize, 'rank')}${generation ? `, generation ${generation}` : ''} (workers ${min}–${max})`,
  ];
  const r = d.resuming;
  if (r)
    lines.push(`resuming  at ${count(r.worldSize, 'worker')} from epoch ${r.resumeEpoch} since ${r.since}`);
  for (const g of d.generations ?? []) lines.push(`  ${g.at}  ${describeGeneration(g)}`);
  return lines;
}

export async function runStatus(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      status: { type: 'string' },
      limit: { type: 'string' },
      url: { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const client = clientFrom(values.url);
  try {
    const [id] = positionals;
    if (id) {
      const d = await client.get(id);
      if (values.json) {
        process.stdout.write(`${JSON.stringify(d)}\n`);
        return 0;
      }
      const out = [
        `${d.id}  ${d.status}  priority ${d.priority}  workers ${d.workers}  restarts ${d.restarts}`,
        ...sizeLines(d),
        d.progress
          ? `progress  epoch ${d.progress.epoch + 1}/${d.progress.epochs} step ${d.progress.step + 1}/${d.progress.stepsPerEpoch} (${(100 * d.progress.fraction).toFixed(0)} %) loss ${fmt(d.progress.loss)}`
          : undefined,
        d.queuePosition !== undefined ? `waiting for workers, position ${d.queuePosition}` : undefined,
        d.waitingForWorkers
          ? `waiting   ${d.waitingForWorkers.missing} more worker${d.waitingForWorkers.missing === 1 ? '' : 's'} since ${d.waitingForWorkers.since}: ${d.waitingForWorkers.message}`
          : undefined,
        d.tracking ? `tracking  ${d.tracking.kind} run ${d.tracking.runId}  ${d.tracking.url}` : undefined,
        d.workerIds ? `workers   ${d.workerIds.join(' ')}` : undefined,
        d.model?.checkpoint
          ? `model     ${d.model.checkpoint.path}  (${d.model.checkpoint.kind} checkpoint, for lits predict --model)`
          : undefined,
        d.model?.tfjsExport ? `export    ${d.model.tfjsExport.path}  (tfjs model.json)` : undefined,
        d.error ? `error     ${d.error}` : undefined,
        ...Object.entries({ ...d.latestMetrics, ...d.testMetrics }).map(
          ([k, v]) => `  ${k.padEnd(18)} ${fmt(v)}`,
        ),
      ].filter((l): l is string => l !== undefined);
      process.stdout.write(`${out.join('\n')}\n`);
      return 0;
    }
    const limit = values.limit !== undefined ? Number(values.limit) : 20;
    const page = await client.list({ ...(values.status ? { status: values.status } : {}), limit });
    if (values.json) {
      process.stdout.write(`${JSON.stringify(page)}\n`);
      return 0;
    }
    const rows = page.items.map((e) =>
      [
        e.id.padEnd(30),
        e.status.padEnd(10),
        String(e.priority).padStart(3),
        // Ranks now / workers asked for, once a generation runs on another number.
        (e.worldSize !== undefined && e.worldSize !== e.workers
          ? `${e.worldSize}/${e.workers}`
          : String(e.workers)
        ).padStart(3),
        e.submittedAt,
        fmt(e.latestMetrics?.train_avg_loss),
      ].join('  '),
    );
    process.stdout.write(
      `${['id'.padEnd(30), 'status'.padEnd(10), 'pri', 'wrk', 'submitted'.padEnd(24), 'train loss'].join('  ')}\n${rows.join('\n')}${rows.length ? '\n' : ''}(${page.items.length} of ${page.total})\n`,
    );
    return 0;
  } catch (err) {
    return reportApiError(err);
  }
}
