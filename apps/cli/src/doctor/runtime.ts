// Node, npm and the platform the commands run on.
import { execFile } from 'node:child_process';
import { availableParallelism, release } from 'node:os';
import type { DoctorRuntime } from './report-schema.js';

/** The oldest Node major still maintained (Node 20 reached end of life in April 2026). */
export const OLDEST_SUPPORTED_NODE = 22;

/** npm's version: from npm's user agent when npm started us (`npm run lits`), else from `npm --version`. */
function npmVersion(): Promise<string | null> {
  const agent = /\bnpm\/(\S+)/.exec(process.env.npm_config_user_agent ?? '')?.[1];
  if (agent) return Promise.resolve(agent);
  return new Promise((resolve) => {
    execFile('npm', ['--version'], { timeout: 15_000 }, (err, stdout) =>
      resolve(err ? null : stdout.trim() || null),
    );
  });
}

export async function checkRuntime(): Promise<DoctorRuntime> {
  const nodeMajor = Number(process.versions.node.split('.')[0]);
  return {
    node: process.version,
    nodeMajor,
    npm: await npmVersion(),
    platform: `${process.platform} ${release()}`,
    arch: process.arch,
    cpus: availableParallelism(),
    warning:
      nodeMajor < OLDEST_SUPPORTED_NODE
        ? `Node ${process.version} is end of life: use Node 24 LTS (22 is still supported)`
        : null,
  };
}
