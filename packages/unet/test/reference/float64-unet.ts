// An independent float64 forward pass of UNet3D + the focal loss in plain JS, for gradient and forward checks.
// Deliberately naive: direct loops over the definitions in seed.md §1 and §3, no tfjs.
import { BN_EPSILON, type UNetLayout } from '../../src/architecture.js';

export interface Volume {
  readonly data: Float64Array;
  /** [N, D, H, W, C] */
  readonly shape: readonly [number, number, number, number, number];
}

export interface ReferenceResult {
  readonly loss: number;
  readonly probabilities: Float64Array;
  /** Per BN layer: batch mean and biased variance (eval mode: the running statistics it normalised with). */
  readonly moments: Moments[];
}

export interface Moments {
  mean: Float64Array;
  variance: Float64Array;
}

// Resolution level (0: full, 1: /2, 2: /4) of each block's BN layers.
const BN_LEVEL: Record<string, number> = { inc: 0, up2: 0, down1: 1, up1: 1, down2: 2, mid: 2 };

/** Values per channel a BN layer normalises over for a batch of `batch` cubes of `edge`³: batch · (edge / 2^level)³. */
export function bnValuesPerChannel(bnName: string, batch: number, edge: number): number {
  return batch * (edge / 2 ** BN_LEVEL[bnName.split('.')[0]!]!) ** 3;
}

function conv(x: Volume, w: Float64Array, b: Float64Array, k: number, cout: number, stride: number): Volume {
  const [n, d, h, wd, cin] = x.shape;
  const pad = k === 3 ? 1 : 0;
  const od = stride === 1 ? d : d / 2;
  const oh = stride === 1 ? h : h / 2;
  const ow = stride === 1 ? wd : wd / 2;
  const out = new Float64Array(n * od * oh * ow * cout);
  for (let s = 0; s < n; s++)
    for (let z = 0; z < od; z++)
      for (let y = 0; y < oh; y++)
        for (let xx = 0; xx < ow; xx++) {
          const o = (((s * od + z) * oh + y) * ow + xx) * cout;
          for (let co = 0; co < cout; co++) out[o + co] = b[co] as number;
          for (let kz = 0; kz < k; kz++) {
            const iz = z * stride + kz - pad;
            if (iz < 0 || iz >= d) continue;
            for (let ky = 0; ky < k; ky++) {
              const iy = y * stride + ky - pad;
              if (iy < 0 || iy >= h) continue;
              for (let kx = 0; kx < k; kx++) {
                const ix = xx * stride + kx - pad;
                if (ix < 0 || ix >= wd) continue;
                const i = (((s * d + iz) * h + iy) * wd + ix) * cin;
                const wBase = ((kz * k + ky) * k + kx) * cin * cout;
                for (let ci = 0; ci < cin; ci++) {
                  const v = x.data[i + ci] as number;
                  for (let co = 0; co < cout; co++) out[o + co] += v * (w[wBase + ci * cout + co] as number);
                }
              }
            }
          }
        }
  return { data: out, shape: [n, od, oh, ow, cout] };
}

function channelMoments(x: Volume): Moments {
  const c = x.shape[4];
  const rows = x.data.length / c;
  const mean = new Float64Array(c);
  const variance = new Float64Array(c);
  for (let r = 0; r < rows; r++) for (let j = 0; j < c; j++) mean[j] += (x.data[r * c + j] as number) / rows;
  for (let r = 0; r < rows; r++)
    for (let j = 0; j < c; j++)
      variance[j] += ((x.data[r * c + j] as number) - (mean[j] as number)) ** 2 / rows;
  return { mean, variance };
}

function mapChannels(x: Volume, fn: (v: number, sample: number, channel: number) => number): Volume {
  const [, d, h, w, c] = x.shape;
  const perSample = d * h * w * c;
  return { data: x.data.map((v, i) => fn(v, Math.floor(i / perSample), i % c)), shape: x.shape };
}

function upsample(x: Volume): Volume {
  const [n, d, h, w, c] = x.shape;
  const out = new Float64Array(x.data.length * 8);
  for (let s = 0; s < n; s++)
    for (let z = 0; z < 2 * d; z++)
      for (let y = 0; y < 2 * h; y++)
        for (let xx = 0; xx < 2 * w; xx++)
          for (let j = 0; j < c; j++)
            out[(((s * 2 * d + z) * 2 * h + y) * 2 * w + xx) * c + j] = x.data[
              (((s * d + (z >> 1)) * h + (y >> 1)) * w + (xx >> 1)) * c + j
            ] as number;
  return { data: out, shape: [n, 2 * d, 2 * h, 2 * w, c] };
}

