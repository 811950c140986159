export {
  validateCompose,
  validateKubernetes,
  kubernetesKinds,
  assertNoIssues,
  KUBERNETES_SCHEMA_VERSION,
  COMPOSE_SCHEMA_PACKAGE,
  type SchemaIssue,
} from './schema-validation.js';
export {
  assembleKustomization,
  kustomizationFiles,
  readManifests,
  strategicMerge,
  podSpecs,
  type AssembledResource,
  type KubeObject,
} from './kustomize.js';
export {
  parseDockerfile,
  execForm,
  finalStage,
  readLitsCommandTable,
  type Dockerfile,
  type DockerInstruction,
} from './container-commands.js';
export { readCompose, readEnvFile, interpolate, mergeCompose, type ComposeEnv } from './compose-file.js';
export { DeployFileError, SchemaValidationError } from './errors.js';
