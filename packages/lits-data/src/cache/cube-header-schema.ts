import Type, { type TSchema } from 'typebox';

// The JSON header of a cube file as a schema, so a header that parses but lacks a field (a cube written by hand,
// or by a broken writer) is refused naming the field, instead of failing later inside training.

const Shape3 = Type.Tuple([Type.Number(), Type.Number(), Type.Number()]);
const Matrix4 = Type.Array(Type.Array(Type.Number()));
const nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);

const SeedPresetConfig = Type.Object({
  preset: Type.Literal('seed'),
  targetSlices: Type.Integer(),
  downscale: Type.Integer(),
  cubeSize: Type.Integer(),
});

const ImprovedPresetConfig = Type.Object({
  preset: Type.Literal('improved'),
  targetSpacing: Shape3,
  window: Type.Tuple([Type.Number(), Type.Number()]),
  cubeSize: Type.Integer(),
});

const AxisMap = Type.Object({
  sourceAxis: Type.Union([Type.Literal(0), Type.Literal(1), Type.Literal(2)]),
  scale: Type.Number(),
  offset: Type.Number(),
});

const SliceCountPlan = Type.Object({
  target: Type.Number(),
  padBefore: Type.Number(),
  padAfter: Type.Number(),
  cropBefore: Type.Number(),
  cropAfter: Type.Number(),
});

const PreprocessGeometry = Type.Object({
  preset: Type.Union([Type.Literal('seed'), Type.Literal('improved')]),
  sourceShape: Shape3,
  sourceAffine: Matrix4,
  sourceSpacing: Shape3,
  outputShape: Shape3,
  outputAffine: Matrix4,
  axes: Type.Tuple([AxisMap, AxisMap, AxisMap]),
  sliceCount: nullable(SliceCountPlan),
  downscaleFactor: nullable(Type.Number()),
  targetSpacing: nullable(Shape3),
  fullShape: Shape3,
  cropStart: nullable(Shape3),
  centre: nullable(Shape3),
});

/** Only the format field: read first, so a cube of another format version says so rather than naming a field. */
export const CubeFormatField = Type.Object({ format: Type.Integer() });

/** The whole header of a format-1 cube file (`CubeFileHeader`). */
export const CubeFileHeaderSchema = Type.Object({
  format: Type.Integer(),
  caseId: Type.Integer(),
  shape: Type.Tuple([
    Type.Integer({ minimum: 1 }),
    Type.Integer({ minimum: 1 }),
    Type.Integer({ minimum: 1 }),
  ]),
  config: Type.Union([SeedPresetConfig, ImprovedPresetConfig]),
  geometry: PreprocessGeometry,
  imageCrc32: Type.Integer({ minimum: 0 }),
  labelCrc32: Type.Integer({ minimum: 0 }),
});
