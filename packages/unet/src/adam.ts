// Adam on flat Float32Arrays with float32 rounding after every operation (PyTorch 1.7's update formula),
// so identical inputs give identical bits in any process.

export interface AdamConfig {
  readonly lr: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
}

export const SEED_ADAM: AdamConfig = Object.freeze({ lr: 1e-4, beta1: 0.9, beta2: 0.999, eps: 1e-8 });

export interface AdamState {
  readonly config: AdamConfig;
  /** Optimiser steps taken (PyTorch's `step`). */
  readonly step: number;
  readonly m: Float32Array;
  readonly v: Float32Array;
}

const f = Math.fround;

export function validateAdamConfig(c: AdamConfig, source = 'adam'): AdamConfig {
  const check = (name: keyof AdamConfig, ok: boolean) => {
    if (!ok) throw new RangeError(`${source}.${name} is out of range: ${c[name]}`);
  };
  check('lr', Number.isFinite(c.lr) && c.lr >= 0);
  check('beta1', c.beta1 >= 0 && c.beta1 < 1);
  check('beta2', c.beta2 >= 0 && c.beta2 < 1);
  check('eps', Number.isFinite(c.eps) && c.eps >= 0);
  return c;
}

export class Adam {
  private stepCount: number;
  readonly m: Float32Array;
  readonly v: Float32Array;
  private hyper: AdamConfig;

  constructor(
    size: number,
    config: AdamConfig = SEED_ADAM,
    state?: { step: number; m: Float32Array; v: Float32Array },
  ) {
    this.hyper = validateAdamConfig({ ...config });
    if (state && (state.m.length !== size || state.v.length !== size))
      throw new RangeError(
        `Adam state holds ${state.m.length}/${state.v.length} moments for ${size} parameters`,
      );
    if (state && !(Number.isSafeInteger(state.step) && state.step >= 0))
      throw new RangeError(`Adam step must be a non-negative integer, got ${state.step}`);
    this.stepCount = state?.step ?? 0;
    this.m = state ? Float32Array.from(state.m) : new Float32Array(size);
    this.v = state ? Float32Array.from(state.v) : new Float32Array(size);
  }

  get config(): AdamConfig {
    return this.hyper;
  }

  get step(): number {
    return this.stepCount;
  }

  get lr(): number {
    return this.hyper.lr;
  }

  /** Changes the learning rate (the plateau schedule does this between epochs). */
  set lr(value: number) {
    this.hyper = validateAdamConfig({ ...this.hyper, lr: value });
  }

  /** One update of `params` in place with the (already averaged) gradient. */
  update(params: Float32Array, grads: Float32Array): void {
    if (params.length !== this.m.length || grads.length !== this.m.length)
      throw new RangeError(
        `Adam has ${this.m.length} moments; got ${params.length} parameters and ${grads.length} gradients`,
      );
    const t = ++this.stepCount;
    const { lr, beta1, beta2, eps } = this.hyper;
    // Python scalars in PyTorch's Adam are doubles; the tensor math is float32.
    const b1 = f(beta1);
    const b2 = f(beta2);
    const oneMinusB1 = f(1 - beta1);
    const oneMinusB2 = f(1 - beta2);
    const biasCorrection1 = 1 - beta1 ** t;
    const sqrtBiasCorrection2 = f(Math.sqrt(1 - beta2 ** t));
    const stepSize = f(lr / biasCorrection1);
    const epsF = f(eps);
    const { m, v } = this;
    for (let i = 0; i < params.length; i++) {
      const g = grads[i] as number;
      const mi = f(f((m[i] as number) * b1) + f(g * oneMinusB1));
      const vi = f(f((v[i] as number) * b2) + f(f(g * g) * oneMinusB2));
      m[i] = mi;
      v[i] = vi;
      const denom = f(f(f(Math.sqrt(vi)) / sqrtBiasCorrection2) + epsF);
      params[i] = f((params[i] as number) - f(stepSize * f(mi / denom)));
    }
  }

  state(): AdamState {
    return {
      config: this.hyper,
      step: this.stepCount,
      m: Float32Array.from(this.m),
      v: Float32Array.from(this.v),
    };
  }
}
