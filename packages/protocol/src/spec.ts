import Type, { type Static, type TLiteral, type TSchema, type TUnion } from 'typebox';

/**
 * The experiment spec: the seed's 18 MLproject parameters under their own names (mlf-core
 * liver-ct-segmentation 1.0.0, MLproject defaults), plus lits-ddp's own. Everything is optional on
 * input; `resolveSpec` fills defaults and checks the rules that span several fields.
 */
export const SEED_PARAMS = {
  max_epochs: Type.Integer({ minimum: 1, maximum: 100_000, default: 1000, description: 'epochs to train' }),
  gpus: Type.Integer({
    minimum: 0,
    // workers defaults to gpus, and a run has at most 64 workers.
    maximum: 64,
    default: 2,
    description: 'GPUs (seed DDP processes); sets the global batch',
  }),
  accelerator: Type.String({
    default: 'ddp',
    description: "'ddp' or 'None' (seed); recorded, engine picks the device",
  }),
  'general-seed': Type.Integer({
    minimum: 0,
    maximum: 4_294_967_295,
    default: 0,
    description: 'seed of data draws: shuffle, split',
  }),
  'pytorch-seed': Type.Integer({
    minimum: 0,
    maximum: 4_294_967_295,
    default: 0,
    description: 'seed of model draws: init, dropout',
  }),
  'log-interval': Type.Integer({
    minimum: 1,
    maximum: 10_000_000,
    default: 3000,
    description: 'log train_step_loss every N steps',
  }),
  lr: Type.Number({ exclusiveMinimum: 0, default: 0.0001, description: 'Adam learning rate' }),
  'training-batch-size': Type.Integer({
    minimum: 1,
    maximum: 4096,
    default: 1,
    description: 'cubes per GPU per step (seed)',
  }),
  'test-batch-size': Type.Integer({
    minimum: 1,
    maximum: 4096,
    default: 1,
    description: 'cubes per test batch (IoU pooling unit)',
  }),
  'class-weights': Type.String({
    default: '0.2, 1.0, 2.5',
    description: 'focal-loss alpha, comma-separated',
  }),
  'test-percent': Type.Number({
    minimum: 0,
    exclusiveMaximum: 1,
    default: 0.15,
    description: 'seeded split share',
  }),
  'test-epochs': Type.Integer({
    minimum: 1,
    maximum: 100_000,
    default: 10,
    description: 'evaluate + checkpoint every N epochs',
  }),
  'dataset-path': Type.String({ minLength: 1, default: '/data/', description: 'LiTS or MSD Task03 folder' }),
  'dataset-size': Type.Integer({
    minimum: 1,
    maximum: 100_000,
    default: 131,
    description: 'use at most this many cases',
  }),
  'n-channels': Type.Integer({ minimum: 1, maximum: 1, default: 1, description: 'input channels (CT: 1)' }),
  'n-class': Type.Integer({
    minimum: 2,
    maximum: 3,
    default: 3,
    description: 'classes: background, liver, tumour',
  }),
  num_workers: Type.Integer({
    minimum: 0,
    maximum: 1024,
    default: 24,
    description: 'data-loader workers (seed); recorded only',
  }),
  'dropout-rate': Type.Number({
    minimum: 0,
    exclusiveMaximum: 1,
    default: 0.25,
    description: 'ConvBlock dropout',
  }),
} as const;

export const DETERMINISM_MODES = ['random', 'seed', 'deterministic'] as const;
export type DeterminismMode = (typeof DETERMINISM_MODES)[number];
/**
 * The TensorFlow.js engines, in the order `auto` tries them: tfjs-node-gpu (CUDA), tfjs-node (native CPU), pure-JS
 * tfjs. The repo's one list of engine names: @lits-ddp/unet loads engines by these names.
 */
export const ENGINE_KINDS = ['gpu', 'node', 'cpu'] as const;
export type EngineKind = (typeof ENGINE_KINDS)[number];
/** What a spec (or TFJS_ENGINE, --engine) may ask for: one engine, or `auto`, the first of ENGINE_KINDS that loads. */
export const ENGINES = ['auto', ...ENGINE_KINDS] as const;
export type EngineName = (typeof ENGINES)[number];
/**
 * Intra-op threads of a native worker unless the spec says otherwise. TensorFlow's sums split by thread count, so
 * this is part of a deterministic run's identity: one fixed default keeps N = 1, 2 and 4 on the same bits.
 */
export const DEFAULT_ENGINE_THREADS = 1;

/** One TLiteral per value, as a tuple: TypeBox's Static of a union reads its members from a tuple type. */
type Literals<T extends readonly string[]> = Extract<
  { -readonly [K in keyof T]: TLiteral<T[K] & string> },
  TSchema[]
>;

/** One of `values`; typed so that Static gives the union of the values (for every list of names in protocol). */
export function literalChoice<T extends readonly string[]>(
  values: T,
  options: { default?: T[number]; description?: string } = {},
): TUnion<Literals<T>> {
  return Type.Union(
    values.map((v) => Type.Literal(v)),
    options,
  ) as unknown as TUnion<Literals<T>>;
}

/** One of `values`, `def` by default, described with the allowed values. */
const literalUnion = <T extends readonly string[]>(
  values: T,
  def: T[number],
  description: string,
): TUnion<Literals<T>> =>
  literalChoice(values, { default: def, description: `${description} (${values.join(' | ')})` });

