#!/usr/bin/env node
import { runWorkerCli } from '@lits-ddp/trainer';

runWorkerCli(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`lits-worker: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
