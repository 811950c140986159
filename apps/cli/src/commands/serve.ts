import { runServeCli } from '@lits-ddp/coordinator-service';

/** `lits serve`: the coordinator service (REST API, queue, dashboard). */
export const runServe = (argv: string[]): Promise<number> => runServeCli(argv);
