// What the values of a mask mean, as the spec's `label-map` field and the `--label-map`/`--labels` flags write it:
// a multi-organ segmentation where liver is 5 (TotalSegmentator), or a mask with extra classes. The grammar lives
// here, with the spec, so the REST edge and the preprocessing accept exactly the same texts.

/** A LiTS class: 0 background, 1 liver, 2 tumour. */
export type LitsLabel = 0 | 1 | 2;

// A Map, not an object literal: `constructor=5` must not find Object.prototype.constructor.
const CLASS_NAMES: ReadonlyMap<string, LitsLabel> = new Map([
  ['background', 0],
  ['liver', 1],
  ['tumour', 2],
  ['tumor', 2],
]);

// Decimal numbers only, so '0x5', '1e1' and '' (which Number() would accept) are refused as typos.
const VALUE = /^[+-]?(\d+(\.\d*)?|\.\d+)$/;

export interface LabelMap {
  /** Stored value → LiTS class, for the values named. */
  readonly pairs: ReadonlyMap<number, LitsLabel>;
  /** The class of every other value (`*:0`), or null: 0, 1 and 2 keep their meaning and other values are errors. */
  readonly rest: LitsLabel | null;
  /** Canonical text (`5:1,6:2,*:0`): the same map always has the same text, so it can key a cache. */
  readonly text: string;
}

class Refused extends Error {}

function asClass(value: string): LitsLabel {
  const named = CLASS_NAMES.get(value.toLowerCase());
  if (named !== undefined) return named;
  if (value === '0' || value === '1' || value === '2') return Number(value) as LitsLabel;
  throw new Refused(`class '${value}' is not a LiTS class (0, 1, 2, background, liver or tumour)`);
}

function asValue(value: string): number {
  if (!VALUE.test(value)) throw new Refused(`'${value}' is not a label value (a decimal number such as 5)`);
  return Number(value);
}

function parse(text: string): LabelMap {
  const pairs = new Map<number, LitsLabel>();
  let rest: LitsLabel | null = null;
  const items = text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (items.length === 0) throw new Refused('is empty; e.g. 5:1,*:0 or liver=5');
  const byName = items.every((item) => item.includes('='));
  if (!byName && items.some((item) => item.includes('=')))
    throw new Refused(`mixes value:class and class=value pairs in '${text}'`);
  for (const item of items) {
    const sep = byName ? item.indexOf('=') : item.indexOf(':');
    if (sep <= 0 || sep === item.length - 1)
      throw new Refused(`'${item}' is not ${byName ? 'class=value' : 'value:class'}`);
    const left = item.slice(0, sep).trim();
    const right = item.slice(sep + 1).trim();
    if (!byName && left === '*') {
      const cls = asClass(right);
      if (rest !== null && rest !== cls) throw new Refused(`maps * twice (to ${rest} and ${cls})`);
      rest = cls;
      continue;
    }
    const value = asValue(byName ? right : left);
    const cls = asClass(byName ? left : right);
    const before = pairs.get(value);
    if (before !== undefined && before !== cls)
      throw new Refused(`maps value ${value} twice (to ${before} and ${cls})`);
    pairs.set(value, cls);
  }
  if (byName) rest = 0;
  const sorted = [...pairs].sort((a, b) => a[0] - b[0]);
  const canonical = [...sorted.map(([v, c]) => `${v}:${c}`), ...(rest === null ? [] : [`*:${rest}`])];
  return { pairs: new Map(sorted), rest, text: canonical.join(',') };
}

/**
 * Parses a label map, or says why it is not one. Two forms:
 * - `value:class` pairs, with `*` for every other value: `5:1,6:0,*:0` (class 0, 1, 2 or its name);
 * - `class=value` pairs, which imply `*:0`: `liver=5`, `liver=5,tumour=6` (a whole multi-organ mask reduced to
 *   LiTS's classes).
 */
export function parseLabelMapText(
  text: string,
): { ok: true; map: LabelMap } | { ok: false; problem: string } {
  try {
    return { ok: true, map: parse(text) };
  } catch (err) {
    if (err instanceof Refused) return { ok: false, problem: err.message };
    throw err;
  }
}
