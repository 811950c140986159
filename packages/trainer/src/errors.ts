import { LitsError } from '@lits-ddp/errors';

/** The training ended because the run was aborted or this worker was told to stop. */
export class TrainingStopped extends LitsError {
  constructor(message: string) {
    super('TRAINING_STOPPED', message);
  }
}

/** This worker was told to stop (SIGTERM/SIGINT) between two steps; `signal` names what stopped it. */
export class StoppedBySignal extends TrainingStopped {
  constructor(readonly signal: string) {
    super(`stopped by ${signal}`);
  }
}

/** The run plan cannot be run by this assignment: missing, of another generation, or with a spec value it cannot use. */
export class RunPlanError extends LitsError {
  constructor(message: string) {
    super('PLAN_INVALID', message);
  }
}

/** This worker's or a rank's engine differs from what the run (or the checkpoint it resumes) needs. */
export class EngineMismatchError extends LitsError {
  constructor(message: string) {
    super('ENGINE_MISMATCH', message);
  }
}

/** A checkpoint that is not this run's to resume (other seeds). */
export class CheckpointMismatchError extends LitsError {
  constructor(message: string) {
    super('CHECKPOINT_MISMATCH', message);
  }
}

/** The ranks hold different weights where they must hold the same. */
export class RanksDivergedError extends LitsError {
  constructor(message: string) {
    super('RANKS_DIVERGED', message);
  }
}

/** Cached cubes that cannot go into one run together (other preprocessing, other shapes). */
export class CubeCacheError extends LitsError {
  constructor(message: string) {
    super('CUBE_CACHE_INVALID', message);
  }
}

/** `lits worker` options (or the worker id) that cannot be used. */
export class WorkerUsageError extends LitsError {
  constructor(message: string) {
    super('WORKER_USAGE', message);
  }
}

/** nvidia-smi answered, but not in the shape of the query we sent: GPUs would be guessed, so nothing starts. */
export class GpuDiscoveryError extends LitsError {
  constructor(message: string) {
    super('NVIDIA_SMI_OUTPUT', message);
  }
}
