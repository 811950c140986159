import { spawnSync } from 'node:child_process';
import { errorMessage } from '@lits-ddp/errors';
import { aptInstall, findExecutable, isRoot } from '@lits-ddp/local-services';
import { NativeEngineUnavailableError } from './errors.js';

/** Why this machine cannot run the engine at all, or undefined when it can. */
export function platformProblem(): string | undefined {
  if (process.platform === 'linux' && process.arch === 'x64') return undefined;
  return `the native engine needs linux-x64 (libtensorflow comes from a manylinux x86_64 wheel); this is ${process.platform}-${process.arch}`;
}

export function requirePlatform(): void {
  const problem = platformProblem();
  if (problem) {
    throw new NativeEngineUnavailableError(
      'linux-x64',
      problem,
      'Use the pure-JS engine instead (TFJS_ENGINE=cpu)',
    );
  }
}

/** python3 on PATH: node-gyp runs gyp with it, and pip downloads the wheel with it. */
export function requirePython(): string {
  const python = findExecutable('python3');
  if (!python) {
    throw new NativeEngineUnavailableError(
      'python3',
      'python3 not found on PATH (node-gyp runs gyp with it, and pip downloads the tensorflow-cpu wheel)',
      'Install it: apt-get install -y python3 python3-pip',
    );
  }
  return python;
}

const hasPip = (python: string): boolean =>
  spawnSync(python, ['-m', 'pip', '--version'], { stdio: ['ignore', 'pipe', 'pipe'] }).status === 0;

/** Only needed when the libtensorflow cache is cold; installed with apt-get when missing and we are root. */
export function requirePip(python: string, log: (line: string) => void = () => undefined): void {
  if (!hasPip(python) && isRoot() && findExecutable('apt-get')) {
    try {
      aptInstall(['python3-pip'], log);
    } catch (err) {
      // Logged, then the check below names what is still missing and how to install it.
      log(`could not install python3-pip: ${errorMessage(err)}`);
    }
  }
  if (!hasPip(python)) {
    throw new NativeEngineUnavailableError(
      'pip',
      `pip is not available to ${python} (it downloads the tensorflow-cpu wheel that holds libtensorflow)`,
      'Install it: apt-get install -y python3-pip',
    );
  }
}

/**
 * The C++ toolchain node-gyp drives: g++ compiles and links the binding, make runs the build. Missing ones are
 * installed with apt-get when we are root on Debian/Ubuntu (as local-services does for redis-server).
 */
export function requireCompiler(log: (line: string) => void = () => undefined): void {
  const missing = (['g++', 'make'] as const).filter((tool) => !findExecutable(tool));
  if (missing.length > 0 && isRoot() && findExecutable('apt-get')) {
    try {
      aptInstall([...missing], log);
    } catch (err) {
      // Logged, then the check below names what is still missing and how to install it.
      log(`could not install ${missing.join(' ')}: ${errorMessage(err)}`);
    }
  }
  for (const tool of ['g++', 'make'] as const) {
    if (!findExecutable(tool)) {
      throw new NativeEngineUnavailableError(
        tool,
        `${tool} not found on PATH (node-gyp builds tfjs-node's C++ binding with g++ and make)`,
        'Install them: apt-get install -y g++ make',
      );
    }
  }
}
