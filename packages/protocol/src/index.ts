export { DEFAULT_KEY_PREFIX, keyPrefix } from './namespace.js';
export * from './collective.js';
