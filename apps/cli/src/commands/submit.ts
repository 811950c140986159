import { parseArgs } from 'node:util';
import { errorMessage } from '@lits-ddp/errors';
import { readSpecFile } from '../spec-flags.js';
import { CLIENT_ENV_HELP, clientFrom, exitCodeOf, followExperiment, reportApiError } from './logs.js';

const USAGE = `lits submit spec.json [--wait] [--priority 0-100] [--id ID] [--idempotency-key KEY] [--url URL] [--json]

Queues an experiment on the coordinator. --wait follows it to the end with progress bars.
A retried submit with the same --idempotency-key (or --id) never queues a second experiment.
${CLIENT_ENV_HELP}`;

export async function runSubmit(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      wait: { type: 'boolean', default: false },
      priority: { type: 'string' },
      id: { type: 'string' },
      'idempotency-key': { type: 'string' },
      url: { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const [file, ...extra] = positionals;
  if (!file || extra.length > 0) {
    process.stderr.write(`lits submit: give exactly one spec file\n\n${USAGE}\n`);
    return 2;
  }
  let spec: Record<string, unknown>;
  try {
    // The coordinator checks the fields (resolveSpec) and answers 400 naming each bad one.
    spec = await readSpecFile(file);
  } catch (err) {
    process.stderr.write(`lits submit: ${errorMessage(err)}\n`);
    return 2;
  }
  const priority = values.priority !== undefined ? Number(values.priority) : undefined;
  if (priority !== undefined && !(Number.isInteger(priority) && priority >= 0 && priority <= 100)) {
    process.stderr.write(
      `lits submit: --priority must be an integer from 0 to 100, got ${values.priority}\n`,
    );
    return 2;
  }
  const client = clientFrom(values.url);
  try {
    const accepted = await client.submit(spec, {
      ...(values.id ? { id: values.id } : {}),
      ...(priority !== undefined ? { priority } : {}),
      ...(values['idempotency-key'] ? { idempotencyKey: values['idempotency-key'] } : {}),
    });
    if (values.json) process.stdout.write(`${JSON.stringify(accepted)}\n`);
    else process.stderr.write(`submitted ${accepted.id} (${accepted.status})\n`);
    if (!values.wait) {
      if (!values.json) process.stdout.write(`${accepted.id}\n`);
      return 0;
    }
    const end = await followExperiment(client, accepted.id, values.json);
    if (!values.json) process.stdout.write(`${accepted.id} ${end.status}\n`);
    return exitCodeOf(end.status);
  } catch (err) {
    return reportApiError(err);
  }
}
