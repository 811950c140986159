import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { WorkerPool } from '../orchestration/worker-pool.js';

const escapeHtml = (s: string): string =>
  s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c] as string);

/**
 * Our analogue of the seed's system-intelligence report: the machines of the workers that ran the
 * run (CPU, memory, OS, GPUs, Node and tfjs versions, engine), as JSON and as an HTML table.
 */
export async function writeSystemReport(
  pool: WorkerPool,
  runDir: string,
  runId: string,
  workerIds: readonly string[],
): Promise<void> {
  const workers = (await pool.list()).filter((w) => workerIds.includes(w.info.id));
  const report = {
    runId,
    createdAt: new Date().toISOString(),
    coordinator: { node: process.version, platform: `${process.platform} ${process.arch}` },
    workers: workers.map((w) => ({
      id: w.info.id,
      engine: w.info.engine,
      engineThreads: w.info.engineThreads ?? null,
      libtensorflow: w.info.libtensorflow ?? null,
      device: w.info.device,
      ...w.info.system,
    })),
  };
  await writeFile(join(runDir, 'system_report.json'), `${JSON.stringify(report, null, 2)}\n`);
  const rows = report.workers
    .map(
      (w) =>
        `<tr>${[
          w.id,
          w.engineThreads
            ? `${w.engine} (libtensorflow ${w.libtensorflow ?? '?'}, ${w.engineThreads.intraOp}/${w.engineThreads.interOp} intra/inter-op threads)`
            : w.engine,
          w.device,
          w.hostname,
          w.os,
          `${w.cpuModel} ×${w.cpuCount}`,
          `${(w.memoryBytes / 2 ** 30).toFixed(1)} GiB`,
          w.node,
          w.tfjs,
          w.gpus.map((g) => g.name).join(', ') || '—',
        ]
          .map((c) => `<td>${escapeHtml(String(c))}</td>`)
          .join('')}</tr>`,
    )
    .join('\n');
  const head = ['worker', 'engine', 'device', 'host', 'OS', 'CPU', 'memory', 'Node', 'tfjs', 'GPUs']
    .map((h) => `<th>${h}</th>`)
    .join('');
  await writeFile(
    join(runDir, 'system_report.html'),
    `<!doctype html><meta charset="utf-8"><title>System report ${escapeHtml(runId)}</title>\n<table border="1"><tr>${head}</tr>\n${rows}\n</table>\n`,
  );
}
