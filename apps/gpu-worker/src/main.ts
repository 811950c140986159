#!/usr/bin/env node
import { errorMessage } from '@lits-ddp/errors';
import { runWorkerCli } from '@lits-ddp/trainer';

runWorkerCli(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`lits-worker: ${errorMessage(err)}\n`);
    process.exit(1);
  },
);
