import type { CaseMetrics, EvaluationReport, MetricSet, OverallMetrics, PerRegion } from './evaluate.js';
import type { RegionName, SurfaceNullReason } from './overlap.js';

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

/** Why a case's surface cells are empty; the columns exist whenever surface distances were computed. */
function reasonColumns(reasons: CaseMetrics['surfaceNullReason'], surface: boolean): Row {
  if (!surface) return {};
  return {
    surface_liver_na_reason: reasons?.liver ?? null,
    surface_tumour_na_reason: reasons?.tumour ?? null,
  };
}

function caseRow(c: CaseMetrics, surface: boolean): Row {
  return {
    case: c.case,
    ...metricColumns(c, surface),
    ...reasonColumns(c.surfaceNullReason, surface),
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
 * undefined values (see the empty-mask rule); surface columns only when they were computed, with
 * `surface_{liver,tumour}_na_reason` saying why a case's ASSD / MSSD cells are empty (`empty prediction`, …).
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

/** A surface cell: the distance, or why there is none (never a 0 that reads as a perfect surface). */
const surfaceCell = (v: number | null | undefined, reason: SurfaceNullReason | null | undefined): string =>
  reason ? `n/a (${reason})` : fmt(v, 2);

/** What the surface-distance means did with the cases whose distances are undefined. */
function surfaceFootnote(overall: OverallMetrics): string | null {
  const n = overall.surfaceNullCases;
  if (!n || (n.liver === 0 && n.tumour === 0)) return null;
  const regions = (['liver', 'tumour'] as RegionName[])
    .filter((r) => n[r] > 0)
    .map((r) => `${r} ${n[r]}`)
    .join(', ');
  const counted =
    overall.emptyRule === 'lits'
      ? 'the means count them as 0 mm, as the LiTS evaluation does'
      : overall.emptyRule === 'one'
        ? 'the means count those with both masks empty as 0 mm and leave the others out'
        : 'the means leave them out';
  return `surface distances undefined (a mask is empty) in ${regions} case(s); ${counted}`;
}

/** A fixed-width table for terminals: one line per case, then the per-case mean and the global scores. */
export function formatReportTable(report: EvaluationReport): string {
  const surface = report.overall.assd !== undefined;
  const head = ['case', 'dice liver', 'dice tumour', 'iou liver', 'iou tumour', 'voe liver', 'rvd liver'];
  if (surface) head.push('assd liver', 'mssd liver');
  const line = (
    name: string,
    m: MetricSet & { assd?: PerRegion; mssd?: PerRegion },
    reasons?: CaseMetrics['surfaceNullReason'],
  ): string[] => {
    const cells = [
      name,
      fmt(m.diceLiver),
      fmt(m.diceTumour),
      fmt(m.iou.liver),
      fmt(m.iou.tumour),
      fmt(m.voe.liver),
      fmt(m.rvd.liver),
    ];
    if (surface)
      cells.push(surfaceCell(m.assd?.liver, reasons?.liver), surfaceCell(m.mssd?.liver, reasons?.liver));
    return cells;
  };
  const rows = [
    head,
    ...report.cases.map((c) => line(c.case, c, c.surfaceNullReason)),
    line('mean', report.overall),
    line('global', report.overall.global),
  ];
  const widths = head.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const render = (r: string[]) =>
    r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ');
  const out = rows.map(render);
  out.splice(1, 0, widths.map((w) => '-'.repeat(w)).join('  '));
  out.splice(out.length - 2, 0, widths.map((w) => '-'.repeat(w)).join('  '));
  const footnote = surfaceFootnote(report.overall);
  return `${out.join('\n')}\nempty-mask rule: ${report.overall.emptyRule}; cases with no tumour in the ground truth: ${report.overall.emptyTruth.tumour}\n${footnote ? `${footnote}\n` : ''}`;
}
