// Masks whose labels are not LiTS's 0 (background) / 1 (liver) / 2 (tumour): a multi-organ segmentation where liver
// is 5 (TotalSegmentator), or a mask with extra classes. A label map says what each stored value means; without one,
// LiTS and MSD Task03 masks must hold 0, 1 and 2 only, and any other value is an error that names it.
import { parseLabelMapText, type LabelMap, type LitsLabel } from '@lits-ddp/protocol';
import { LitsDataError } from '../errors.js';

export type { LabelMap, LitsLabel } from '@lits-ddp/protocol';

/** NIfTI's scl_slope/scl_inter: the value of a stored number is `stored · slope + inter`. */
export interface LabelScaling {
  slope: number;
  inter: number;
}

/**
 * Parses a label map (the grammar: parseLabelMapText in @lits-ddp/protocol, shared with the spec's `label-map`).
 * `source` names the flag or field in errors (a `LitsDataError` whose `file` is `source`).
 */
export function parseLabelMap(text: string, source = '--label-map'): LabelMap {
  const parsed = parseLabelMapText(text);
  if (!parsed.ok) throw new LitsDataError(source, parsed.problem);
  return parsed.map;
}

/** The LiTS class of a value, or null when it is foreign (not mapped, and not 0, 1 or 2 without `*`). */
export function mapLabel(map: LabelMap | null, value: number): LitsLabel | null {
  const mapped = map?.pairs.get(value);
  if (mapped !== undefined) return mapped;
  if (map && map.rest !== null) return map.rest;
  return value === 0 || value === 1 || value === 2 ? value : null;
}

export interface MappedLabels {
  /** The LiTS class of every voxel (foreign voxels: 0). */
  readonly labels: Uint8Array;
  /** Foreign values and their voxel counts, most frequent first (empty when every value has a class). */
  readonly foreign: ReadonlyArray<readonly [number, number]>;
}

export interface LabelClassCounts {
  /** Voxels of class 0, 1 and 2 after the map (foreign voxels are not counted). */
  readonly counts: readonly [number, number, number];
  readonly foreign: MappedLabels['foreign'];
}

type SmallInts = Uint8Array | Int8Array | Uint16Array | Int16Array;

function isSmallInts(values: ArrayLike<number>): values is SmallInts {
  return (
    values instanceof Uint8Array ||
    values instanceof Int8Array ||
    values instanceof Uint16Array ||
    values instanceof Int16Array
  );
}

/**
 * Stored values of a ≤ 16-bit array and their counts: a histogram, far faster than a Map per voxel. Four tables let
 * consecutive increments run independently; for uint8 (LiTS masks, mostly background) all-zero 4-byte words are
 * counted without touching their bytes.
 */
function histogram(values: SmallInts): { offset: number; counts: Uint32Array } {
  const offset = values instanceof Int8Array ? 128 : values instanceof Int16Array ? 32768 : 0;
  const bins = values instanceof Uint8Array || values instanceof Int8Array ? 256 : 65536;
  const tables = [0, 1, 2, 3].map(() => new Uint32Array(bins)) as [
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
  ];
  const [c0, c1, c2, c3] = tables;
  let start: number;
  if (values instanceof Uint8Array && values.byteOffset % 4 === 0) {
    const words = new Uint32Array(values.buffer, values.byteOffset, values.length >>> 2);
    let zeros = 0;
    for (let k = 0; k < words.length; k++) {
      if (words[k] === 0) {
        zeros += 4;
        continue;
      }
      const i = k << 2;
      c0[values[i]!]!++;
      c1[values[i + 1]!]!++;
      c2[values[i + 2]!]!++;
      c3[values[i + 3]!]!++;
    }
    c0[0]! += zeros;
    start = words.length << 2;
  } else {
    const n = values.length - (values.length % 4);
    for (let i = 0; i < n; i += 4) {
      c0[values[i]! + offset]!++;
      c1[values[i + 1]! + offset]!++;
      c2[values[i + 2]! + offset]!++;
      c3[values[i + 3]! + offset]!++;
    }
    start = n;
  }
  for (let i = start; i < values.length; i++) c0[values[i]! + offset]!++;
  for (let b = 0; b < bins; b++) c0[b]! += c1[b]! + c2[b]! + c3[b]!;
  return { offset, counts: c0 };
}

