// `node engine-probe-child.js <gpu|node|cpu> <intraOp> <interOp>`: loads one engine exactly as `lits worker`
// does and prints what it got as one marked JSON line. A process of its own per engine, because tfjs-node and
// tfjs-node-gpu cannot both load into one process, and a crashing native load must not take the doctor with it.
import { errorMessage } from '@lits-ddp/errors';
import { EngineUnavailableError, loadEngine } from '@lits-ddp/unet';
import { notLoaded, PROBE_LINE_PREFIX, type EngineProbeResult } from './engine-probe-result.js';

async function probe(engine: string, intraOp: number, interOp: number): Promise<EngineProbeResult> {
  try {
    const loaded = await loadEngine({ engine, deterministic: true, threads: { intraOp, interOp } });
    const backend = loaded.tf.backend() as unknown as { isUsingGpuDevice?: unknown };
    return {
      loads: true,
      installed: true,
      version: loaded.version,
      libtensorflow: loaded.libtensorflow,
      backend: loaded.backend,
      gpuDevice: typeof backend.isUsingGpuDevice === 'boolean' ? backend.isUsingGpuDevice : null,
      threads: loaded.threads,
      onednn: loaded.onednn,
      cpuIsa: loaded.cpuIsa,
      error: null,
    };
  } catch (err) {
    const attempt = err instanceof EngineUnavailableError ? err.attempts[0] : undefined;
    return notLoaded(
      attempt?.error ?? errorMessage(err).split('\n')[0] ?? 'unknown',
      attempt?.installed ?? true,
    );
  }
}

const [engine = '', intraOp = '1', interOp = '1'] = process.argv.slice(2);
const result = await probe(engine, Number(intraOp), Number(interOp));
process.stdout.write(`${PROBE_LINE_PREFIX}${JSON.stringify(result)}\n`);
// A loaded native engine keeps threads alive; the answer is out, so the process ends here.
process.exit(0);
