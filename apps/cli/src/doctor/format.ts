// The human-readable report: one section per concern, a column of verdicts, and what to do under each problem.
import { formatThreads } from '@lits-ddp/unet';
import type { DoctorEngine, DoctorLibrary, DoctorReport, DoctorService } from './report-schema.js';

const pad = (text: string, width: number): string => text.padEnd(width);
const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

function engineLine(e: DoctorEngine): string[] {
  const head = `  ${pad(e.engine, 5)} ${pad(e.package, 27)}`;
  if (!e.loads) {
    const state = e.installed ? `does not load: ${e.error ?? 'unknown'}` : 'not installed';
    return [`${head} ${state}`, ...(e.hint ? [`${' '.repeat(36)}→ ${e.hint}`] : [])];
  }
  const parts = [`${e.version ?? '?'}`];
  if (e.libtensorflow) parts.push(`libtensorflow ${e.libtensorflow}`);
  if (e.engine === 'cpu') parts.push('pure JS');
  else parts.push(e.gpuDevice ? 'on GPU' : 'CPU device');
  if (e.onednn !== null) parts.push(`oneDNN ${e.onednn ? 'on' : 'off'}`);
  if (e.cpuIsa) parts.push(e.cpuIsa);
  if (e.threads) parts.push(formatThreads(e.threads));
  parts.push(`loaded in ${seconds(e.ms)}`);
  return [`${head} ${parts.join(', ')}`, ...(e.hint ? [`${' '.repeat(36)}→ ${e.hint}`] : [])];
}

function libraryLine(l: DoctorLibrary): string {
  const state = l.loads ? `loads${l.path ? ` (${l.path})` : ''}` : `missing: ${l.error ?? 'not found'}`;
  return `  ${pad(l.name, 20)} ${state}`;
}

function serviceLine(name: string, s: DoctorService): string[] {
  if (s.url === null)
    return [`  ${pad(name, 7)} not configured`, ...(s.hint ? [`          → ${s.hint}`] : [])];
  const state = s.reachable
    ? `reachable${s.version ? `, version ${s.version}` : ''}, ${s.ms ?? 0} ms`
    : `UNREACHABLE: ${s.error ?? 'no answer'}`;
  return [
    `  ${pad(name, 7)} ${s.url} (${s.source ?? '?'}): ${state}`,
    ...(s.hint ? [`          → ${s.hint}`] : []),
  ];
}

export function formatDoctorReport(r: DoctorReport): string {
  const lines: string[] = [];
  const verdict = r.ok ? 'ready' : 'NOT READY';
  lines.push(`lits doctor: engine ${r.requested} → ${r.selected ?? 'none'}: ${verdict}`, '');
  const threads = r.engines.find((e) => e.threads)?.threads;
  lines.push(
    `Engines${threads ? ` (native ones with a worker's thread pools, from ${threads.source})` : ''}`,
  );
  for (const e of r.engines) lines.push(...engineLine(e));

  const d = r.driver;
  lines.push('', 'NVIDIA driver');
  lines.push(
    `  driver               ${d.found ? (d.version ?? 'found') : `not found (${d.nvidiaSmiError ?? 'nvidia-smi lists no GPU'}; no /proc/driver/nvidia/version)`}`,
  );
  if (d.kernelModule) lines.push(`  kernel module        ${d.kernelModule}`);
  lines.push(libraryLine(d.libcuda));
  if (d.gpus.length === 0) lines.push('  GPUs                 none');
  for (const g of d.gpus) {
    const memory = g.memoryBytes ? `, ${(g.memoryBytes / 2 ** 30).toFixed(0)} GiB` : '';
    lines.push(
      `  GPU ${pad(String(g.index), 16)} ${g.name}${memory}, ${g.uuid}${g.visible ? '' : ' (hidden by CUDA_VISIBLE_DEVICES)'}`,
    );
  }
  for (const [name, value] of Object.entries(d.env)) lines.push(`  ${pad(name, 20)} ${value ?? '(unset)'}`);
  if (d.hint) lines.push(`  → ${d.hint}`);

  const c = r.cudaLibraries;
  lines.push(
    '',
    `CUDA libraries (${c.cuda}, for libtensorflow ${c.libtensorflow}${c.assumed ? ', assumed' : ''})`,
  );
  for (const l of c.libraries) lines.push(libraryLine(l));
  if (c.hint) lines.push(`  → ${c.hint}`);

  const rt = r.runtime;
  lines.push('', 'Runtime');
  lines.push(`  node ${rt.node}, npm ${rt.npm ?? 'not found'}, ${rt.platform} ${rt.arch}, ${rt.cpus} CPUs`);
  if (rt.warning) lines.push(`  → ${rt.warning}`);

  lines.push('', 'Services');
  lines.push(...serviceLine('redis', r.services.redis), ...serviceLine('mlflow', r.services.mlflow));

  if (r.problems.length > 0) lines.push('', 'Problems', ...r.problems.map((p) => `  ✗ ${p}`));
  if (r.warnings.length > 0) lines.push('', 'Warnings', ...r.warnings.map((w) => `  ! ${w}`));
  return `${lines.join('\n')}\n`;
}
