// What engine-probe-child.ts prints, shared by the child and the parent that decodes it.
import Type, { type Static } from 'typebox';

/** Marks the result line: TensorFlow and tfjs may print their own lines on stdout too. */
export const PROBE_LINE_PREFIX = 'lits-doctor-probe ';

const NullableString = Type.Union([Type.String(), Type.Null()]);

export const EngineProbeResult = Type.Object({
  loads: Type.Boolean(),
  installed: Type.Boolean(),
  version: NullableString,
  libtensorflow: NullableString,
  backend: NullableString,
  gpuDevice: Type.Union([Type.Boolean(), Type.Null()]),
  threads: Type.Union([Type.Object({ intraOp: Type.Integer(), interOp: Type.Integer() }), Type.Null()]),
  onednn: Type.Union([Type.Boolean(), Type.Null()]),
  cpuIsa: NullableString,
  error: NullableString,
});
export type EngineProbeResult = Static<typeof EngineProbeResult>;

/** The result of an engine that did not load: why, and whether its package is there at all. */
export const notLoaded = (error: string, installed: boolean): EngineProbeResult => ({
  loads: false,
  installed,
  version: null,
  libtensorflow: null,
  backend: null,
  gpuDevice: null,
  threads: null,
  onednn: null,
  cpuIsa: null,
  error,
});

/** The result line of a probe's stdout, or undefined when the child printed none (it crashed). */
export function probeLine(stdout: string): string | undefined {
  return stdout
    .split('\n')
    .reverse()
    .find((line) => line.startsWith(PROBE_LINE_PREFIX))
    ?.slice(PROBE_LINE_PREFIX.length);
}
