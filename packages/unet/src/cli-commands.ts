// `lits-unet` commands, also mounted by the umbrella `lits` command through runUnetCli.
import { parseArgs } from 'node:util';
import { errorMessage } from '@lits-ddp/errors';
import { SEED_ARCHITECTURE, validateArchitecture, type UNetArchitecture } from './architecture.js';
import { loadCheckpoint } from './checkpoint.js';
import { loadEngine } from './engine.js';
import { UnetUsageError } from './errors.js';
import { exportTfjsModel } from './export-tfjs.js';
import { formatSummary, modelSummary } from './summary.js';

export interface CliIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
}

const processIo: CliIo = {
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
};

export const UNET_USAGE = `Usage: lits-unet <command> [options]

Commands:
  summary [--json] [--width 32] [--in-channels 1] [--classes 3] [--dropout 0.25]
      Per-block parameter table of the seed's UNet3D and the total.
  export --checkpoint DIR --out DIR
      Writes a checkpoint as a tfjs LayersModel (model.json + weights.bin) for inference.
  engine [--json]
      Loads the engine TFJS_ENGINE selects (auto|gpu|node|cpu) and says which one runs.
`;

function positiveInt(value: string | undefined, flag: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1)
    throw new UnetUsageError(`${flag} must be a positive integer, got '${value}'`);
  return n;
}

async function summary(args: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      json: { type: 'boolean', default: false },
      width: { type: 'string' },
      'in-channels': { type: 'string' },
      classes: { type: 'string' },
      dropout: { type: 'string' },
    },
  });
  const dropout = values.dropout === undefined ? SEED_ARCHITECTURE.dropout : Number(values.dropout);
  let architecture: UNetArchitecture;
  try {
    architecture = validateArchitecture(
      {
        width: positiveInt(values.width, '--width', SEED_ARCHITECTURE.width),
        inChannels: positiveInt(values['in-channels'], '--in-channels', SEED_ARCHITECTURE.inChannels),
        classes: positiveInt(values.classes, '--classes', SEED_ARCHITECTURE.classes),
        dropout,
      },
      'options',
    );
  } catch (err) {
    throw new UnetUsageError(errorMessage(err), { cause: err });
  }
  io.stdout(
    values.json ? `${JSON.stringify(modelSummary(architecture))}\n` : `${formatSummary(architecture)}\n`,
  );
  return 0;
}

async function exportCommand(args: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { checkpoint: { type: 'string' }, out: { type: 'string' } },
  });
  if (!values.checkpoint || !values.out)
    throw new UnetUsageError('export needs --checkpoint DIR and --out DIR');
  const engine = await loadEngine();
  const { model } = await loadCheckpoint(engine.tf, values.checkpoint);
  const path = await exportTfjsModel(engine.tf, model, values.out);
  io.stdout(`${path}\n`);
  return 0;
}

async function engineCommand(args: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({ args, options: { json: { type: 'boolean', default: false } } });
  const e = await loadEngine();
  const info = {
    engine: e.name,
    packageName: e.packageName,
    version: e.version,
    backend: e.backend,
    libtensorflow: e.libtensorflow,
    threads: e.threads,
    fallback: e.fallback,
    attempts: e.attempts,
  };
  const text = e.fallback ? `${e.description}\n${e.fallback}\n` : `${e.description}\n`;
  io.stdout(values.json ? `${JSON.stringify(info)}\n` : text);
  return 0;
}

/** Runs `lits-unet` with `argv` (without node and script); returns the exit code (0 ok, 1 failure, 2 usage). */
export async function runUnetCli(argv: readonly string[], io: CliIo = processIo): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'summary':
        return await summary(rest, io);
      case 'export':
        return await exportCommand(rest, io);
      case 'engine':
        return await engineCommand(rest, io);
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        io.stdout(UNET_USAGE);
        return command === undefined ? 2 : 0;
      default:
        throw new UnetUsageError(`unknown command '${command}'`);
    }
  } catch (err) {
    // Not dropped: every failure is reported on stderr and as the exit code.
    const code = (err as { code?: unknown } | null)?.code;
    const usage =
      err instanceof UnetUsageError || (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS'));
    io.stderr(`lits-unet: ${errorMessage(err)}\n${usage ? `\n${UNET_USAGE}` : ''}`);
    return usage ? 2 : 1;
  }
}
