// The workspace folders (packages/*, apps/*) that hold a package.json, for the root test and bench runners.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

export const root = new URL('..', import.meta.url).pathname;

export const workspaceDirs = () =>
  ['packages', 'apps']
    .flatMap((dir) =>
      existsSync(join(root, dir)) ? readdirSync(join(root, dir)).map((name) => join(root, dir, name)) : [],
    )
    .filter((dir) => existsSync(join(dir, 'package.json')));
