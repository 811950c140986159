import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { CounterRng, type PurposePart } from '@lits-ddp/counter-rng';
import type { Matrix4 } from '../nifti/affine.js';
import type { NiftiTransform } from '../nifti/header.js';
import { writeNifti } from '../nifti/write.js';
import type { Shape3 } from '../preprocess/grid.js';
import { NORMAL_TABLE } from './normal-table.js';
import { placeTumours, tumourHuAt, type Tumour } from './tumours.js';

/** Tissue values (HU) of the synthetic abdomen; lesions take theirs from the tumour model (tumours.ts). */
export const PHANTOM_HU = { air: -1000, fat: -100, muscle: 40, bone: 700, liver: 60 } as const;

export interface PhantomOptions {
  /** Voxels along x, y, z (default 64×64×32; a LiTS-like case is 512×512×120). */
  size?: Shape3;
  /** mm per voxel; default keeps a 358.4 × 358.4 × 300 mm field of view (0.7 × 0.7 × 2.5 mm at 512×512×120). */
  spacing?: Shape3;
  /** Gaussian noise σ in HU (default 15). */
  noiseSigma?: number;
}

export interface PhantomVolumes {
  /** NIfTI order, int16 HU. */
  image: Int16Array;
  /** NIfTI order: 0 background, 1 liver, 2 tumour. */
  label: Uint8Array;
  shape: Shape3;
  spacing: Shape3;
  affine: Matrix4;
  transform: NiftiTransform;
  tumours: number;
}

const FOV_MM: Shape3 = [358.4, 358.4, 300];
/** Squared normalised radius beyond which no voxel can be liver, whatever the wobble. */
const LIVER_REACH = 1.6;

interface Ellipsoid {
  c: Shape3;
  r: Shape3;
  wobble: [number, number, number];
  phase: [number, number, number];
}

/** The body's elliptic cross-section: semi-axes and vertical offset, in normalised coordinates. */
interface Body {
  a: number;
  b: number;
  cy: number;
}

/** What a case's anatomy stream decides: the body's ellipse, the liver's ellipsoid and HU, and the tumours. */
interface Anatomy {
  body: Body;
  liver: Ellipsoid;
  liverHu: number;
  tumours: Tumour[];
}

// The draws keep their order (body, then liver centre, radii, wobble, phase, HU): a phantom is defined by it.
function drawAnatomy(seed: PurposePart, caseIndex: number, fovMm: Shape3): Anatomy {
  const anatomy = CounterRng.derive(seed, 'phantom', caseIndex, 'anatomy');
  const body = {
    a: 0.8 + 0.08 * anatomy.float64(),
    b: 0.58 + 0.06 * anatomy.float64(),
    cy: 0.04 * (anatomy.float64() - 0.5),
  };
  const liver: Ellipsoid = {
    c: [
      -0.3 + 0.08 * (anatomy.float64() - 0.5),
      -0.05 + 0.08 * (anatomy.float64() - 0.5),
      0.2 + 0.2 * (anatomy.float64() - 0.5),
    ],
    r: [0.34 + 0.05 * anatomy.float64(), 0.3 + 0.05 * anatomy.float64(), 0.45 + 0.08 * anatomy.float64()],
    wobble: [0.08 * anatomy.float64(), 0.08 * anatomy.float64(), 0.06 * anatomy.float64()],
    phase: [6.283 * anatomy.float64(), 6.283 * anatomy.float64(), 6.283 * anatomy.float64()],
  };
  const liverHu = PHANTOM_HU.liver + 10 * (anatomy.float64() - 0.5);
  const tumours = placeTumours(
    CounterRng.derive(seed, 'phantom', caseIndex, 'tumours'),
    liver,
    liverHu,
    fovMm,
  );
  return { body, liver, liverHu, tumours };
}

const RIB_ANGLES = Array.from({ length: 8 }, (_, i) => (Math.PI * (i + 0.5)) / 8 + Math.PI * 0.06);

/**
 * One row (fixed y, z) of the body: fat, muscle inside it, the spine, and the ribs above the lower abdomen.
 * `a`, `b` are the body's semi-axes tapered for this slice, `v`, `w` the row's normalised y and z.
 */
