import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Resvg } from '@resvg/resvg-js';
import { REPRO_MODES, type ReproMode, type ReproRunRecord } from './run-record.js';
import { boxStats, type BoxStats } from './statistics.js';
import { classNamesOf } from './summary.js';

export const MODE_COLOURS: Record<ReproMode, string> = {
  random: '#1f77b4',
  seed: '#ff7f0e',
  deterministic: '#2ca02c',
};
const INK = '#222222';
const GRID = '#e3e3e3';
const FONT = 'DejaVu Sans';

export interface BoxLayout {
  mode: ReproMode;
  /** Centre of the box (SVG units). */
  x: number;
  halfWidth: number;
  values: number[];
  box: BoxStats | null;
}

export interface PanelLayout {
  metric: string;
  className: string;
  /** Plot area (SVG units). */
  left: number;
  right: number;
  top: number;
  bottom: number;
  yMin: number;
  yMax: number;
  boxes: BoxLayout[];
}

export interface BoxplotFigure {
  svg: string;
  width: number;
  height: number;
  panels: PanelLayout[];
}

export interface BoxplotOptions {
  title?: string;
  subtitle?: string;
}

const escapeXml = (s: string): string =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

const num = (v: number): string => String(Math.round(v * 100) / 100);

/** A 1/2/5 × 10^k step giving about `target` intervals over `span`. */
function niceStep(span: number, target: number): number {
  const raw = span / target;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const norm = raw / mag;
  return (norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 5 ? 5 : 10) * mag;
}

/** The axis range of a panel: all its values, padded (a flat set still gets a visible range), ticks within [0, 1]. */
function axisRange(values: number[]): { min: number; max: number; step: number } {
  if (values.length === 0) return { min: 0, max: 1, step: 0.2 };
  const lo = Math.min(...values);
  const hi = Math.max(...values);
  const pad = Math.max((hi - lo) * 0.08, 0.01);
  // IoU lives in [0, 1]: keep only a sliver of margin beyond those bounds.
  const min = lo >= 0 ? Math.max(lo - pad, -pad / 4) : lo - pad;
  const max = hi <= 1 ? Math.min(hi + pad, 1 + pad / 4) : hi + pad;
  return { min, max, step: niceStep(max - min, 4) };
}

/** y of a value in a panel (SVG units). */
export function panelY(panel: PanelLayout, value: number): number {
  return panel.bottom - ((value - panel.yMin) / (panel.yMax - panel.yMin)) * (panel.bottom - panel.top);
}

const capitalised = (s: string): string => `${s[0]?.toUpperCase() ?? ''}${s.slice(1)}`;

/** The frame of the figure: panel size and the margins around the panels. */
interface FigureFrame {
  panelWidth: number;
  margin: { left: number; right: number; top: number; bottom: number; gap: number };
  height: number;
}

/** Panel `c`: where it sits, its y range, and one box per mode over the finished repeated runs' IoU of class `c`. */
function layoutPanel(
  c: number,
  className: string,
  modes: readonly ReproMode[],
  repeats: readonly ReproRunRecord[],
  frame: FigureFrame,
): { panel: PanelLayout; step: number } {
  const { panelWidth, margin, height } = frame;
  const left = margin.left + c * (panelWidth + margin.gap);
  const byMode = modes.map((mode) => ({
    mode,
    values: repeats
      .filter((r) => r.mode === mode)
      .map((r) => r.iou[c])
      .filter((v): v is number => v !== null && v !== undefined),
  }));
  const range = axisRange(byMode.flatMap((b) => b.values));
  const slot = panelWidth / Math.max(1, modes.length);
  const panel: PanelLayout = {
    metric: `iou_${c}`,
    className,
    left,
    right: left + panelWidth,
    top: margin.top,
    bottom: height - margin.bottom,
    yMin: range.min,
    yMax: range.max,
    boxes: byMode.map((b, i) => ({
      mode: b.mode,
      x: left + slot * (i + 0.5),
      halfWidth: Math.min(32, slot * 0.3),
      values: b.values,
      box: boxStats(b.values),
    })),
  };
  return { panel, step: range.step };
}

/** Grid lines and y ticks (within [0, 1]) every `step`, the panel's border, its class name and the y label. */
function drawPanelFrame(panel: PanelLayout, step: number): string[] {
  const { left, right, top, bottom } = panel;
  const parts: string[] = [];
  const decimals = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  const firstTick = Math.ceil(Math.max(panel.yMin, 0) / step - 1e-9);
  const lastTick = Math.floor(Math.min(panel.yMax, 1) / step + 1e-9);
  for (let k = firstTick; k <= lastTick; k++) {
    const t = k * step;
    const ty = num(panelY(panel, t));
    parts.push(`<line x1="${left}" x2="${right}" y1="${ty}" y2="${ty}" stroke="${GRID}" stroke-width="1"/>`);
    parts.push(
      `<text x="${left - 7}" y="${ty}" font-size="12" text-anchor="end" dominant-baseline="central" fill="${INK}">${t.toFixed(decimals)}</text>`,
    );
  }
  parts.push(
    `<rect x="${left}" y="${top}" width="${right - left}" height="${bottom - top}" fill="none" stroke="${INK}" stroke-width="1"/>`,
    `<text x="${num((left + right) / 2)}" y="${top - 12}" font-size="15" font-weight="bold" text-anchor="middle" fill="${INK}">${escapeXml(capitalised(panel.className))}</text>`,
    `<text transform="translate(${left - 48} ${num((top + bottom) / 2)}) rotate(-90)" font-size="13" text-anchor="middle" fill="${INK}">test IoU</text>`,
  );
  return parts;
}

