export { LitsDataError, fileSystemError, formatBytes } from './errors.js';
export type { NiftiData, Datatype, DatatypeName } from './nifti/datatypes.js';
export {
  axisDirections,
  orientationCode,
  qformToAffine,
  affineToQform,
  voxelSizes,
  type Matrix4,
  type Quaternion,
} from './nifti/affine.js';
export type { NiftiHeaderInfo, NiftiTransform, NiftiFormat, ByteOrder } from './nifti/header.js';
export {
  readNifti,
  readNiftiHeader,
  scalingOf,
  type NiftiVolume,
  type ReadNiftiOptions,
} from './nifti/read.js';
export { writeNifti, type NiftiWriteInput, type WriteNiftiOptions } from './nifti/write.js';
export { generatePhantomDataset, generatePhantomVolumes, PHANTOM_HU } from './phantom/phantom.js';
export { TUMOUR_MODEL } from './phantom/tumours.js';
export type {
  PhantomOptions,
  PhantomVolumes,
  PhantomDatasetOptions,
  PhantomCase,
} from './phantom/phantom.js';
export {
  discoverDataset,
  type Dataset,
  type DatasetLayout,
  type DatasetProblem,
} from './dataset/discover.js';
export { validateDataset, type ValidationReport, type ValidateOptions } from './dataset/validate.js';
export { LITS_TEST_IDS, LITS_TRAIN_IDS, seededSplit, litsSeedSplit, type Split } from './dataset/split.js';
export type { Shape3, Grid } from './preprocess/grid.js';
export { shape3, seedOrderIndex } from './preprocess/grid.js';
export {
  planSliceCount,
  sourceSlice,
  forceSliceCount,
  roundHalfEven,
  liverCentre,
  cubeCropStart,
  cropCube,
  toSeedOrder,
  type SliceCountPlan,
} from './preprocess/blocks.js';
export {
  minValue,
  downscaledShape,
  downscaleMean,
  downscaleLabel,
  type DownscaleOptions,
} from './preprocess/downscale.js';
export {
  SEED_PRESET,
  IMPROVED_PRESET,
  resolvePreprocessConfig,
  type PreprocessConfig,
  type PreprocessConfigInput,
  type SeedPresetConfig,
  type ImprovedPresetConfig,
} from './preprocess/config.js';
export {
  labelToSourceGrid,
  outputAffineOf,
  type AxisMap,
  type PreprocessGeometry,
} from './preprocess/geometry.js';
export {
  seedPresetCube,
  seedPresetWhole,
  type CubeResult,
  type WholeVolumeResult,
} from './preprocess/seed-preset.js';
export {
  improvedPresetCube,
  improvedPresetWhole,
  rasResamplePlan,
  resampleLinear,
  resampleLabel,
  windowAndStandardise,
} from './preprocess/improved-preset.js';
export {
  preprocessCase,
  preprocessVolumes,
  prepareWholeVolume,
  volumeGrid,
  type CaseFiles,
  type Cube,
} from './preprocess/case.js';
export type { CaseOptions } from './preprocess/checked-input.js';
export {
  loadCube,
  verifyCubeFile,
  writeCubeFile,
  CUBE_FORMAT_VERSION,
  type CubeFileHeader,
} from './cache/cube-file.js';
export {
  cubeCacheKey,
  cubePath,
  configHash,
  ensureCube,
  ensureCacheDir,
  preprocessDataset,
  PREPROCESS_ALGORITHM_VERSION,
  type CacheEntry,
  type CacheManifest,
  type CacheOptions,
  type PreprocessProgress,
  type SourceIdentityMode,
} from './cache/cube-cache.js';
export {
  distributedSampler,
  epochOrder,
  type DistributedSamplerOptions,
} from './sampler/distributed-sampler.js';
export {
  microBatchPlan,
  microBatchesForRank,
  rankMicroBatches,
  type MicroBatchPlan,
  type MicroBatchPlanOptions,
} from './sampler/micro-batch-plan.js';
export { runLitsDataCli } from './cli/run.js';
export {
  parseLabelMap,
  mapLabel,
  applyLabelMap,
  countLabelClasses,
  describeForeignLabels,
  type LabelMap,
  type LabelClassCounts,
  type LabelScaling,
  type LitsLabel,
  type MappedLabels,
} from './dataset/label-map.js';
export { VALIDATION_RULES_VERSION, DEFAULT_GEOMETRY_TOLERANCE, minimumVolumeShape } from './dataset/rules.js';
