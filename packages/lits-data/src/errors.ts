import { errorMessage, LitsError } from '@lits-ddp/errors';

/**
 * An error about one input file (a volume, a mask, dataset.json, a cube, the cache folder): `message` is
 * "<file>: <reason>", one line, no stack needed to understand it. Code `DATA_FILE_INVALID`.
 */
export class LitsDataError extends LitsError {
  constructor(
    readonly file: string,
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super('DATA_FILE_INVALID', `${file}: ${reason}`, options);
  }
}

/**
 * A labelled volume without liver after downscaling or resampling, so there is no centre for the cube. Thrown by the
 * presets, which do not know the file; `preprocessCase` rethrows it as a `LitsDataError` on the mask.
 */
export class NoLiverError extends LitsError {
  constructor(message: string) {
    super('NO_LIVER', message);
  }
}

/** A bad `lits-data` command line: exit 2 with the usage text. */
export class UsageError extends LitsError {
  constructor(message: string) {
    super('USAGE_INVALID', message);
  }
}

/** "1.2 MB" style sizes for error messages (decimal megabytes, like file managers). */
export function formatBytes(bytes: number): string {
  if (bytes < 1000) return `${bytes} B`;
  if (bytes < 1e6) return `${(bytes / 1e3).toFixed(1)} kB`;
  if (bytes < 1e9) return `${(bytes / 1e6).toFixed(1)} MB`;
  return `${(bytes / 1e9).toFixed(2)} GB`;
}

// What each errno means to a user; Node's own message ("ENOTDIR: not a directory, mkdir '/x/y/cubes'") names neither
// the folder that is in the way nor what we were doing.
const FS_REASONS: Readonly<Record<string, string>> = {
  ENOENT: 'not found',
  ENOTDIR: 'a part of the path is a file, not a folder',
  EISDIR: 'is a folder, not a file',
  EEXIST: 'already exists',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'the file system is read-only',
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
  EMFILE: 'too many open files',
  ENAMETOOLONG: 'the path is too long',
};

/** A file-system error as a `LitsDataError` on `path`: what went wrong (errno) and what we were doing. */
export function fileSystemError(path: string, error: unknown, doing: string): LitsDataError {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  const known = code !== undefined ? FS_REASONS[code] : undefined;
  const reason = known ? `${known} (${code})` : errorMessage(error);
  return new LitsDataError(path, `${reason} while ${doing}`, { cause: error });
}