/** One mode's box: its name and n under the axis, whiskers, box and median, and each run as a dot. */
function drawBox(panel: PanelLayout, b: BoxLayout): string[] {
  const y = (v: number): number => panelY(panel, v);
  const colour = MODE_COLOURS[b.mode];
  const x0 = num(b.x - b.halfWidth);
  const x1 = num(b.x + b.halfWidth);
  const count = b.values.length;
  const parts = [
    `<text x="${num(b.x)}" y="${panel.bottom + 20}" font-size="13" text-anchor="middle" fill="${INK}">${capitalised(b.mode)}</text>`,
    `<text x="${num(b.x)}" y="${panel.bottom + 37}" font-size="11" text-anchor="middle" fill="#555555">n = ${count}</text>`,
  ];
  const box = b.box;
  if (!box) return parts;
  const cap = b.halfWidth / 2;
  parts.push(
    `<line x1="${num(b.x)}" x2="${num(b.x)}" y1="${num(y(box.whiskerLow))}" y2="${num(y(box.q1))}" stroke="${colour}" stroke-width="1.5"/>`,
    `<line x1="${num(b.x)}" x2="${num(b.x)}" y1="${num(y(box.q3))}" y2="${num(y(box.whiskerHigh))}" stroke="${colour}" stroke-width="1.5"/>`,
    `<line x1="${num(b.x - cap)}" x2="${num(b.x + cap)}" y1="${num(y(box.whiskerLow))}" y2="${num(y(box.whiskerLow))}" stroke="${colour}" stroke-width="1.5"/>`,
    `<line x1="${num(b.x - cap)}" x2="${num(b.x + cap)}" y1="${num(y(box.whiskerHigh))}" y2="${num(y(box.whiskerHigh))}" stroke="${colour}" stroke-width="1.5"/>`,
    `<rect x="${x0}" y="${num(y(box.q3))}" width="${num(2 * b.halfWidth)}" height="${num(Math.max(0, y(box.q1) - y(box.q3)))}" fill="${colour}" fill-opacity="0.3" stroke="${colour}" stroke-width="1.5"/>`,
    `<line x1="${x0}" x2="${x1}" y1="${num(y(box.median))}" y2="${num(y(box.median))}" stroke="${colour}" stroke-width="3"/>`,
  );
  // Each run as a dot, spread evenly across the box in run order (no random jitter).
  b.values.forEach((v, i) => {
    const dx = count > 1 ? (i / (count - 1) - 0.5) * b.halfWidth * 1.2 : 0;
    parts.push(`<circle cx="${num(b.x + dx)}" cy="${num(y(v))}" r="2.6" fill="${INK}" fill-opacity="0.75"/>`);
  });
  return parts;
}

/** The title, and the subtitle when there is one, centred over the figure. */
function drawTitles(width: number, options: BoxplotOptions): string[] {
  const title = options.title ?? 'Test IoU per class over repeated runs';
  const lines = [
    `<text x="${num(width / 2)}" y="24" font-size="17" font-weight="bold" text-anchor="middle" fill="${INK}">${escapeXml(title)}</text>`,
  ];
  if (options.subtitle)
    lines.push(
      `<text x="${num(width / 2)}" y="44" font-size="12" text-anchor="middle" fill="#555555">${escapeXml(options.subtitle)}</text>`,
    );
  return lines;
}

/**
 * The seed's `iou_boxplots.png` layout: one panel per class, one box per mode over its repeated runs (finished),
 * each run's value drawn as a dot over the box. Deterministic runs show as a flat line.
 */
export function buildBoxplot(runs: readonly ReproRunRecord[], options: BoxplotOptions = {}): BoxplotFigure {
  const classes = runs[0]?.iou.length ?? 3;
  const names = classNamesOf(classes);
  const modes = REPRO_MODES.filter((m) => runs.some((r) => r.mode === m));
  const repeats = runs.filter((r) => r.variant === 'repeat' && r.status === 'finished');
  const frame: FigureFrame = {
    panelWidth: Math.max(220, 70 + modes.length * 90),
    margin: { left: 64, right: 18, top: options.subtitle ? 74 : 56, bottom: 62, gap: 70 },
    height: 420,
  };
  const { panelWidth, margin, height } = frame;
  const width = margin.left + classes * panelWidth + (classes - 1) * margin.gap + margin.right;
  const parts: string[] = [];
  const panels: PanelLayout[] = [];
  for (let c = 0; c < classes; c++) {
    const { panel, step } = layoutPanel(c, names[c] as string, modes, repeats, frame);
    panels.push(panel);
    parts.push(...drawPanelFrame(panel, step));
    for (const b of panel.boxes) parts.push(...drawBox(panel, b));
  }
  const svg = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="${FONT}">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    ...drawTitles(width, options),
    ...parts,
    '</svg>',
  ].join('\n');
  return { svg: `${svg}\n`, width, height, panels };
}

const require = createRequire(import.meta.url);

/** DejaVu Sans from the `dejavu-fonts-ttf` package: the same glyphs on every machine, no system fonts needed. */
export function bundledFontFiles(): string[] {
  const dir = join(dirname(require.resolve('dejavu-fonts-ttf/package.json')), 'ttf');
  return [join(dir, 'DejaVuSans.ttf'), join(dir, 'DejaVuSans-Bold.ttf')];
}

/** Rasterises an SVG with resvg and the bundled font; `zoom` 2 gives a sharp figure for docs. */
export function renderPng(svg: string, zoom = 2): Buffer {
  const resvg = new Resvg(svg, {
    fitTo: { mode: 'zoom', value: zoom },
    background: '#ffffff',
    font: { loadSystemFonts: false, fontFiles: bundledFontFiles(), defaultFontFamily: FONT },
  });
  return resvg.render().asPng();
}
