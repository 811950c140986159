export {
  gaussianImportance,
  planWindows,
  slidingWindowArgmax,
  windowStarts,
  type Shape3,
  type SlidingWindowOptions,
  type SlidingWindowResult,
  type WindowPlan,
  type WindowPredictor,
} from './sliding-window.js';
export { keepLargestComponent, type ComponentReport } from './largest-component.js';
export {
  cropBox,
  cropGrid,
  cubeStart,
  labelBox,
  labelCentre,
  refineOnLiverCrop,
  type LiverCropOptions,
  type LiverCropResult,
} from './liver-crop.js';
export {
  renderOverlay,
  writeOverlay,
  type CtVolume,
  type OverlayImage,
  type OverlayOptions,
} from './overlay.js';
export {
  loadPredictor,
  preprocessingFromSpec,
  resolveModelSource,
  CHECKPOINT_PREFERENCE,
  type LoadPredictorOptions,
  type ModelSource,
  type Predictor,
} from './model-source.js';
export {
  predictVolume,
  type PredictPhase,
  type PredictProgress,
  type PredictVolumeOptions,
  type PredictVolumeResult,
} from './predict-volume.js';
export {
  listVolumes,
  maskNameFor,
  predictFolder,
  type PredictFolderOptions,
  type PredictFolderResult,
} from './predict-folder.js';
export {
  predictGrid,
  type LiverCropSummary,
  type PredictGridOptions,
  type PredictGridResult,
} from './predict-grid.js';
export { predictionPreprocessing, prepareForPrediction, type PreparedVolume } from './whole-volume.js';
export { countNonFinite, fillNonFinite, type NonFiniteCount, type NonFiniteFill } from './non-finite.js';
export {
  checkOutputFile,
  checkOutputFolder,
  maskExtensionProblem,
  writingTo,
  MASK_EXTENSIONS,
} from './output-path.js';
export { ModelSourceError, NoVolumesError, NonFiniteVoxelsError, OutputPathError } from './errors.js';
