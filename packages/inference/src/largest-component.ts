// Largest-connected-component post-processing (nnU-Net's and MONAI's "keep largest component" for LiTS): of the
// foreground (label ≥ 1: liver with its tumours), keep the biggest 6-connected piece and clear the rest.

export interface ComponentReport {
  components: number;
  /** Voxels of the kept component. */
  kept: number;
  /** Foreground voxels cleared. */
  removed: number;
}

/**
 * In place on a 3-D label volume in C order over `shape` ([A, B, C], last axis fastest; NIfTI order works too with
 * the shape reversed). Ties between equal-size components keep the first one in memory order.
 */
export function keepLargestComponent(
  labels: Uint8Array,
  shape: readonly [number, number, number],
): ComponentReport {
  const [A, B, C] = shape;
  const n = A * B * C;
  if (labels.length !== n)
    throw new RangeError(`labels has ${labels.length} voxels; shape ${shape.join('×')} needs ${n}`);
  let foreground = 0;
  for (let i = 0; i < n; i++) if (labels[i]) foreground++;
  if (foreground === 0) return { components: 0, kept: 0, removed: 0 };
  // 0 = unseen, 1 = seen in some component, 2 = in the kept component.
  const mark = new Uint8Array(n);
  const queue = new Int32Array(foreground);
  const sB = C;
  const sA = B * C;
  const flood = (seed: number, value: number): number => {
    let head = 0;
    let tail = 0;
    queue[tail++] = seed;
    mark[seed] = value;
    while (head < tail) {
      const i = queue[head++]!;
      const c = i % C;
      const b = Math.floor(i / C) % B;
      const a = Math.floor(i / sA);
      for (let k = 0; k < 6; k++) {
        let j: number;
        if (k === 0) j = c > 0 ? i - 1 : -1;
        else if (k === 1) j = c < C - 1 ? i + 1 : -1;
        else if (k === 2) j = b > 0 ? i - sB : -1;
        else if (k === 3) j = b < B - 1 ? i + sB : -1;
        else if (k === 4) j = a > 0 ? i - sA : -1;
        else j = a < A - 1 ? i + sA : -1;
        if (j >= 0 && labels[j] && mark[j] !== value) {
          mark[j] = value;
          queue[tail++] = j;
        }
      }
    }
    return tail;
  };
  let components = 0;
  let bestSeed = -1;
  let bestSize = 0;
  for (let i = 0; i < n; i++) {
    if (!labels[i] || mark[i]) continue;
    components++;
    const size = flood(i, 1);
    if (size > bestSize) {
      bestSize = size;
      bestSeed = i;
    }
  }
  flood(bestSeed, 2);
  for (let i = 0; i < n; i++) if (labels[i] && mark[i] !== 2) labels[i] = 0;
  return { components, kept: bestSize, removed: foreground - bestSize };
}