function paintBodyRow(hu: Float32Array, body: Body, a: number, b: number, v: number, w: number): void {
  const nx = hu.length;
  hu.fill(PHANTOM_HU.air);
  const dy = (v - body.cy) / b;
  if (Math.abs(dy) >= 1) return;
  const half = a * Math.sqrt(1 - dy * dy);
  const inner = Math.abs(dy) < 0.86 ? 0.86 * a * Math.sqrt(1 - (dy / 0.86) ** 2) : -1;
  fillSpan(hu, nx, -half, half, PHANTOM_HU.fat);
  if (inner > 0) fillSpan(hu, nx, -inner, inner, PHANTOM_HU.muscle);
  const spine = { cy: body.cy + body.b * 0.62, r: 0.085 };
  fillCircle(hu, nx, 0, v - spine.cy, spine.r, PHANTOM_HU.bone);
  if (w > -0.3)
    for (const t of RIB_ANGLES)
      fillCircle(
        hu,
        nx,
        0.8 * a * Math.cos(t),
        v - body.cy + 0.8 * b * Math.sin(t) * -0.95,
        0.028,
        PHANTOM_HU.bone,
      );
}

/** Liver and tumours of one row: only muscle voxels inside the deformed liver change, in `hu` and in `label`. */
function paintLiverRow(
  hu: Float32Array,
  label: Uint8Array,
  base: number,
  anatomy: Anatomy,
  v: number,
  w: number,
): void {
  const nx = hu.length;
  const { liver, liverHu, tumours } = anatomy;
  const dv = (v - liver.c[1]) / liver.r[1];
  const dw = (w - liver.c[2]) / liver.r[2];
  if (dv * dv + dw * dw > LIVER_REACH) return;
  const reach = Math.sqrt(LIVER_REACH - dv * dv - dw * dw) * liver.r[0];
  const x0 = Math.max(0, Math.floor(((liver.c[0] - reach + 1) / 2) * nx - 0.5));
  const x1 = Math.min(nx - 1, Math.ceil(((liver.c[0] + reach + 1) / 2) * nx - 0.5));
  for (let x = x0; x <= x1; x++) {
    if (hu[x] !== PHANTOM_HU.muscle) continue;
    const uu = ((x + 0.5) / nx) * 2 - 1;
    if (!insideLiver(liver, uu, v, w)) continue;
    const lesionHu = tumourHuAt(tumours, uu, v, w);
    hu[x] = lesionHu ?? liverHu;
    label[base + x] = lesionHu === null ? 1 : 2;
  }
}

/** LPS placement centred on the origin: the affine, and the same as NIfTI qform/sform fields. */
function phantomPlacement(size: Shape3, spacing: Shape3): { affine: Matrix4; transform: NiftiTransform } {
  const [nx, ny, nz] = size;
  const affine: Matrix4 = [
    [-spacing[0], 0, 0, ((nx - 1) / 2) * spacing[0]],
    [0, -spacing[1], 0, ((ny - 1) / 2) * spacing[1]],
    [0, 0, spacing[2], -((nz - 1) / 2) * spacing[2]],
    [0, 0, 0, 1],
  ];
  const transform: NiftiTransform = {
    pixdim: [1, spacing[0], spacing[1], spacing[2], 1, 1, 1, 1],
    qformCode: 1,
    sformCode: 1,
    // 180° about z: x → L, y → P, z → S.
    quaternion: { b: 0, c: 0, d: 1, qx: affine[0]![3]!, qy: affine[1]![3]!, qz: affine[2]![3]!, qfac: 1 },
    sform: affine.slice(0, 3).map((r) => r.slice()),
    xyztUnits: 2,
    dimInfo: 0,
  };
  return { affine, transform };
}

/** One synthetic abdominal CT: body of fat and muscle, spine and ribs, a deformed liver with 0–6 lesions (tumours.ts). */
export function generatePhantomVolumes(
  seed: PurposePart,
  caseIndex: number,
  options: PhantomOptions = {},
): PhantomVolumes {
  const size = options.size ?? [64, 64, 32];
  const [nx, ny, nz] = size;
  if (size.some((n) => !Number.isInteger(n) || n < 4 || n > 32767))
    throw new RangeError(`phantom size must be 3 integers in 4..32767, got ${size.join('x')}`);
  const spacing: Shape3 = options.spacing ?? (FOV_MM.map((f, a) => f / size[a]!) as Shape3);
  const sigma = options.noiseSigma ?? 15;
  const anatomy = drawAnatomy(seed, caseIndex, size.map((n, a) => n * spacing[a]!) as Shape3);
  const { body } = anatomy;

  const image = new Int16Array(nx * ny * nz);
  const label = new Uint8Array(nx * ny * nz);
  const hu = new Float32Array(nx);
  const noise = CounterRng.derive(seed, 'phantom', caseIndex, 'noise');
  for (let z = 0; z < nz; z++) {
    const w = ((z + 0.5) / nz) * 2 - 1;
    const taper = 1 - 0.08 * w * w;
    for (let y = 0; y < ny; y++) {
      const v = ((y + 0.5) / ny) * 2 - 1;
      const base = nx * (y + ny * z);
      paintBodyRow(hu, body, body.a * taper, body.b * taper, v, w);
      paintLiverRow(hu, label, base, anatomy, v, w);
      addNoise(noise, base, hu, sigma, image);
    }
  }
  return {
    image,
    label,
    shape: size,
    spacing,
    ...phantomPlacement(size, spacing),
    tumours: anatomy.tumours.length,
  };
}

