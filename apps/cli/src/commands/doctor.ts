// `lits doctor`: what a machine can run (engines, GPU driver, CUDA libraries, Node, Redis, MLflow) and what to
// install for the rest. Exit 0 when everything the asked engine needs is fine, 1 otherwise, 2 on a usage error.
import { parseArgs } from 'node:util';
import { errorMessage } from '@lits-ddp/errors';
import { parseEngineRequest } from '@lits-ddp/unet';
import { diagnose, type DoctorOptions } from '../doctor/diagnose.js';
import { workerThreads } from '../doctor/engine-probe.js';
import { formatDoctorReport } from '../doctor/format.js';
import { configuredUrl } from '../doctor/services.js';
import { UsageError } from '../errors.js';

export { DoctorReport } from '../doctor/report-schema.js';

const USAGE = `lits doctor [--engine auto|gpu|node|cpu] [--json] [--redis-url URL] [--mlflow-url URL] [--threads N]
            [--timeout-s S]

Run it first on a new machine. Loads each engine (@tensorflow/tfjs-node-gpu, @tensorflow/tfjs-node,
@tensorflow/tfjs) in a child process as a worker would, finds the NVIDIA driver, libcuda.so.1 and the CUDA
libraries TensorFlow opens, checks Node and npm, PINGs Redis and asks MLflow for /health, and says what to
install for anything missing.

  --engine E       the engine to judge (default TFJS_ENGINE, then auto: any engine will do)
  --json           one JSON object on stdout (its schema: DoctorReport in apps/cli/src/doctor/report-schema.ts)
  --redis-url URL  default REDIS_URL; unset: not checked (lits train embeds one)
  --mlflow-url URL default MLFLOW_TRACKING_URI; unset: not checked (runs are written to a local folder)
  --threads N      a worker's intra-op threads (default LITS_ENGINE_THREADS, then 1)
  --timeout-s S    how long one engine may take to load (default 120; a first GPU load can compile kernels)

Exit status: 0 when the asked engine and the configured services are fine, 1 otherwise, 2 on a usage error.`;

/** How long Redis and MLflow get to answer: a healthy one answers in milliseconds. */
const SERVICE_TIMEOUT_MS = 3000;

export async function runDoctor(argv: string[]): Promise<number> {
  let options: DoctorOptions;
  let json: boolean;
  try {
    const { values } = parseArgs({
      args: argv,
      options: {
        engine: { type: 'string' },
        json: { type: 'boolean', default: false },
        'redis-url': { type: 'string' },
        'mlflow-url': { type: 'string' },
        threads: { type: 'string' },
        'timeout-s': { type: 'string', default: '120' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
    if (values.help) {
      process.stdout.write(`${USAGE}\n`);
      return 0;
    }
    const timeoutS = Number(values['timeout-s']);
    if (!Number.isFinite(timeoutS) || timeoutS <= 0)
      throw new UsageError(`--timeout-s ${values['timeout-s']} is not a positive number of seconds`);
    json = values.json;
    options = {
      engine: parseEngineRequest(
        values.engine ?? process.env.TFJS_ENGINE,
        values.engine ? '--engine' : 'TFJS_ENGINE',
      ),
      threads: workerThreads(values.threads),
      redis: configuredUrl(values['redis-url'], '--redis-url', 'REDIS_URL'),
      mlflow: configuredUrl(values['mlflow-url'], '--mlflow-url', 'MLFLOW_TRACKING_URI'),
      engineTimeoutMs: timeoutS * 1000,
      serviceTimeoutMs: SERVICE_TIMEOUT_MS,
    };
  } catch (err) {
    process.stderr.write(`lits doctor: ${errorMessage(err)}\n\n${USAGE}\n`);
    return 2;
  }
  const report = await diagnose(options);
  process.stdout.write(json ? `${JSON.stringify(report)}\n` : formatDoctorReport(report));
  return report.ok ? 0 : 1;
}