export const OUR_PARAMS = {
  workers: Type.Integer({
    minimum: 1,
    maximum: 64,
    description: 'worker processes (default: gpus, at least 1)',
  }),
  'min-workers': Type.Integer({
    minimum: 1,
    maximum: 64,
    description:
      'elastic: the fewest workers a run goes on with after losing some, once elastic-wait-s passed without a replacement (default: workers)',
  }),
  'max-workers': Type.Integer({
    minimum: 1,
    maximum: 64,
    description:
      'elastic: the most workers a run grows to, at a checkpoint, when idle ones are free (default: workers)',
  }),
  'elastic-wait-s': Type.Number({
    exclusiveMinimum: 0,
    maximum: 3600,
    default: 30,
    description:
      'elastic: how long a generation waits for `workers` before it starts with fewer (at least min-workers)',
  }),
  'worker-wait-s': Type.Number({
    exclusiveMinimum: 0,
    maximum: 86_400,
    description:
      "how long a generation waits for min-workers free workers before the run fails (default: the coordinator's, 10 min; 30 min with a launcher)",
  }),
  determinism: literalUnion(DETERMINISM_MODES, 'deterministic', 'reproducibility mode'),
  'global-batch-size': Type.Integer({
    minimum: 1,
    maximum: 65_536,
    description: 'cubes per optimiser step (default: training-batch-size × max(gpus, 1))',
  }),
  'micro-batch-size': Type.Integer({
    minimum: 1,
    maximum: 4096,
    default: 1,
    description: 'cubes per gradient computation',
  }),
  'unet-width': Type.Integer({
    minimum: 1,
    maximum: 256,
    default: 32,
    description: 'channels of the first block',
  }),
  'cube-size': Type.Integer({
    minimum: 8,
    maximum: 512,
    default: 128,
    description: 'training cube edge (÷4)',
  }),
  preprocessing: literalUnion(['seed', 'improved'] as const, 'seed', 'preprocessing preset'),
  'preprocess-slices': Type.Integer({
    minimum: 8,
    maximum: 4096,
    default: 512,
    description: 'z forced to this many slices (seed)',
  }),
  'preprocess-downscale': Type.Integer({
    minimum: 1,
    maximum: 8,
    default: 2,
    description: 'block-mean factor (seed)',
  }),
  split: literalUnion(
    ['auto', 'lits', 'seeded'] as const,
    'auto',
    "train/test split: 'lits' = the seed's 13 ids",
  ),
  'max-restarts': Type.Integer({
    minimum: 0,
    maximum: 100,
    default: 3,
    description: 'restarts after a failure',
  }),
  'collective-timeout-s': Type.Number({
    exclusiveMinimum: 0,
    maximum: 3600,
    default: 30,
    description: 'all-reduce wait limit',
  }),
  'heartbeat-interval-s': Type.Number({
    exclusiveMinimum: 0,
    maximum: 60,
    default: 2,
    description: 'worker heartbeat period',
  }),
  engine: literalUnion(ENGINES, 'auto', 'tfjs engine'),
  'engine-threads': Type.Integer({
    minimum: 1,
    maximum: 1024,
    default: DEFAULT_ENGINE_THREADS,
    description: "a native engine's intra-op threads per worker (its bits depend on it)",
  }),
  'experiment-name': Type.String({
    minLength: 1,
    maxLength: 500,
    default: 'lits-ddp',
    description: 'MLflow experiment',
  }),
  'run-name': Type.String({
    minLength: 1,
    maxLength: 250,
    description: 'MLflow run name (default: generated)',
  }),
  'cache-path': Type.String({
    minLength: 1,
    description: 'preprocessed-cube cache (default: <dataset-path>/.lits-cache)',
  }),
  'label-map': Type.String({
    minLength: 1,
    description:
      "what the mask values mean: value:class pairs with * for every other value ('5:1,6:2,*:0'), or class=value pairs, every other value background ('liver=5,tumour=6'); classes 0/background, 1/liver, 2/tumour (default: none, masks hold LiTS/MSD's 0, 1, 2)",
  }),
} as const;

const optional = <T extends Record<string, Parameters<typeof Type.Optional>[0]>>(props: T) =>
  Object.fromEntries(Object.entries(props).map(([k, v]) => [k, Type.Optional(v)])) as {
    [K in keyof T]: ReturnType<typeof Type.Optional<T[K]>>;
  };

/** What a user submits: every field optional, unknown fields refused. */
export const ExperimentSpecInput = Type.Object(
  { ...optional(SEED_PARAMS), ...optional(OUR_PARAMS) },
  { additionalProperties: false, title: 'ExperimentSpec' },
);
/** The submitted form: any subset of the resolved spec's fields. */
export type ExperimentSpecInput = Static<typeof ExperimentSpecInput>;

/**
 * A spec after defaults and cross-field rules (`resolveSpec`): every field set except the four that have no
 * default (absent `label-map`: masks hold LiTS/MSD's 0, 1, 2; absent `worker-wait-s`: the coordinator's limit).
 */
export const ResolvedSpec = Type.Object(
  {
    ...SEED_PARAMS,
    ...OUR_PARAMS,
    'run-name': Type.Optional(OUR_PARAMS['run-name']),
    'cache-path': Type.Optional(OUR_PARAMS['cache-path']),
    'label-map': Type.Optional(OUR_PARAMS['label-map']),
    'worker-wait-s': Type.Optional(OUR_PARAMS['worker-wait-s']),
  },
  { additionalProperties: false, title: 'ResolvedSpec' },
);
export type ResolvedSpec = Static<typeof ResolvedSpec>;

export const SEED_PARAM_NAMES = Object.keys(SEED_PARAMS) as Array<keyof typeof SEED_PARAMS>;
