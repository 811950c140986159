/** Voxel-to-world geometry: NIfTI quaternions, 4×4 affines and orientation codes. Row-major number[][]. */

export type Matrix4 = number[][];
export type Matrix3 = number[][];

export function identity4(): Matrix4 {
  return [
    [1, 0, 0, 0],
    [0, 1, 0, 0],
    [0, 0, 1, 0],
    [0, 0, 0, 1],
  ];
}

export function multiply4(a: Matrix4, b: Matrix4): Matrix4 {
  return a.map((row) => [0, 1, 2, 3].map((j) => row.reduce((s, v, k) => s + v * (b[k]?.[j] ?? 0), 0)));
}

export function det3(m: Matrix3): number {
  const [a, b, c] = m as [number[], number[], number[]];
  return (
    a[0]! * (b[1]! * c[2]! - b[2]! * c[1]!) -
    a[1]! * (b[0]! * c[2]! - b[2]! * c[0]!) +
    a[2]! * (b[0]! * c[1]! - b[1]! * c[0]!)
  );
}

function inverse3(m: Matrix3): Matrix3 {
  const d = det3(m);
  const at = (r: number, c: number): number => m[r]![c]!;
  const cof = (r0: number, r1: number, c0: number, c1: number): number =>
    at(r0, c0) * at(r1, c1) - at(r0, c1) * at(r1, c0);
  return [
    [cof(1, 2, 1, 2) / d, -cof(0, 2, 1, 2) / d, cof(0, 1, 1, 2) / d],
    [-cof(1, 2, 0, 2) / d, cof(0, 2, 0, 2) / d, -cof(0, 1, 0, 2) / d],
    [cof(1, 2, 0, 1) / d, -cof(0, 2, 0, 1) / d, cof(0, 1, 0, 1) / d],
  ];
}

/** The orthogonal factor of the polar decomposition (closest rotation/reflection), as nifti1_io does. */
export function polarOrthogonal(m: Matrix3): Matrix3 {
  let x = m.map((r) => r.slice());
  for (let iter = 0; iter < 100; iter++) {
    const inv = inverse3(x);
    const next = x.map((row, r) => row.map((v, c) => 0.5 * (v + inv[c]![r]!)));
    const delta = next.reduce((s, row, r) => s + row.reduce((t, v, c) => t + Math.abs(v - x[r]![c]!), 0), 0);
    x = next;
    if (delta < 1e-12) break;
  }
  return x;
}

export interface Quaternion {
  b: number;
  c: number;
  d: number;
  qx: number;
  qy: number;
  qz: number;
  /** pixdim[0]: -1 flips the third axis. */
  qfac: number;
}

/** NIfTI "method 2": the qform affine from quatern_b/c/d, qoffset, pixdim and qfac (nifti1_io quatern_to_mat44). */
export function qformToAffine(q: Quaternion, pixdim: readonly number[]): Matrix4 {
  let { b, c, d } = q;
  let a = 1 - (b * b + c * c + d * d);
  if (a < 1e-7) {
    a = 1 / Math.sqrt(b * b + c * c + d * d);
    b *= a;
    c *= a;
    d *= a;
    a = 0;
  } else {
    a = Math.sqrt(a);
  }
  const xd = (pixdim[1] ?? 0) > 0 ? pixdim[1]! : 1;
  const yd = (pixdim[2] ?? 0) > 0 ? pixdim[2]! : 1;
  let zd = (pixdim[3] ?? 0) > 0 ? pixdim[3]! : 1;
  if (q.qfac < 0) zd = -zd;
  return [
    [(a * a + b * b - c * c - d * d) * xd, 2 * (b * c - a * d) * yd, 2 * (b * d + a * c) * zd, q.qx],
    [2 * (b * c + a * d) * xd, (a * a + c * c - b * b - d * d) * yd, 2 * (c * d - a * b) * zd, q.qy],
    [2 * (b * d - a * c) * xd, 2 * (c * d + a * b) * yd, (a * a + d * d - c * c - b * b) * zd, q.qz],
    [0, 0, 0, 1],
  ];
}

