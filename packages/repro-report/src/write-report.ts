import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildBoxplot, renderPng } from './boxplot.js';
import type { ReproRunRecord } from './run-record.js';
import { summariseRuns, type ReproSummary } from './summary.js';
import { formatSummaryMarkdown, runsToCsv } from './tables.js';

export interface ReportMeta {
  /** What was run: shown at the top of summary.md and stored in runs.json. */
  configuration: Record<string, string | number | boolean>;
  /** ISO time; defaults to now. */
  createdAt?: string;
  title?: string;
  subtitle?: string;
}

export interface WrittenReport {
  dir: string;
  files: { csv: string; json: string; markdown: string; png: string; svg: string };
  summary: ReproSummary;
  /** The summary tables (markdown), as in summary.md. */
  table: string;
}

export const REPORT_FILES = {
  csv: 'runs.csv',
  json: 'runs.json',
  markdown: 'summary.md',
  png: 'iou-boxplot.png',
  svg: 'iou-boxplot.svg',
} as const;

/** Writes the report folder: runs.csv, runs.json (records + summary), summary.md and the boxplot (SVG and PNG). */
export async function writeReproReport(
  dir: string,
  runs: readonly ReproRunRecord[],
  meta: ReportMeta,
): Promise<WrittenReport> {
  await mkdir(dir, { recursive: true });
  const files = {
    csv: join(dir, REPORT_FILES.csv),
    json: join(dir, REPORT_FILES.json),
    markdown: join(dir, REPORT_FILES.markdown),
    png: join(dir, REPORT_FILES.png),
    svg: join(dir, REPORT_FILES.svg),
  };
  const createdAt = meta.createdAt ?? new Date().toISOString();
  const summary = summariseRuns(runs);
  const table = formatSummaryMarkdown(summary);
  const figure = buildBoxplot(runs, {
    ...(meta.title ? { title: meta.title } : {}),
    ...(meta.subtitle ? { subtitle: meta.subtitle } : {}),
  });
  const markdown = [
    '# Reproducibility report',
    '',
    `Created ${createdAt}.`,
    '',
    ...Object.entries(meta.configuration).map(([k, v]) => `- ${k}: ${String(v)}`),
    '',
    table.trimEnd(),
    '',
    `![test IoU per class and mode](${REPORT_FILES.png})`,
    '',
  ].join('\n');
  await writeFile(files.csv, runsToCsv(runs));
  await writeFile(
    files.json,
    `${JSON.stringify({ createdAt, configuration: meta.configuration, figure: { title: meta.title, subtitle: meta.subtitle }, runs, summary }, null, 2)}\n`,
  );
  await writeFile(files.markdown, markdown);
  await writeFile(files.svg, figure.svg);
  await writeFile(files.png, renderPng(figure.svg));
  return { dir, files, summary, table };
}