function concat(a: Volume, b: Volume): Volume {
  const ca = a.shape[4];
  const cb = b.shape[4];
  const rows = a.data.length / ca;
  const out = new Float64Array(rows * (ca + cb));
  for (let r = 0; r < rows; r++) {
    out.set(a.data.subarray(r * ca, (r + 1) * ca), r * (ca + cb));
    out.set(b.data.subarray(r * cb, (r + 1) * cb), r * (ca + cb) + ca);
  }
  return { data: out, shape: [a.shape[0], a.shape[1], a.shape[2], a.shape[3], ca + cb] };
}

/**
 * Training-mode forward (batch statistics, the given dropout masks) and the seed's focal loss; with `running`,
 * eval-mode BatchNorm instead (each layer normalises with running[j]; pass null masks for eval).
 */
export function referenceForward(
  layout: UNetLayout,
  weights: Float64Array,
  input: Volume,
  labels: Uint8Array,
  masks: readonly (Float32Array | null)[],
  focal: { classWeights: readonly number[]; gamma: number; smooth: number },
  running?: readonly Moments[],
): ReferenceResult {
  const get = (name: string) => {
    const p = layout.parameters.find((q) => q.name === name);
    if (!p) throw new Error(`no parameter ${name}`);
    return weights.subarray(p.offset, p.offset + p.size);
  };
  const moments: Moments[] = [];
  let dropIndex = 0;
  const dropout = (x: Volume): Volume => {
    const mask = masks[dropIndex++];
    if (!mask) return x;
    const c = x.shape[4];
    return mapChannels(x, (v, s, j) => v * (mask[s * c + j] as number));
  };
  const convNamed = (x: Volume, block: string, layer: string, k: number, stride: number): Volume => {
    const b = get(`${block}.${layer}.bias`);
    return conv(x, get(`${block}.${layer}.weight`), b, k, b.length, stride);
  };
  const bnRelu = (x: Volume, block: string, layer: string): Volume => {
    const m = running ? running[moments.length] : channelMoments(x);
    if (!m) throw new Error(`no running statistics for BN layer ${moments.length}`);
    moments.push(m);
    const g = get(`${block}.${layer}.gamma`);
    const beta = get(`${block}.${layer}.beta`);
    return mapChannels(x, (v, _s, j) =>
      Math.max(
        0,
        ((v - (m.mean[j] as number)) / Math.sqrt((m.variance[j] as number) + BN_EPSILON)) * (g[j] as number) +
          (beta[j] as number),
      ),
    );
  };
  const convBlock = (x: Volume, block: string): Volume => {
    let y = x;
    for (const stage of [1, 2])
      y = bnRelu(convNamed(dropout(y), block, `conv${stage}`, 3, 1), block, `bn${stage}`);
    return y;
  };
  const down = (x: Volume, block: string) => convBlock(convNamed(dropout(x), block, 'down', 2, 2), block);
  const up = (x: Volume, skip: Volume, block: string) => convBlock(concat(upsample(dropout(x)), skip), block);

  const x1 = convBlock(input, 'inc');
  const x2 = down(x1, 'down1');
  const x3 = convBlock(down(x2, 'down2'), 'mid');
  const logits = convNamed(up(up(x3, x2, 'up1'), x1, 'up2'), 'outc', 'conv', 1, 1);

  const classes = logits.shape[4];
  const voxels = logits.data.length / classes;
  const probabilities = new Float64Array(logits.data.length);
  const alphaSum = focal.classWeights.reduce((a, b) => a + b, 0);
  const lo = focal.smooth / (classes - 1);
  const hi = 1 - focal.smooth;
  let loss = 0;
  for (let v = 0; v < voxels; v++) {
    let max = -Infinity;
    for (let c = 0; c < classes; c++) max = Math.max(max, logits.data[v * classes + c] as number);
    let z = 0;
    for (let c = 0; c < classes; c++) z += Math.exp((logits.data[v * classes + c] as number) - max);
    let pt = focal.smooth;
    for (let c = 0; c < classes; c++) {
      const p = Math.exp((logits.data[v * classes + c] as number) - max) / z;
      probabilities[v * classes + c] = p;
      pt += (c === labels[v] ? hi : lo) * p;
    }
    const alpha = (focal.classWeights[labels[v] as number] as number) / alphaSum;
    loss += -alpha * (1 - pt) ** focal.gamma * Math.log(pt);
  }
  return { loss: loss / voxels, probabilities, moments };
}