/** The inverse of `qformToAffine` (nifti1_io mat44_to_quatern): quaternion, offsets, voxel sizes and qfac. */
export function affineToQform(affine: Matrix4): { quaternion: Quaternion; pixdim: [number, number, number] } {
  const cols = [0, 1, 2].map((j) => [0, 1, 2].map((i) => affine[i]![j]!));
  const sizes = cols.map((col) => Math.hypot(...col));
  const unit = cols.map((col, j) =>
    sizes[j]! > 0 ? col.map((v) => v / sizes[j]!) : col.map((_, i) => (i === j ? 1 : 0)),
  );
  let r: Matrix3 = [0, 1, 2].map((i) => [0, 1, 2].map((j) => unit[j]![i]!));
  r = polarOrthogonal(r);
  let qfac = 1;
  if (det3(r) < 0) {
    qfac = -1;
    for (const row of r) row[2] = -row[2]!;
  }
  const [r11, r12, r13] = r[0] as [number, number, number];
  const [r21, r22, r23] = r[1] as [number, number, number];
  const [r31, r32, r33] = r[2] as [number, number, number];
  let a = r11 + r22 + r33 + 1;
  let b: number;
  let c: number;
  let d: number;
  if (a > 0.5) {
    a = 0.5 * Math.sqrt(a);
    b = (0.25 * (r32 - r23)) / a;
    c = (0.25 * (r13 - r31)) / a;
    d = (0.25 * (r21 - r12)) / a;
  } else {
    const xd = 1 + r11 - (r22 + r33);
    const yd = 1 + r22 - (r11 + r33);
    const zd = 1 + r33 - (r11 + r22);
    if (xd > 1) {
      b = 0.5 * Math.sqrt(xd);
      c = (0.25 * (r12 + r21)) / b;
      d = (0.25 * (r13 + r31)) / b;
      a = (0.25 * (r32 - r23)) / b;
    } else if (yd > 1) {
      c = 0.5 * Math.sqrt(yd);
      b = (0.25 * (r12 + r21)) / c;
      d = (0.25 * (r23 + r32)) / c;
      a = (0.25 * (r13 - r31)) / c;
    } else {
      d = 0.5 * Math.sqrt(zd);
      b = (0.25 * (r13 + r31)) / d;
      c = (0.25 * (r23 + r32)) / d;
      a = (0.25 * (r21 - r12)) / d;
    }
    if (a < 0) {
      b = -b;
      c = -c;
      d = -d;
    }
  }
  return {
    quaternion: { b, c, d, qx: affine[0]![3]!, qy: affine[1]![3]!, qz: affine[2]![3]!, qfac },
    pixdim: [sizes[0]! || 1, sizes[1]! || 1, sizes[2]! || 1],
  };
}

const POSITIVE = ['R', 'A', 'S'] as const;
const NEGATIVE = ['L', 'P', 'I'] as const;

/**
 * For each voxel axis, the world axis it runs along and its sign, chosen like nibabel's io_orientation: orthogonalise
 * the direction matrix, then take voxel axes in order, each picking its largest remaining world component.
 */
export function axisDirections(affine: Matrix4): Array<{ worldAxis: 0 | 1 | 2; sign: 1 | -1 }> {
  const rzs: Matrix3 = [0, 1, 2].map((i) => [0, 1, 2].map((j) => affine[i]![j]!));
  const sizes = [0, 1, 2].map((j) => Math.hypot(rzs[0]![j]!, rzs[1]![j]!, rzs[2]![j]!));
  const scaled = rzs.map((row) => row.map((v, j) => (sizes[j]! > 0 ? v / sizes[j]! : 0)));
  const r = Math.abs(det3(scaled)) > 1e-12 ? polarOrthogonal(scaled) : scaled;
  const used = new Set<number>();
  return [0, 1, 2].map((j) => {
    let best = -1;
    let bestAbs = -1;
    for (let i = 0; i < 3; i++) {
      if (used.has(i)) continue;
      const v = Math.abs(r[i]![j]!);
      if (v > bestAbs) {
        bestAbs = v;
        best = i;
      }
    }
    used.add(best);
    return { worldAxis: best as 0 | 1 | 2, sign: r[best]![j]! < 0 ? -1 : 1 };
  });
}

/** Orientation code such as "RAS" or "LPS": the world direction each voxel axis increases towards. */
export function orientationCode(affine: Matrix4): string {
  return axisDirections(affine)
    .map(({ worldAxis, sign }) => (sign > 0 ? POSITIVE[worldAxis] : NEGATIVE[worldAxis]))
    .join('');
}

/** Voxel sizes along each voxel axis (column norms of the affine). */
export function voxelSizes(affine: Matrix4): [number, number, number] {
  const col = (j: number): number => Math.hypot(affine[0]![j]!, affine[1]![j]!, affine[2]![j]!);
  return [col(0), col(1), col(2)];
}
