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
  cropGrid,
  cubeStart,
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
  ModelSourceError,
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