/** Noise of voxel i uses half of word ⌊i/2⌋ of the stream (low 16 bits for even i) as a normal-table index. */
function addNoise(rng: CounterRng, base: number, hu: Float32Array, sigma: number, image: Int16Array): void {
  const n = hu.length;
  let word = base & 1 ? rng.wordAt(base >>> 1) : 0;
  for (let x = 0; x < n; x++) {
    const i = base + x;
    let bits: number;
    if ((i & 1) === 0) {
      word = rng.wordAt(i >>> 1);
      bits = word & 0xffff;
    } else bits = word >>> 16;
    image[i] = Math.round(hu[x]! + sigma * NORMAL_TABLE[bits]!);
  }
}

function insideLiver(e: Ellipsoid, u: number, v: number, w: number): boolean {
  const du = (u - e.c[0]) / e.r[0];
  const dv = (v - e.c[1]) / e.r[1];
  const dw = (w - e.c[2]) / e.r[2];
  const q = du * du + dv * dv + dw * dw;
  if (q > LIVER_REACH) return false;
  const bump =
    1 +
    e.wobble[0] * Math.sin(3 * du + e.phase[0]) +
    e.wobble[1] * Math.sin(2 * dv + e.phase[1]) +
    e.wobble[2] * Math.sin(2.5 * dw + e.phase[2]);
  return q < bump * bump;
}

/** Sets hu[x] for voxels whose normalised coordinate u lies in [lo, hi]. */
function fillSpan(hu: Float32Array, nx: number, lo: number, hi: number, value: number): void {
  const x0 = Math.max(0, Math.ceil(((lo + 1) / 2) * nx - 0.5));
  const x1 = Math.min(nx - 1, Math.floor(((hi + 1) / 2) * nx - 0.5));
  for (let x = x0; x <= x1; x++) hu[x] = value;
}

function fillCircle(hu: Float32Array, nx: number, cu: number, dv: number, r: number, value: number): void {
  if (Math.abs(dv) >= r) return;
  const half = Math.sqrt(r * r - dv * dv);
  fillSpan(hu, nx, cu - half, cu + half, value);
}

export interface PhantomDatasetOptions extends PhantomOptions {
  outDir: string;
  cases: number;
  seed?: PurposePart;
  /** Case ids start here (default 0). */
  firstId?: number;
  /** Write .nii.gz (default) or plain .nii. */
  compress?: boolean;
  gzipLevel?: number;
  onCase?: (done: number, total: number) => void;
}

export interface PhantomCase {
  id: number;
  image: string;
  label: string;
  tumours: number;
}

/** Writes a LiTS-format folder: volume-N / segmentation-N (.nii.gz), int16 CT and uint8 labels, LPS affine. */
export async function generatePhantomDataset(options: PhantomDatasetOptions): Promise<PhantomCase[]> {
  const { outDir, cases } = options;
  if (!Number.isInteger(cases) || cases < 1)
    throw new RangeError(`phantom case count must be ≥ 1, got ${cases}`);
  await mkdir(outDir, { recursive: true });
  const ext = options.compress === false ? 'nii' : 'nii.gz';
  const written: PhantomCase[] = [];
  for (let i = 0; i < cases; i++) {
    const id = (options.firstId ?? 0) + i;
    const v = generatePhantomVolumes(options.seed ?? 0, id, options);
    const image = join(outDir, `volume-${id}.${ext}`);
    const label = join(outDir, `segmentation-${id}.${ext}`);
    const common = { shape: v.shape, transform: v.transform, description: `lits-ddp phantom case ${id}` };
    await writeNifti(image, { ...common, data: v.image }, { gzipLevel: options.gzipLevel });
    await writeNifti(label, { ...common, data: v.label }, { gzipLevel: options.gzipLevel });
    written.push({ id, image, label, tumours: v.tumours });
    options.onCase?.(i + 1, cases);
  }
  return written;
}
