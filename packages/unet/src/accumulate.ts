// Local gradient accumulation over a step's micro-batches, in a fixed order.

/** Sums equal-length vectors in the order they are added (float64 lanes), then averages once into float32. */
export class OrderedAverage {
  private readonly sum: Float64Array;
  private count = 0;

  constructor(readonly length: number) {
    this.sum = new Float64Array(length);
  }

  /** `index` must be the number of vectors added so far: the order is part of the result. */
  add(index: number, values: Float32Array): void {
    if (index !== this.count)
      throw new Error(`micro-batch ${index} added out of order (expected ${this.count})`);
    if (values.length !== this.length)
      throw new RangeError(`vector ${index} has ${values.length} values, expected ${this.length}`);
    for (let i = 0; i < values.length; i++) this.sum[i] = (this.sum[i] as number) + (values[i] as number);
    this.count++;
  }

  get added(): number {
    return this.count;
  }

  mean(): Float32Array {
    if (this.count === 0) throw new Error('nothing to average');
    const out = new Float32Array(this.length);
    for (let i = 0; i < this.length; i++) out[i] = (this.sum[i] as number) / this.count;
    return out;
  }
}
