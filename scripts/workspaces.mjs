// The workspace folders that hold a package.json, read from the root package.json's `workspaces`
// (each a `folder/*` pattern), for the root test and bench runners.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

export const root = new URL('..', import.meta.url).pathname;

const patterns = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).workspaces;

export const workspaceDirs = () =>
  patterns
    .map((pattern) => pattern.replace(/\/\*$/, ''))
    .flatMap((dir) =>
      existsSync(join(root, dir)) ? readdirSync(join(root, dir)).map((name) => join(root, dir, name)) : [],
    )
    .filter((dir) => existsSync(join(dir, 'package.json')));
