/**
 * CommonJS for a `node -e` script, to run before it requires @tensorflow/tfjs-node (or -gpu): tfjs-node 4.22 calls
 * util.isNullOrUndefined for every op with a type attribute (conv3d, sum, cast, …), and Node 23 removed it. It is
 * restored with its documented meaning, as @lits-ddp/unet's loadEngine does, so the engine runs on Node 24 LTS.
 */
export const RESTORE_UTIL_JS =
  "require('util').isNullOrUndefined ??= (value) => value === null || value === undefined;";
