import type { CaseMetrics, EvaluationReport, MetricSet, OverallMetrics, PerRegion } from './evaluate.js';

type Row = Record<string, string | number | null>;

function csvCell(value: string | number | null): string {
  if (value === null) return '';
  const text = typeof value === 'number' ? String(value) : value;
  return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

function metricColumns(m: MetricSet & { assd?: PerRegion; mssd?: PerRegion }, surface: boolean): Row {
  const row: Row = {
    dice_liver: m.diceLiver,
    dice_tumour: m.diceTumour,
    iou_liver: m.iou.liver,
    iou_tumour: m.iou.tumour,
    voe_liver: m.voe.liver,
    voe_tumour: m.voe.tumour,
    rvd_liver: m.rvd.liver,
    rvd_tumour: m.rvd.tumour,
  };
  if (surface) {
    row.assd_liver_mm = m.assd?.liver ?? null;
    row.assd_tumour_mm = m.assd?.tumour ?? null;
    row.mssd_liver_mm = m.mssd?.liver ?? null;
    row.mssd_tumour_mm = m.mssd?.tumour ?? null;
  }
  return row;
}

function caseRow(c: CaseMetrics, surface: boolean): Row {
  return {
    case: c.case,
    ...metricColumns(c, surface),
    truth_liver_voxels: c.counts.liver.truth,
    pred_liver_voxels: c.counts.liver.pred,
    truth_tumour_voxels: c.counts.tumour.truth,
    pred_tumour_voxels: c.counts.tumour.pred,
    prediction: c.pred,
    truth: c.truth,
  };
}

function summaryRow(
  name: string,
  m: MetricSet & { assd?: PerRegion; mssd?: PerRegion },
  surface: boolean,
): Row {
  return { case: name, ...metricColumns(m, surface) };
}

/**
 * One row per case, then `mean` (per-case means, null values left out) and `global` (pooled voxels). Empty cells are
 * undefined values (see the empty-mask rule); surface columns only when they were computed.
 */
export function reportToCsv(report: EvaluationReport): string {
  const surface = report.overall.assd !== undefined;
  const rows = [
    ...report.cases.map((c) => caseRow(c, surface)),
    summaryRow('mean', report.overall, surface),
    summaryRow('global', report.overall.global, surface),
  ];
  const columns = Object.keys(caseRow(report.cases[0] ?? emptyCase(), surface));
  const lines = [columns.join(',')];
  for (const row of rows) lines.push(columns.map((c) => csvCell(row[c] ?? null)).join(','));
  return `${lines.join('\n')}\n`;
}

function emptyCase(): CaseMetrics {
  const none = { liver: null, tumour: null };
  const zero = { intersection: 0, pred: 0, truth: 0 };
  return {
    case: '',
    pred: '',
    truth: '',
    diceLiver: null,
    diceTumour: null,
    iou: none,
    voe: none,
    rvd: none,
    counts: { liver: zero, tumour: zero },
  };
}

/** The `--json` object: `cases` (one entry per case) and `overall`, each with diceLiver, diceTumour, iou, voe, rvd. */
export function reportToJson(report: EvaluationReport): {
  cases: Array<Omit<CaseMetrics, 'counts'> & { voxels: CaseMetrics['counts'] }>;
  overall: OverallMetrics;
  unmatchedPredictions: string[];
} {
  return {
    cases: report.cases.map(({ counts, ...rest }) => ({ ...rest, voxels: counts })),
    overall: report.overall,
    unmatchedPredictions: report.unmatchedPredictions,
  };
}

const fmt = (v: number | null | undefined, digits = 4): string =>
  v === null || v === undefined ? '—' : v.toFixed(digits);

/** A fixed-width table for terminals: one line per case, then the per-case mean and the global scores. */
export function formatReportTable(report: EvaluationReport): string {
  const surface = report.overall.assd !== undefined;
  const head = ['case', 'dice liver', 'dice tumour', 'iou liver', 'iou tumour', 'voe liver', 'rvd liver'];
  if (surface) head.push('assd liver', 'mssd liver');
  const line = (name: string, m: MetricSet & { assd?: PerRegion; mssd?: PerRegion }): string[] => {
    const cells = [
      name,
      fmt(m.diceLiver),
      fmt(m.diceTumour),
      fmt(m.iou.liver),
      fmt(m.iou.tumour),
      fmt(m.voe.liver),
      fmt(m.rvd.liver),
    ];
    if (surface) cells.push(fmt(m.assd?.liver, 2), fmt(m.mssd?.liver, 2));
    return cells;
  };
  const rows = [
    head,
    ...report.cases.map((c) => line(c.case, c)),
    line('mean', report.overall),
    line('global', report.overall.global),
  ];
  const widths = head.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const render = (r: string[]) =>
    r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ');
  const out = rows.map(render);
  out.splice(1, 0, widths.map((w) => '-'.repeat(w)).join('  '));
  out.splice(out.length - 2, 0, widths.map((w) => '-'.repeat(w)).join('  '));
  return `${out.join('\n')}\nempty-mask rule: ${report.overall.emptyRule}; cases with no tumour in the ground truth: ${report.overall.emptyTruth.tumour}\n`;
}
