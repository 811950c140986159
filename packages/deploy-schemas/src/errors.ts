import { LitsError } from '@lits-ddp/errors';

/**
 * A deployment file (compose file, `.env`, Dockerfile, kustomization, manifest, vendored schema) that cannot be
 * read as such. `location` is the file, with a line or a field path where known (`docker-compose.yml/services/api`,
 * `Dockerfile:12`); the message is `<location>: <problem>`.
 */
export class DeployFileError extends LitsError {
  constructor(
    readonly location: string,
    readonly problem: string,
    options?: { cause?: unknown },
  ) {
    super('DEPLOY_FILE_INVALID', `${location}: ${problem}`, options);
  }
}

/** Documents failed their schema: every issue, one per line. */
export class SchemaValidationError extends LitsError {
  constructor(readonly issues: readonly { file: string; path: string; message: string }[]) {
    super(
      'SCHEMA_VALIDATION_FAILED',
      `schema validation failed:\n${issues.map((i) => `  ${i.file} ${i.path}: ${i.message}`).join('\n')}`,
    );
  }
}
