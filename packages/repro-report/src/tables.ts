import type { ReproRunRecord } from './run-record.js';
import type { ElasticSummary, ReproSummary } from './summary.js';

function csvCell(value: string | number | boolean | null | undefined): string {
  if (value === null || value === undefined) return '';
  const s = String(value);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** One row per run, numbers at full precision (JS shortest round-trip form). */
export function runsToCsv(runs: readonly ReproRunRecord[]): string {
  const classes = runs[0]?.iou.length ?? 3;
  const header = [
    'mode',
    'variant',
    'index',
    'workers',
    'status',
    'run_id',
    'data_seed',
    'model_seed',
    ...Array.from({ length: classes }, (_, c) => `test_iou_${c}`),
    'test_mean_iou',
    'weight_hash',
    'ranks_agree',
    'restarts',
    'killed_rank',
    'killed_epoch',
    'resumed_from_epoch',
    'world_sizes',
    'recovery_s',
    'test_cases',
    'wall_s',
    'error',
  ];
  const rows = runs.map((r) =>
    [
      r.mode,
      r.variant,
      r.index,
      r.workers,
      r.status,
      r.runId,
      r.seeds.data,
      r.seeds.model,
      ...Array.from({ length: classes }, (_, c) => r.iou[c]),
      r.meanIou,
      r.weightHash,
      r.ranksAgree,
      r.restarts,
      r.killed?.rank,
      r.killed?.epoch,
      r.resumedFrom?.epoch,
      r.worldSizes?.join(' '),
      r.recoveryS,
      r.testCases.join(' '),
      r.wallS,
      r.error,
    ]
      .map(csvCell)
      .join(','),
  );
  return `${[header.join(','), ...rows].join('\n')}\n`;
}

const fixed = (v: number): string => v.toFixed(4);
const sci = (v: number): string => (v === 0 ? '0' : v.toExponential(1));

const capitalised = (s: string): string => `${s[0]?.toUpperCase() ?? ''}${s.slice(1)}`;

const matchCell = (m: boolean | null): string =>
  m === null ? 'not compared' : m ? 'same as the uninterrupted runs' : 'DIFFER from the uninterrupted runs';

/** The elastic runs: the world sizes each went through, the shrink's recovery time and the final weights. */
function elasticTable(elastic: ElasticSummary): string[] {
  const rows = [
    '| elastic run | world sizes | kill → first step at the smaller size | final weights |',
    '| --- | --- | --: | --- |',
  ];
  for (const r of elastic.runs) {
    const sizes = r.worldSizes.length > 0 ? r.worldSizes.join(' → ') : '–';
    const recovery = r.variant === 'shrink' && r.recoveryS !== null ? `${r.recoveryS.toFixed(1)} s` : '–';
    const weights = r.status === 'finished' ? matchCell(r.matchesUninterrupted) : r.status;
    rows.push(`| ${r.variant} | ${sizes} | ${recovery} | ${weights} |`);
  }
  return rows;
}

/** Markdown: mean ± sd, variance and range per mode and class; then the weight-hash counts and elastic runs. */
export function formatSummaryMarkdown(summary: ReproSummary): string {
  const labels = [...summary.classNames, 'mean IoU'];
  const out: string[] = [
    '| mode | class | n | mean ± sd | variance | min – max |',
    '| --- | --- | --: | --- | --: | --- |',
  ];
  for (const m of summary.modes) {
    summary.metricNames.forEach((name, i) => {
      const s = m.iou[name];
      const cells = s
        ? [
            String(s.n),
            `${fixed(s.mean)} ± ${fixed(s.sd)}`,
            sci(s.variance),
            `${fixed(s.min)} – ${fixed(s.max)}`,
          ]
        : ['0', '–', '–', '–'];
      out.push(`| ${capitalised(m.mode)} | ${labels[i]} | ${cells.join(' | ')} |`);
    });
  }
  out.push(
    '',
    '| mode | repeated runs (finished) | workers | distinct final weight hashes (all runs of the mode) |',
    '| --- | --: | --- | --: |',
  );
  for (const m of summary.modes) {
    out.push(
      `| ${capitalised(m.mode)} | ${m.runs} (${m.finished}) | ${m.workers.join(', ')} | ${m.distinctHashes} |`,
    );
  }
  const byN = Object.entries(summary.deterministicByWorldSize);
  const notes: string[] = [];
  if (byN.length > 0)
    notes.push(
      `Deterministic, distinct final hashes by world size: ${byN.map(([n, c]) => `N=${n}: ${c}`).join(', ')}.`,
    );
  if (summary.crash) {
    const c = summary.crash;
    const match =
      c.matchesUninterrupted === null
        ? 'no uninterrupted run to compare with'
        : c.matchesUninterrupted
          ? 'same final weights as the uninterrupted runs'
          : 'final weights DIFFER from the uninterrupted runs';
    const resumed =
      c.resumedFrom.length > 0 && c.resumedFrom.every((e) => e !== null)
        ? `resumed from the checkpoint of epoch ${c.resumedFrom.join(', ')}`
        : c.resumed > 0
          ? `resumed from a checkpoint in ${c.resumed} of ${c.runs}: ${c.resumedFrom.map((e) => (e === null ? 'from scratch' : `epoch ${e}`)).join(', ')}`
          : 'restarted from scratch, so the resume was NOT exercised';
    notes.push(
      `Worker killed mid-run: ${c.killed} of ${c.runs} run(s) killed, restarts ${c.restarts.join(', ')}, ${resumed}; ${match}.`,
    );
  }
  if (summary.elastic) out.push('', ...elasticTable(summary.elastic));
  notes.push(
    summary.testSets <= 1
      ? 'Every run was scored on the same test cases.'
      : `The runs were scored on ${summary.testSets} different test splits (random mode redraws the data seed, which also draws a seeded split).`,
  );
  if (summary.ranksDisagree > 0)
    notes.push(`${summary.ranksDisagree} finished run(s) ended with different weights on different ranks.`);
  for (const f of summary.failed)
    notes.push(
      `Not finished: ${f.mode} ${f.variant} #${f.index} (N=${f.workers}): ${f.status}${f.error ? ` — ${f.error}` : ''}.`,
    );
  out.push('', ...notes);
  return `${out.join('\n')}\n`;
}
