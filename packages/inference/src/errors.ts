// Errors a caller of `predictVolume` may want to tell apart; each message is "<path>: <reason>" on one line.
import { LitsError } from '@lits-ddp/errors';

/** The CT holds NaN or ±Inf voxels and `nanFill` was not asked for. */
export class NonFiniteVoxelsError extends LitsError {
  constructor(
    readonly file: string,
    readonly nan: number,
    readonly infinite: number,
    readonly total: number,
  ) {
    super(
      'CT_NON_FINITE',
      `${file}: ${nan + infinite} of ${total} voxels are not finite (${nan} NaN, ${infinite} ±Inf); the network ` +
        `turns every window that touches one into background, so the mask would be empty. Replace them with the ` +
        `volume minimum (--nan-fill, or nanFill: true) or repair the scan`,
    );
  }
}

/** The mask or overlay cannot be written where it was asked for (bad extension, a file where a folder must be…). */
export class OutputPathError extends LitsError {
  constructor(
    readonly path: string,
    reason: string,
    options?: { cause?: unknown },
  ) {
    super('OUTPUT_PATH_INVALID', `${path}: ${reason}`, options);
  }
}

/** The model could not be found or its preprocessing is unknown; the message names the file and the reason. */
export class ModelSourceError extends LitsError {
  constructor(
    readonly path: string,
    reason: string,
    options?: { cause?: unknown },
  ) {
    super('MODEL_SOURCE_INVALID', `${path}: ${reason}`, options);
  }
}

/** Batch mode found no CT volume in its input folder. */
export class NoVolumesError extends LitsError {
  constructor(readonly dir: string) {
    super(
      'NO_VOLUMES',
      `${dir}: no CT volumes (.nii or .nii.gz, not segmentation/label files) in this folder`,
    );
  }
}
