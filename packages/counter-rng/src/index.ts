export { CounterRng, type PurposePart } from './counter-rng.js';
export { philox4x32 } from './philox.js';
