import { readNifti, scalingOf } from '../nifti/read.js';
import type { Datatype } from '../nifti/datatypes.js';
import type { ByteOrder } from '../nifti/header.js';

/** What `lits-data inspect --json` prints. */
export interface InspectReport {
  file: string;
  format: string;
  shape: number[];
  datatype: Datatype;
  byteOrder: ByteOrder;
  spacing: number[];
  affine: number[][];
  orientation: string;
  sclSlope: number;
  sclInter: number;
  /** Over the scaled, non-NaN values; null when there are none. */
  min: number | null;
  max: number | null;
  mean: number | null;
  nanCount: number;
  /** Value → count; only when every value is an integer and there are at most 16 distinct values. */
  labelCounts?: Record<string, number>;
}

const MAX_LABELS = 16;

export async function inspectNifti(file: string): Promise<InspectReport> {
  const v = await readNifti(file, { native: true });
  const scale = scalingOf(v);
  const slope = scale?.slope ?? 1;
  const inter = scale?.inter ?? 0;
  const data = v.data;
  let min = Infinity;
  let max = -Infinity;
  let sum = 0;
  let finite = 0;
  let nanCount = 0;
  let counts: Map<number, number> | null = new Map();
  if (!scale && data instanceof Uint8Array) {
    const hist = new Float64Array(256);
    for (let i = 0; i < data.length; i++) hist[data[i]!]!++;
    for (let value = 0; value < 256; value++) {
      const n = hist[value]!;
      if (n === 0) continue;
      min = Math.min(min, value);
      max = Math.max(max, value);
      sum += value * n;
      finite += n;
      if (counts && counts.size < MAX_LABELS) counts.set(value, n);
      else counts = null;
    }
  } else {
    for (let i = 0; i < data.length; i++) {
      const value = (data[i] as number) * slope + inter;
      if (Number.isNaN(value)) {
        nanCount++;
        continue;
      }
      if (value < min) min = value;
      if (value > max) max = value;
      sum += value;
      finite++;
      if (counts) {
        if (!Number.isInteger(value)) counts = null;
        else {
          const seen = counts.get(value);
          if (seen !== undefined) counts.set(value, seen + 1);
          else if (counts.size < MAX_LABELS) counts.set(value, 1);
          else counts = null;
        }
      }
    }
  }
  const report: InspectReport = {
    file,
    format: v.format,
    shape: v.shape,
    datatype: v.datatype,
    byteOrder: v.byteOrder,
    spacing: v.spacing,
    affine: v.affine,
    orientation: v.orientation,
    sclSlope: v.sclSlope,
    sclInter: v.sclInter,
    min: finite > 0 ? min : null,
    max: finite > 0 ? max : null,
    mean: finite > 0 ? sum / finite : null,
    nanCount,
  };
  if (counts && finite > 0)
    report.labelCounts = Object.fromEntries(
      [...counts.entries()].sort((a, b) => a[0] - b[0]).map(([k, n]) => [String(k), n]),
    );
  return report;
}
