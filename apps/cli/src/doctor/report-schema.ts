// The shape of `lits doctor --json`: one object, checked by its test, so scripts on a GPU box can rely on it.
import Type, { type Static, type TSchema } from 'typebox';
import type { EngineName } from '@lits-ddp/protocol';

const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);
const EngineKind = Type.Union([Type.Literal('gpu'), Type.Literal('node'), Type.Literal('cpu')]);
const EngineRequest = Type.Union([Type.Literal('auto'), EngineKind]);
// The protocol's list is the source of truth: the build fails here when it gains a name this schema lacks.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
export const SCHEMA_LISTS_PROTOCOL_ENGINES: Same<Static<typeof EngineRequest>, EngineName> = true;

export const DoctorThreads = Type.Object({
  intraOp: Type.Integer({ minimum: 1 }),
  interOp: Type.Integer({ minimum: 1 }),
  /** Where the intra-op count came from: `--threads`, `LITS_ENGINE_THREADS` or `default`. */
  source: Type.String(),
});

/** One engine, loaded in its own child process the way `lits worker` loads it. */
export const DoctorEngine = Type.Object({
  engine: EngineKind,
  package: Type.String(),
  loads: Type.Boolean(),
  /** False when the package is not installed at all (as opposed to installed but failing to load). */
  installed: Type.Boolean(),
  version: Nullable(Type.String()),
  libtensorflow: Nullable(Type.String()),
  backend: Nullable(Type.String()),
  /** Native engines: whether TensorFlow placed its ops on a GPU; null for pure JS or when it did not load. */
  gpuDevice: Nullable(Type.Boolean()),
  /** The thread pools a native engine runs with in a worker; null for pure JS. */
  threads: Nullable(DoctorThreads),
  onednn: Nullable(Type.Boolean()),
  cpuIsa: Nullable(Type.String()),
  error: Nullable(Type.String()),
  /** What to do so that it loads; null when it does. */
  hint: Nullable(Type.String()),
  ms: Type.Number({ minimum: 0 }),
});

export const DoctorGpu = Type.Object({
  index: Type.Integer({ minimum: 0 }),
  uuid: Type.String(),
  name: Type.String(),
  memoryBytes: Nullable(Type.Number()),
  /** Left visible by CUDA_VISIBLE_DEVICES. */
  visible: Type.Boolean(),
});

export const DoctorLibrary = Type.Object({
  /** The soname TensorFlow (or CUDA) opens, e.g. `libcudart.so.12`. */
  name: Type.String(),
  /** The dynamic loader opened it (with its own dependencies). */
  loads: Type.Boolean(),
  /** Where it was found on disk, when a search of the loader's places finds it. */
  path: Nullable(Type.String()),
  error: Nullable(Type.String()),
});

export const DoctorDriver = Type.Object({
  found: Type.Boolean(),
  /** The driver version nvidia-smi reports, else the kernel module's. */
  version: Nullable(Type.String()),
  /** The first line of /proc/driver/nvidia/version. */
  kernelModule: Nullable(Type.String()),
  /** What running nvidia-smi gave when it gave no GPU list (not on PATH, no driver loaded, …). */
  nvidiaSmiError: Nullable(Type.String()),
  gpus: Type.Array(DoctorGpu),
  /** libcuda.so.1, which only the host driver provides (never an image or a wheel). */
  libcuda: DoctorLibrary,
  env: Type.Object({
    CUDA_VISIBLE_DEVICES: Nullable(Type.String()),
    CUDA_DEVICE_ORDER: Nullable(Type.String()),
  }),
  hint: Nullable(Type.String()),
});

export const DoctorCuda = Type.Object({
  /** The libtensorflow whose CUDA libraries are listed, e.g. `2.18.1`. */
  libtensorflow: Type.String(),
  /** True when that version is assumed (the gpu engine did not load, so its own was not read). */
  assumed: Type.Boolean(),
  cuda: Type.String(),
  libraries: Type.Array(DoctorLibrary),
  hint: Nullable(Type.String()),
});

export const DoctorRuntime = Type.Object({
  node: Type.String(),
  nodeMajor: Type.Integer(),
  npm: Nullable(Type.String()),
  platform: Type.String(),
  arch: Type.String(),
  cpus: Type.Integer({ minimum: 1 }),
  warning: Nullable(Type.String()),
});

export const DoctorService = Type.Object({
  /** The URL checked, with any password replaced by `***`; null when none is configured. */
  url: Nullable(Type.String()),
  /** Where the URL came from: the flag, the environment variable, or null. */
  source: Nullable(Type.String()),
  /** null when nothing is configured (nothing to check). */
  reachable: Nullable(Type.Boolean()),
  version: Nullable(Type.String()),
  ms: Nullable(Type.Number({ minimum: 0 })),
  error: Nullable(Type.String()),
  hint: Nullable(Type.String()),
});

export const DoctorReport = Type.Object({
  /** True when everything the requested engine needs is fine; the exit code is 0 exactly then. */
  ok: Type.Boolean(),
  requested: EngineRequest,
  /** The engine a worker started with `--engine <requested>` would run; null when none would load. */
  selected: Nullable(EngineKind),
  /** Why `ok` is false, one line each. */
  problems: Type.Array(Type.String()),
  /** Worth fixing, but not in the way of the requested engine. */
  warnings: Type.Array(Type.String()),
  engines: Type.Array(DoctorEngine),
  driver: DoctorDriver,
  cudaLibraries: DoctorCuda,
  runtime: DoctorRuntime,
  services: Type.Object({ redis: DoctorService, mlflow: DoctorService }),
  checkedAt: Type.String(),
});

export type DoctorThreads = Static<typeof DoctorThreads>;
export type DoctorEngine = Static<typeof DoctorEngine>;
export type DoctorGpu = Static<typeof DoctorGpu>;
export type DoctorLibrary = Static<typeof DoctorLibrary>;
export type DoctorDriver = Static<typeof DoctorDriver>;
export type DoctorCuda = Static<typeof DoctorCuda>;
export type DoctorRuntime = Static<typeof DoctorRuntime>;
export type DoctorService = Static<typeof DoctorService>;
export type DoctorReport = Static<typeof DoctorReport>;
