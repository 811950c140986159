#!/usr/bin/env node
import { runServeCli } from '@lits-ddp/coordinator-service';

runServeCli(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`lits-coordinator: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
