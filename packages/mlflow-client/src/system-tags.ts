import { execFileSync } from 'node:child_process';
import { userInfo } from 'node:os';
import { basename } from 'node:path';
import type { Tag } from './types.js';

export type SourceType = 'LOCAL' | 'JOB' | 'PROJECT' | 'NOTEBOOK' | 'UNKNOWN';

export interface SystemTagOptions {
  runName?: string;
  /** Defaults to the entry script's file name. */
  sourceName?: string;
  sourceType?: SourceType;
  /** Defaults to the OS user (or $USER). */
  user?: string;
  /** Defaults to LITS_GIT_COMMIT, then `git rev-parse HEAD` in `cwd`; omitted when neither is known. */
  gitCommit?: string | null;
  cwd?: string;
}

/** The commit of the checkout at `cwd`, or undefined outside a git work tree. */
export function detectGitCommit(cwd = process.cwd()): string | undefined {
  if (process.env.LITS_GIT_COMMIT) return process.env.LITS_GIT_COMMIT;
  try {
    const out = execFileSync('git', ['rev-parse', 'HEAD'], {
      cwd,
      stdio: ['ignore', 'pipe', 'ignore'],
      timeout: 5000,
    });
    const sha = out.toString().trim();
    return /^[0-9a-f]{40}$/.test(sha) ? sha : undefined;
  } catch {
    // Not a git work tree, or no git: the commit tag is optional and simply left out.
    return undefined;
  }
}

function detectUser(): string {
  try {
    return userInfo().username;
  } catch {
    // No passwd entry for this uid (common in containers): the environment's name, else a placeholder.
    return process.env.USER ?? 'unknown';
  }
}

/** MLflow's reserved system tags, as its own clients set them on a new run. */
export function systemTags(opts: SystemTagOptions = {}): Tag[] {
  const tags: Tag[] = [
    { key: 'mlflow.user', value: opts.user ?? detectUser() },
    { key: 'mlflow.source.name', value: opts.sourceName ?? basename(process.argv[1] ?? 'node') },
    { key: 'mlflow.source.type', value: opts.sourceType ?? 'LOCAL' },
  ];
  if (opts.runName !== undefined) tags.push({ key: 'mlflow.runName', value: opts.runName });
  const commit = opts.gitCommit === null ? undefined : (opts.gitCommit ?? detectGitCommit(opts.cwd));
  if (commit) tags.push({ key: 'mlflow.source.git.commit', value: commit });
  return tags;
}
