import { parseArgs } from 'node:util';
import { CLIENT_ENV_HELP, clientFrom, reportApiError } from './logs.js';

const USAGE = `lits cancel id [--url URL]

Cancels an experiment: a queued one is removed, a running one is aborted (MLflow status KILLED).
${CLIENT_ENV_HELP}`;

export async function runCancel(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { url: { type: 'string' }, help: { type: 'boolean', short: 'h', default: false } },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const [id] = positionals;
  if (!id) {
    process.stderr.write(`lits cancel: which experiment?\n\n${USAGE}\n`);
    return 2;
  }
  try {
    const r = await clientFrom(values.url).cancel(id);
    process.stdout.write(`${r.id} ${r.status}\n`);
    return 0;
  } catch (err) {
    return reportApiError(err);
  }
}
