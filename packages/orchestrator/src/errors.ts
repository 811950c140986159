import { LitsError } from '@lits-ddp/errors';

/** Supervision stopped on request (shutdown); the run goes on and is adopted later. */
export class RunDetachedError extends LitsError {
  constructor(reason: string) {
    super('RUN_DETACHED', reason);
  }
}

/** A generation ended early (a rank failed or was lost): the supervisor restarts it while it may. */
export class GenerationFailedError extends LitsError {
  constructor(
    message: string,
    /** Workers to replace before the restart (dead, or shutting down). */
    readonly lostWorkers: string[] = [],
  ) {
    super('GENERATION_FAILED', message);
  }
}

/** The run was cancelled (cancel key, or the caller's signal). */
export class RunCancelledError extends LitsError {
  constructor(reason: string) {
    super('RUN_CANCELLED', reason);
  }
}

/** The run was failed from outside (its workers cannot come back, e.g. its Kubernetes Job failed): no restart. */
export class RunDoomedError extends LitsError {
  constructor(reason: string) {
    super('RUN_DOOMED', reason);
  }
}

/** An experiment Job asked for with values no Job can have (the spec's checks let none through). */
export class JobInputError extends LitsError {
  constructor(message: string) {
    super('JOB_INPUT_INVALID', message);
  }
}

/** LITS_LAUNCHER / LITS_K8S_* settings that are missing or invalid. */
export class JobSettingsError extends LitsError {
  constructor(message: string) {
    super('JOB_SETTINGS_INVALID', message);
  }
}

/** The Kubernetes API refused or failed a request the launcher cannot do without. */
export class KubernetesApiError extends LitsError {
  constructor(message: string, cause: unknown) {
    super('KUBERNETES_API', message, { cause });
  }
}

/** The MLflow server could not be reached for a call the tracker cannot go on without. */
export class TrackingUnavailableError extends LitsError {
  constructor(message: string, cause: unknown) {
    super('TRACKING_UNAVAILABLE', message, { cause });
  }
}

/** The data set failed validation: `problems` name each file and the reason. */
export class DatasetInvalidError extends LitsError {
  constructor(
    readonly root: string,
    readonly problems: ReadonlyArray<{ file: string; reason: string }>,
  ) {
    const shown = problems.slice(0, 10).map((p) => `  ${p.file}: ${p.reason}`);
    const more = problems.length > 10 ? [`  … and ${problems.length - 10} more`] : [];
    super('DATASET_INVALID', [`data set ${root} is not valid:`, ...shown, ...more].join('\n'));
  }
}

/**
 * Not a failure: idle workers were free at a checkpoint, so the supervisor ends the generation there and
 * resumes the run from that checkpoint on `target` workers (an elastic run's growth).
 */
export class GenerationRegroup extends LitsError {
  constructor(
    message: string,
    readonly target: number,
  ) {
    super('GENERATION_REGROUP', message);
  }
}
