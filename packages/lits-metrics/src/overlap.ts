// Voxel-count metrics of the LiTS evaluation: Dice, IoU (Jaccard), VOE, RVD per region, with an explicit rule for
// empty masks.
import type { LabelRange } from './surface.js';

/** LiTS regions: liver = label ≥ 1 (liver including tumour), tumour = label 2. */
export const LIVER: LabelRange = Object.freeze({ lo: 1, hi: 255 });
export const TUMOUR: LabelRange = Object.freeze({ lo: 2, hi: 2 });
export const REGIONS = Object.freeze({ liver: LIVER, tumour: TUMOUR });
export type RegionName = keyof typeof REGIONS;
export const REGION_NAMES: readonly RegionName[] = ['liver', 'tumour'];

/** Voxel counts of one region: in both masks, in the prediction, in the ground truth. */
export interface RegionCounts {
  intersection: number;
  pred: number;
  truth: number;
}

export type CaseCounts = Record<RegionName, RegionCounts>;

/**
 * What a metric is when a mask is empty:
 * - `lits` (default): the official LiTS code (medpy): Dice of two empty masks is 0 (so a tumour-free case with a
 *   perfect empty prediction scores tumour Dice 0), IoU likewise 0 and VOE 1; the per-case means of ASSD and MSSD
 *   count a case with either mask empty as 0.
 * - `skip`: nnU-Net's rule: when both masks are empty, Dice, IoU and VOE are null and left out of the per-case
 *   means; so are surface distances when either mask is empty.
 * - `one`: MONAI's `ignore_empty=False`: two empty masks are a perfect match (Dice 1, IoU 1, VOE 0, RVD 0, and the
 *   surface-distance means count them as 0); with only one empty mask the surface distances are left out.
 * Per case, ASSD and MSSD are null with a `SurfaceNullReason` whenever a mask is empty, under every rule: a 0 there
 * would read as a perfect surface.
 * Whatever the rule, RVD is null when the ground truth is empty and the prediction is not (it would be infinite),
 * and the global (pooled) metrics follow the same formulas on the summed counts.
 */
export type EmptyRule = 'lits' | 'skip' | 'one';
export const EMPTY_RULES: readonly EmptyRule[] = ['lits', 'skip', 'one'];

export function emptyCounts(): CaseCounts {
  return {
    liver: { intersection: 0, pred: 0, truth: 0 },
    tumour: { intersection: 0, pred: 0, truth: 0 },
  };
}

/** Counts for liver and tumour in one pass over two label volumes of the same length. */
export function countRegions(pred: Uint8Array, truth: Uint8Array): CaseCounts {
  if (pred.length !== truth.length)
    throw new RangeError(`prediction has ${pred.length} voxels, ground truth ${truth.length}`);
  let pl = 0;
  let tl = 0;
  let il = 0;
  let pt = 0;
  let tt = 0;
  let it = 0;
  for (let i = 0; i < pred.length; i++) {
    const p = pred[i]!;
    const t = truth[i]!;
    if ((p | t) === 0) continue;
    const pL = p >= 1;
    const tL = t >= 1;
    if (pL) pl++;
    if (tL) tl++;
    if (pL && tL) il++;
    if (p === 2) {
      pt++;
      if (t === 2) it++;
    }
    if (t === 2) tt++;
  }
  return {
    liver: { intersection: il, pred: pl, truth: tl },
    tumour: { intersection: it, pred: pt, truth: tt },
  };
}

export function addCounts(a: CaseCounts, b: CaseCounts): CaseCounts {
  const add = (x: RegionCounts, y: RegionCounts): RegionCounts => ({
    intersection: x.intersection + y.intersection,
    pred: x.pred + y.pred,
    truth: x.truth + y.truth,
  });
  return { liver: add(a.liver, b.liver), tumour: add(a.tumour, b.tumour) };
}

export interface OverlapMetrics {
  /** 2|P∩T| / (|P| + |T|). */
  dice: number | null;
  /** Jaccard |P∩T| / |P∪T|. */
  iou: number | null;
  /** Volumetric overlap error, 1 − IoU. */
  voe: number | null;
  /** Relative volume difference (|P| − |T|) / |T|: positive = over-segmentation. */
  rvd: number | null;
}

export function overlapMetrics(c: RegionCounts, rule: EmptyRule = 'lits'): OverlapMetrics {
  const union = c.pred + c.truth - c.intersection;
  if (union === 0) {
    if (rule === 'lits') return { dice: 0, iou: 0, voe: 1, rvd: null };
    if (rule === 'skip') return { dice: null, iou: null, voe: null, rvd: null };
    return { dice: 1, iou: 1, voe: 0, rvd: 0 };
  }
  const iou = c.intersection / union;
  return {
    dice: (2 * c.intersection) / (c.pred + c.truth),
    iou,
    voe: 1 - iou,
    rvd: c.truth === 0 ? null : (c.pred - c.truth) / c.truth,
  };
}

/** Why surface distances are undefined for a region: a distance to an empty surface does not exist. */
export type SurfaceNullReason = 'empty prediction' | 'empty ground truth' | 'both empty';

/** The reason a region's ASSD / MSSD are undefined, or null when both masks have voxels. */
export function surfaceNullReason(c: RegionCounts): SurfaceNullReason | null {
  if (c.pred > 0 && c.truth > 0) return null;
  if (c.pred === 0 && c.truth === 0) return 'both empty';
  return c.pred === 0 ? 'empty prediction' : 'empty ground truth';
}

/**
 * What a case with an empty mask counts as in the per-case mean of ASSD / MSSD (the case itself reports null and the
 * reason): `lits` 0 whatever is empty (the LiTS notebook), `one` 0 when both are empty, else null (left out of the
 * mean). Undefined when both masks have voxels.
 */
export function emptySurfaceValue(c: RegionCounts, rule: EmptyRule): number | null | undefined {
  if (c.pred > 0 && c.truth > 0) return undefined;
  if (rule === 'lits') return 0;
  if (rule === 'one' && c.pred === 0 && c.truth === 0) return 0;
  return null;
}