const real = (stored: number, scale: LabelScaling | null): number =>
  scale ? stored * scale.slope + scale.inter : stored;

function sortForeign(foreign: Map<number, number>): Array<[number, number]> {
  return [...foreign].sort((a, b) => b[1] - a[1] || a[0] - b[0]);
}

/**
 * Every stored value with its voxel count and class; `visit` sees each distinct value once for small integer arrays,
 * and each run of equal values otherwise.
 */
function classify(
  values: ArrayLike<number>,
  map: LabelMap | null,
  scale: LabelScaling | null,
  visit: (stored: number, cls: LitsLabel | null, count: number) => void,
): void {
  if (isSmallInts(values)) {
    const { offset, counts } = histogram(values);
    for (let bin = 0; bin < counts.length; bin++)
      if (counts[bin]! > 0) visit(bin - offset, mapLabel(map, real(bin - offset, scale)), counts[bin]!);
    return;
  }
  const cache = new Map<number, LitsLabel | null>();
  let i = 0;
  while (i < values.length) {
    const stored = values[i]!;
    let j = i + 1;
    // NaN !== NaN, so a run of NaN is visited voxel by voxel; the counts still add up.
    while (j < values.length && values[j] === stored) j++;
    let cls = cache.get(stored);
    if (cls === undefined) {
      cls = mapLabel(map, real(stored, scale));
      cache.set(stored, cls);
    }
    visit(stored, cls, j - i);
    i = j;
  }
}

/** Voxels per LiTS class and the foreign values (after NIfTI scaling when `scale` is given), without a copy. */
export function countLabelClasses(
  values: ArrayLike<number>,
  map: LabelMap | null,
  scale: LabelScaling | null = null,
): LabelClassCounts {
  const counts: [number, number, number] = [0, 0, 0];
  const foreign = new Map<number, number>();
  classify(values, map, scale, (stored, cls, n) => {
    if (cls === null) {
      const value = real(stored, scale);
      foreign.set(value, (foreign.get(value) ?? 0) + n);
    } else counts[cls] += n;
  });
  return { counts, foreign: sortForeign(foreign) };
}

/** Maps every voxel's value (`stored · slope + inter` when `scale` is given) to its LiTS class; counts foreign values. */
export function applyLabelMap(
  values: ArrayLike<number>,
  map: LabelMap | null,
  scale: LabelScaling | null = null,
): MappedLabels {
  const labels = new Uint8Array(values.length);
  const foreign = new Map<number, number>();
  const note = (stored: number, cls: LitsLabel | null, n: number): void => {
    if (cls !== null) return;
    const value = real(stored, scale);
    foreign.set(value, (foreign.get(value) ?? 0) + n);
  };
  if (isSmallInts(values)) {
    const offset = values instanceof Int8Array ? 128 : values instanceof Int16Array ? 32768 : 0;
    const lut = new Uint8Array(values instanceof Uint8Array || values instanceof Int8Array ? 256 : 65536);
    classify(values, map, scale, (stored, cls, n) => {
      lut[stored + offset] = cls ?? 0;
      note(stored, cls, n);
    });
    for (let i = 0; i < values.length; i++) labels[i] = lut[values[i]! + offset]!;
  } else {
    let i = 0;
    classify(values, map, scale, (stored, cls, n) => {
      labels.fill(cls ?? 0, i, i + n);
      i += n;
      note(stored, cls, n);
    });
  }
  return { labels, foreign: sortForeign(foreign) };
}

/**
 * One line naming foreign values, e.g. `labels must be 0, 1 or 2, or be named by a label map (e.g. --label-map
 * 5:1,*:0 or --labels liver=5); found 5 (308996 voxels)`.
 */
export function describeForeignLabels(foreign: MappedLabels['foreign']): string {
  const shown = foreign
    .slice(0, 5)
    .map(([value, count]) => `${value} (${count} voxel${count === 1 ? '' : 's'})`)
    .join(', ');
  const more = foreign.length > 5 ? ` and ${foreign.length - 5} more values` : '';
  return `labels must be 0, 1 or 2, or be named by a label map (e.g. --label-map 5:1,*:0 or --labels liver=5); found ${shown}${more}`;
}
