// Where `lits predict` writes. Checked before the volume is read, so a typo in --out fails in milliseconds instead of
// after minutes of windows, and wrapped when the write itself fails, so the message says what was being written.
import { stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { errorMessage } from '@lits-ddp/errors';
import { OutputPathError } from './errors.js';

/** Names `writeNifti` writes a mask under: the name decides compression, so anything else would mislead. */
export const MASK_EXTENSIONS = ['.nii', '.nii.gz'] as const;

/** Null when `path` ends in .nii or .nii.gz, else the reason it cannot hold a mask. */
export function maskExtensionProblem(path: string): string | null {
  if (/\.nii(\.gz)?$/i.test(path)) return null;
  const ext = /(\.[^./\\]+)+$/.exec(path.replace(/^.*[/\\]/, ''))?.[0];
  return `a mask is written as NIfTI, so its name must end in ${MASK_EXTENSIONS.join(' or ')}; ${
    ext ? `"${ext}" is not one` : 'it has no extension'
  }`;
}

async function kind(path: string, target: string, what: string): Promise<'file' | 'folder' | null> {
  try {
    return (await stat(path)).isDirectory() ? 'folder' : 'file';
  } catch (error) {
    // A missing path will be created; ENOTDIR means an ancestor is a file, which the walk up finds.
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw new OutputPathError(target, `cannot write ${what} there: ${errorMessage(error)}`, {
      cause: error,
    });
  }
}

/** The nearest existing ancestor of `path` must be a folder (the missing ones are created when writing). */
async function checkAncestors(path: string, what: string): Promise<void> {
  let dir = dirname(resolve(path));
  for (;;) {
    const found = await kind(dir, path, what);
    if (found === 'folder') return;
    if (found === 'file')
      throw new OutputPathError(path, `cannot write ${what} there: ${dir} is a file, not a folder`);
    const up = dirname(dir);
    if (up === dir) return;
    dir = up;
  }
}

/** Throws an `OutputPathError` unless `path` can become a file: a folder may be created on the way, not a file. */
export async function checkOutputFile(
  path: string,
  what: string,
  options: { nifti?: boolean } = {},
): Promise<void> {
  if (options.nifti) {
    const problem = maskExtensionProblem(path);
    if (problem) throw new OutputPathError(path, problem);
  }
  if ((await kind(path, path, what)) === 'folder')
    throw new OutputPathError(path, `is a folder; ${what} needs a file name here`);
  await checkAncestors(path, what);
}

/** Throws an `OutputPathError` unless `path` is a folder or can be created as one. */
export async function checkOutputFolder(path: string, what: string): Promise<void> {
  if ((await kind(path, path, what)) === 'file')
    throw new OutputPathError(path, `is a file; ${what} go into a folder (batch mode)`);
  await checkAncestors(path, what);
}

/** Runs a write; a file-system failure becomes an `OutputPathError` naming the path and what was being written. */
export async function writingTo<T>(path: string, what: string, write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (typeof code !== 'string') throw error;
    const reason =
      code === 'EEXIST' || code === 'ENOTDIR'
        ? 'a file is in the way where a folder is needed'
        : errorMessage(error);
    throw new OutputPathError(path, `cannot write ${what}: ${reason}`, { cause: error });
  }
}
