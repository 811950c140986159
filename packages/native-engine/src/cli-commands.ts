// `lits-engine` commands; src/cli.ts is the bin, tests call runEngineCli directly.
import { parseArgs } from 'node:util';
import { errorMessage } from '@lits-ddp/errors';
import { ensureNativeEngine, nativeEngineStatus } from './engine.js';
import { NativeEngineUnavailableError } from './errors.js';
import { CUDA_WHEELS, TENSORFLOW_CPU_VERSION, TENSORFLOW_GPU_VERSION } from './pins.js';

export const USAGE = `lits-engine — tfjs-node's native TensorFlow engine, provisioned from registry packages only

  lits-engine install [--gpu] [--json] [--optional] [--force]
      make @tensorflow/tfjs-node loadable: libtensorflow ${TENSORFLOW_CPU_VERSION} from the PyPI tensorflow-cpu
      wheel (cached under ~/.cache/lits-ddp or LITS_CACHE_DIR), the addon built with node-gyp, then a
      load check in a child process. A no-op when it is already installed.
      --gpu       the GPU engine instead: @tensorflow/tfjs-node-gpu with libtensorflow ${TENSORFLOW_GPU_VERSION} from the
                  PyPI tensorflow wheel and CUDA 12.5 / cuDNN 9.3 from ${CUDA_WHEELS.length} pinned nvidia wheels (about 6.5 GB
                  of disk while installing, 4 GB cached); the host's NVIDIA driver supplies libcuda.so.1.
                  Without a GPU it still loads, on TensorFlow's CPU device
      --optional  when it cannot be provisioned, print why and exit 0 (the pure-JS cpu engine remains)
      --force     rebuild even when it is already installed
      --json      print the report (or {"ready":false,…}) as one JSON line on stdout
  lits-engine status [--gpu] [--json]
      whether it is installed (exit 0) or not (exit 1, with the reason); reads files only.

Progress goes to stderr. Usage errors exit 2.`;

export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

const processIo: CliIo = {
  stdout: (t) => void process.stdout.write(t),
  stderr: (t) => void process.stderr.write(t),
};

export async function runEngineCli(argv: readonly string[], io: CliIo = processIo): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      options: {
        json: { type: 'boolean', default: false },
        optional: { type: 'boolean', default: false },
        force: { type: 'boolean', default: false },
        gpu: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (err) {
    io.stderr(`${errorMessage(err)}\n${USAGE}\n`);
    return 2;
  }
  const { values, positionals } = parsed;
  const verb = positionals[0];
  if (values.help) {
    io.stdout(`${USAGE}\n`);
    return 0;
  }
  const usageError = (problem: string): number => {
    io.stderr(`${problem}\n${USAGE}\n`);
    return 2;
  };
  if (!verb) return usageError('missing command');
  if (positionals.length > 1) return usageError(`unexpected argument "${positionals[1]}"`);
  const flavour = values.gpu ? 'gpu' : 'cpu';
  if (verb === 'status') {
    if (values.optional || values.force) return usageError('status takes only --gpu and --json');
    const status = nativeEngineStatus({ flavour });
    if (values.json) io.stdout(`${JSON.stringify(status)}\n`);
    else if (status.ready) {
      const gpu = status.marker?.gpu;
      const cuda = gpu
        ? `, ${gpu.cudaLibraries.length} CUDA libraries, driver ${gpu.driverFound ? 'found' : 'not found'} at install`
        : '';
      io.stdout(`ready: libtensorflow ${status.marker?.libtensorflow}${cuda}, addon ${status.addonPath}\n`);
    } else io.stdout(`not ready: ${status.reason}\n`);
    return status.ready ? 0 : 1;
  }
  if (verb !== 'install') return usageError(`unknown command "${verb}"`);

  const log = (line: string): void => io.stderr(`[lits-engine] ${line}\n`);
  try {
    const report = await ensureNativeEngine({ flavour, log, force: values.force });
    if (values.json) io.stdout(`${JSON.stringify(report)}\n`);
    else {
      const how = report.status === 'installed' ? `installed in ${report.ms} ms` : 'already installed';
      const device = report.gpu
        ? `, ${report.gpu.gpuDevice ? 'GPU device in use' : 'no GPU visible (CPU device)'}`
        : '';
      io.stdout(
        `${flavour} native engine ready: libtensorflow ${report.libtensorflowVersion}${device}, ${how}\n`,
      );
    }
    return 0;
  } catch (err) {
    const missing = err instanceof NativeEngineUnavailableError ? err.missing : 'unexpected';
    const message = errorMessage(err);
    if (values.json) io.stdout(`${JSON.stringify({ ready: false, missing, reason: message })}\n`);
    if (values.optional) {
      // The demo and tests go on with the pure-JS engine; say so loudly enough to be noticed.
      io.stderr(`[lits-engine] native engine unavailable (${missing}), continuing without it:\n${message}\n`);
      return 0;
    }
    io.stderr(`[lits-engine] ${message}\n`);
    return 1;
  }
}
