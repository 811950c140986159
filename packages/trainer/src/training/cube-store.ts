import { loadCube, type PreprocessConfig } from '@lits-ddp/lits-data';
import type { MicroBatch } from '@lits-ddp/unet';
import type { CaseRef } from '@lits-ddp/protocol';
import { join } from 'node:path';
import { CubeCacheError } from '../errors.js';

interface LoadedCube {
  image: Float32Array;
  label: Uint8Array;
  shape: [number, number, number];
}

/**
 * Preprocessed cubes of a run, read from the shared cache and kept in memory up to `maxBytes`
 * (least recently used first out), assembled into micro-batches in the order asked.
 */
export class CubeStore {
  private readonly loaded = new Map<number, LoadedCube>();
  private bytes = 0;
  private config: PreprocessConfig | undefined;

  constructor(
    private readonly cacheDir: string,
    private readonly cases: readonly CaseRef[],
    private readonly maxBytes = 2 * 1024 ** 3,
  ) {}

  get size(): number {
    return this.cases.length;
  }

  /** The preprocessing that made these cubes (their file headers record it; all cubes must agree). */
  get preprocessing(): PreprocessConfig {
    if (!this.config) this.cube(0);
    return this.config as PreprocessConfig;
  }

  private cube(index: number): LoadedCube {
    const hit = this.loaded.get(index);
    if (hit) {
      this.loaded.delete(index);
      this.loaded.set(index, hit);
      return hit;
    }
    const ref = this.cases[index];
    if (!ref) throw new RangeError(`sample ${index} is outside the ${this.cases.length} cases of this split`);
    const file = join(this.cacheDir, ref.cacheFile);
    const c = loadCube(file);
    if (!this.config) this.config = c.config;
    else if (JSON.stringify(c.config) !== JSON.stringify(this.config))
      throw new CubeCacheError(
        `${file}: case ${ref.caseId} was preprocessed with ${JSON.stringify(c.config)}, the others with ${JSON.stringify(this.config)}`,
      );
    const cube = { image: c.image, label: c.label, shape: [...c.shape] as [number, number, number] };
    this.bytes += cube.image.byteLength + cube.label.byteLength;
    this.loaded.set(index, cube);
    for (const [key, old] of this.loaded) {
      if (this.bytes <= this.maxBytes || key === index) break;
      this.loaded.delete(key);
      this.bytes -= old.image.byteLength + old.label.byteLength;
    }
    return cube;
  }

  /** The samples `indices` stacked into one micro-batch [m, D, H, W, 1]. */
  microBatch(indices: readonly number[]): MicroBatch {
    const cubes = indices.map((i) => this.cube(i));
    const first = cubes[0];
    if (!first) throw new RangeError('a micro-batch needs at least one sample');
    const voxels = first.image.length;
    for (const [j, c] of cubes.entries()) {
      if (c.shape.join('x') !== first.shape.join('x')) {
        const ref = this.cases[indices[j] as number];
        throw new CubeCacheError(
          `case ${ref?.caseId}: cube shape ${c.shape.join('×')} differs from ${first.shape.join('×')}`,
        );
      }
    }
    if (cubes.length === 1) return { image: first.image, label: first.label, batch: 1, shape: first.shape };
    const image = new Float32Array(voxels * cubes.length);
    const label = new Uint8Array(voxels * cubes.length);
    cubes.forEach((c, j) => {
      image.set(c.image, j * voxels);
      label.set(c.label, j * voxels);
    });
    return { image, label, batch: cubes.length, shape: first.shape };
  }
}
