// Errors a caller of `predictVolume` may want to tell apart; each message is "<path>: <reason>" on one line.

/** The CT holds NaN or ±Inf voxels and `nanFill` was not asked for. */
export class NonFiniteVoxelsError extends Error {
  constructor(
    readonly file: string,
    readonly nan: number,
    readonly infinite: number,
    readonly total: number,
  ) {
    super(
      `${file}: ${nan + infinite} of ${total} voxels are not finite (${nan} NaN, ${infinite} ±Inf); the network ` +
        `turns every window that touches one into background, so the mask would be empty. Replace them with the ` +
        `volume minimum (--nan-fill, or nanFill: true) or repair the scan`,
    );
    this.name = 'NonFiniteVoxelsError';
  }
}

/** The mask or overlay cannot be written where it was asked for (bad extension, a file where a folder must be…). */
export class OutputPathError extends Error {
  constructor(
    readonly path: string,
    reason: string,
    options?: { cause?: unknown },
  ) {
    super(`${path}: ${reason}`, options);
    this.name = 'OutputPathError';
  }
}
