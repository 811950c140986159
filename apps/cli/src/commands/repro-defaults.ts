import type { ExperimentSpecInput } from '@lits-ddp/protocol';
import { DEMO_PHANTOMS, demoSpec } from './demo.js';
import type { PhantomSet } from './phantom-set.js';

/** The study trains on the demo's phantom set (and folder): 24 training cases, 8 held out with LiTS test ids. */
export const REPRO_PHANTOMS: PhantomSet = DEMO_PHANTOMS;

export const REPRO_EPOCHS = 30;

/**
 * The study's default training: the demo's pipeline and model on a 24³ cube (the liver's middle 134 × 134 × 112
 * mm), lr 0.002, 30 epochs, test and checkpoint every 5. Chosen by measurement with the native engine on 2 cores:
 * one training takes about 40 s at N = 2 and learns all three classes (test tumour IoU 0.52 at seeds 0/0), so 35
 * trainings fit in 30 min (docs/determinism.md).
 */
export function reproSpec(datasetPath: string, epochs: number): ExperimentSpecInput {
  return {
    ...demoSpec(datasetPath, epochs, 2),
    'cube-size': 24,
    lr: 0.002,
    'test-epochs': Math.min(5, epochs),
    'experiment-name': 'lits-ddp-repro',
  };
}
