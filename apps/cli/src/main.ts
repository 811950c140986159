#!/usr/bin/env node
// `lits`: one entry point that dispatches to each part's own command.
import { errorMessage } from '@lits-ddp/errors';

const USAGE = `lits — data-parallel training of the LiTS 3D U-Net (TensorFlow.js, Redis all-reduce)

  lits demo [--json]                 phantoms → preprocess → 2 workers → test metrics (embedded Redis)
  lits doctor [--engine E] [--json]  run it first: engines, GPU driver, CUDA libraries, Node, Redis, MLflow
  lits engine install|status         build the native TensorFlow engine from registry packages, or say why not
  lits train --config spec.json | --<spec-field> <value> …
                                     local launcher: the coordinator core + N worker processes
  lits worker [--id ID]              one worker process (registers in REDIS_URL, waits for work)
  lits serve [--port N]              the coordinator: REST API, queue, live events, dashboard
  lits submit spec.json [--wait]     queue an experiment on the coordinator (LITS_API_URL, LITS_API_TOKEN)
  lits status [id]                   experiments, or one experiment's progress and metrics
  lits logs id [--follow]            an experiment's events, live with progress bars
  lits cancel id                     remove a queued experiment or abort a running one
  lits data <inspect|validate|synth|preprocess> … [--labels liver=5 | --label-map 5:1,*:0]
  lits unet summary [--json] [--width N]
  lits predict --model RUN_OR_CHECKPOINT_DIR VOLUME|DIR --out MASK|DIR [--overlay PNG|DIR] [--largest-component]
               [--nan-fill]
  lits evaluate --pred PATH --truth PATH [--json] [--csv FILE] [--surface] [--empty-rule lits|skip|one]
               [--labels liver=5 | --label-map 5:1,*:0] [--pred-label-map MAP]
  lits repro [--runs 10] [--workers 2] [--epochs N] [--config spec.json] [--json]
                                     the Random / Seed / Deterministic study: report folder + IoU boxplot

Run a command with --help for its options.`;

type Command = (argv: string[]) => Promise<number>;

const commands: Record<string, () => Promise<Command>> = {
  demo: async () => (await import('./commands/demo.js')).runDemo,
  train: async () => (await import('./commands/train.js')).runTrain,
  worker: async () => (await import('@lits-ddp/trainer')).runWorkerCli,
  engine: async () => (await import('@lits-ddp/native-engine')).runEngineCli,
  doctor: async () => (await import('./commands/doctor.js')).runDoctor,
  data: async () => (await import('@lits-ddp/lits-data')).runLitsDataCli,
  unet: async () => (await import('@lits-ddp/unet')).runUnetCli,
  predict: async () => (await import('./commands/predict.js')).runPredict,
  serve: async () => (await import('./commands/serve.js')).runServe,
  submit: async () => (await import('./commands/submit.js')).runSubmit,
  status: async () => (await import('./commands/status.js')).runStatus,
  logs: async () => (await import('./commands/logs.js')).runLogs,
  cancel: async () => (await import('./commands/cancel.js')).runCancel,
  evaluate: async () => (await import('./commands/evaluate.js')).runEvaluate,
  repro: async () => (await import('./commands/repro.js')).runRepro,
};

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return name ? 0 : 2;
  }
  const load = commands[name];
  if (!load) {
    process.stderr.write(`lits: unknown command "${name}"\n\n${USAGE}\n`);
    return 2;
  }
  return (await load())(rest);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    const verbose = process.argv.includes('--verbose');
    process.stderr.write(`lits: ${verbose && err instanceof Error ? err.stack : errorMessage(err)}\n`);
    process.exitCode = 1;
  },
);
