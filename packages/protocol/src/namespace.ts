/**
 * Every Redis key of lits-ddp starts with this prefix (override per deployment with LITS_KEY_PREFIX),
 * so one Redis can serve several deployments and `SCAN lits:*` finds everything we own.
 */
export const DEFAULT_KEY_PREFIX = 'lits';

export function keyPrefix(): string {
  return process.env.LITS_KEY_PREFIX ?? DEFAULT_KEY_PREFIX;
}
