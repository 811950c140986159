import { cpSync, mkdirSync, readdirSync, symlinkSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { locateTfjsNode, type EngineFlavour } from '../src/index.js';

/** What `npm ci` leaves out (and the install puts in), so a copy without them is a fresh install. */
const BUILT = new Set(['deps', 'lib', 'build', '.lits-native-engine.lock']);

/**
 * A fresh copy of the installed @tensorflow/tfjs-node (or -gpu) under `root/node_modules`, beside symlinks to
 * every other package of the checkout's node_modules, so it resolves its dependencies as it would
 * after `npm ci`. Returns the copy's folder.
 */
export function copyTfjsNode(root: string, flavour: EngineFlavour = 'cpu'): string {
  const source = locateTfjsNode(flavour);
  const scopeDir = dirname(source);
  const nodeModules = dirname(scopeDir);
  const target = join(root, 'node_modules', basename(scopeDir), basename(source));
  mkdirSync(target, { recursive: true });
  for (const entry of readdirSync(source)) {
    if (!BUILT.has(entry)) cpSync(join(source, entry), join(target, entry), { recursive: true });
  }
  for (const entry of readdirSync(nodeModules)) {
    if (entry === basename(scopeDir) || entry === '.bin') continue;
    symlinkSync(join(nodeModules, entry), join(root, 'node_modules', entry));
  }
  for (const entry of readdirSync(scopeDir)) {
    if (entry !== basename(source)) symlinkSync(join(scopeDir, entry), join(dirname(target), entry));
  }
  return target;
}
