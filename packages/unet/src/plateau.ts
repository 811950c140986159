// torch.optim.lr_scheduler.ReduceLROnPlateau with the seed's settings, as plain serialisable state.

export interface PlateauConfig {
  readonly mode: 'min' | 'max';
  readonly factor: number;
  readonly patience: number;
  readonly threshold: number;
  readonly thresholdMode: 'rel' | 'abs';
  readonly cooldown: number;
  readonly minLr: number;
  /** A reduction smaller than this is skipped (PyTorch's eps). */
  readonly eps: number;
}

export const SEED_PLATEAU: PlateauConfig = Object.freeze({
  mode: 'min',
  factor: 0.1,
  patience: 10,
  threshold: 1e-4,
  thresholdMode: 'rel',
  cooldown: 0,
  minLr: 1e-6,
  eps: 1e-8,
});

export interface PlateauState {
  readonly config: PlateauConfig;
  readonly lr: number;
  /** null until the first step (PyTorch's ±inf, which JSON cannot hold). */
  readonly best: number | null;
  readonly numBadEpochs: number;
  readonly cooldownCounter: number;
  readonly lastEpoch: number;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

export function validatePlateauState(state: unknown, source = 'scheduler'): PlateauState {
  if (typeof state !== 'object' || state === null) throw new TypeError(`${source} must be an object`);
  const s = state as Record<string, unknown>;
  const c = s['config'] as Record<string, unknown> | undefined;
  if (typeof c !== 'object' || c === null) throw new TypeError(`${source}.config must be an object`);
  const num = (obj: Record<string, unknown>, key: string, where: string) => {
    const v = obj[key];
    if (typeof v !== 'number' || !Number.isFinite(v))
      throw new TypeError(`${where}.${key} must be a finite number`);
    return v;
  };
  if (c['mode'] !== 'min' && c['mode'] !== 'max')
    throw new TypeError(`${source}.config.mode must be min or max`);
  if (c['thresholdMode'] !== 'rel' && c['thresholdMode'] !== 'abs')
    throw new TypeError(`${source}.config.thresholdMode must be rel or abs`);
  for (const k of ['factor', 'patience', 'threshold', 'cooldown', 'minLr', 'eps'])
    num(c, k, `${source}.config`);
  for (const k of ['lr', 'numBadEpochs', 'cooldownCounter', 'lastEpoch']) num(s, k, source);
  if (s['best'] !== null) num(s, 'best', source);
  if (!((c['factor'] as number) < 1)) throw new RangeError(`${source}.config.factor must be below 1`);
  return s as unknown as PlateauState;
}

export class ReduceLROnPlateau {
  private current: PlateauState;

  constructor(lr: number, config: PlateauConfig = SEED_PLATEAU) {
    this.current = validatePlateauState({
      config,
      lr,
      best: null,
      numBadEpochs: 0,
      cooldownCounter: 0,
      lastEpoch: 0,
    });
  }

  static fromState(state: unknown, source = 'scheduler'): ReduceLROnPlateau {
    const valid = validatePlateauState(state, source);
    const s = new ReduceLROnPlateau(valid.lr, valid.config);
    s.current = { ...valid };
    return s;
  }

  get lr(): number {
    return this.current.lr;
  }

  state(): PlateauState {
    return { ...this.current };
  }

  private isBetter(a: number, best: number | null): boolean {
    if (best === null) return true;
    const { mode, thresholdMode, threshold } = this.current.config;
    if (mode === 'min') return thresholdMode === 'rel' ? a < best * (1 - threshold) : a < best - threshold;
    return thresholdMode === 'rel' ? a > best * (threshold + 1) : a > best + threshold;
  }

  /** Feeds one monitored value (the seed: train_avg_loss); returns true when the learning rate was reduced. */
  step(metric: number): boolean {
    if (!Number.isFinite(metric)) throw new RangeError(`plateau metric must be finite, got ${metric}`);
    const s: Mutable<PlateauState> = { ...this.current, lastEpoch: this.current.lastEpoch + 1 };
    if (this.isBetter(metric, s.best)) {
      s.best = metric;
      s.numBadEpochs = 0;
    } else s.numBadEpochs += 1;
    if (s.cooldownCounter > 0) {
      s.cooldownCounter -= 1;
      s.numBadEpochs = 0;
    }
    let reduced = false;
    if (s.numBadEpochs > s.config.patience) {
      const newLr = Math.max(s.lr * s.config.factor, s.config.minLr);
      if (s.lr - newLr > s.config.eps) {
        s.lr = newLr;
        reduced = true;
      }
      s.cooldownCounter = s.config.cooldown;
      s.numBadEpochs = 0;
    }
    this.current = s;
    return reduced;
  }
}
