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
