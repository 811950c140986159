import { describe, expect, it } from 'vitest';
import {
  applyLabelMap,
  countLabelClasses,
  describeForeignLabels,
  LitsDataError,
  mapLabel,
  parseLabelMap,
} from '../src/index.js';

function refusal(text: string, source?: string): string {
  try {
    parseLabelMap(text, source);
  } catch (error) {
    expect(error).toBeInstanceOf(LitsDataError);
    return (error as Error).message;
  }
  throw new Error(`parseLabelMap accepted '${text}'`);
}

describe('parseLabelMap', () => {
  it('reads value:class pairs with * for the rest, class names or numbers, in any order and spacing', () => {
    const map = parseLabelMap(' 6 : tumour, *:background ,5:1 ');
    expect([...map.pairs]).toEqual([
      [5, 1],
      [6, 2],
    ]);
    expect(map.rest).toBe(0);
    expect(map.text).toBe('5:1,6:2,*:0');
  });

  it('reads class=value pairs as a whole multi-organ mask reduced to LiTS classes (every other value 0)', () => {
    const map = parseLabelMap('liver=5,Tumor=6');
    expect(map.text).toBe('5:1,6:2,*:0');
    expect(parseLabelMap('liver=5').text).toBe('5:1,*:0');
    expect(parseLabelMap('liver=5, liver=7').text).toBe('5:1,7:1,*:0');
  });

  it('gives the same text to the same map however it is written, so the text can key the cube cache', () => {
    const texts = ['5:1,*:0', '*:0,5:1', 'liver=5', ' 5.0 : liver , * : 0 ', '5:1,5:1,*:0'];
    expect(new Set(texts.map((t) => parseLabelMap(t).text))).toEqual(new Set(['5:1,*:0']));
    expect(parseLabelMap('5:1').text).not.toBe(parseLabelMap('5:1,*:0').text);
  });

  it('accepts negative and fractional values (float masks)', () => {
    expect(parseLabelMap('-1:0,0.5:1').text).toBe('-1:0,0.5:1');
  });

  it('refuses malformed maps, naming the flag or field and the item', () => {
    expect(refusal('')).toBe('--label-map: is empty; e.g. 5:1,*:0 or liver=5');
    expect(refusal(' , ')).toMatch(/is empty/);
    expect(refusal('5:1,liver=6')).toBe(
      "--label-map: mixes value:class and class=value pairs in '5:1,liver=6'",
    );
    expect(refusal('5')).toBe("--label-map: '5' is not value:class");
    expect(refusal('5:')).toBe("--label-map: '5:' is not value:class");
    expect(refusal(':1')).toBe("--label-map: ':1' is not value:class");
    expect(refusal('liver=')).toBe("--label-map: 'liver=' is not class=value");
    expect(refusal('5:3')).toBe(
      "--label-map: class '3' is not a LiTS class (0, 1, 2, background, liver or tumour)",
    );
    expect(refusal('spleen=1')).toMatch(/class 'spleen' is not a LiTS class/);
    expect(refusal('x:1')).toBe("--label-map: 'x' is not a label value (a decimal number such as 5)");
    expect(refusal('5:1,5:2')).toBe('--label-map: maps value 5 twice (to 1 and 2)');
    expect(refusal('*:0,*:1')).toBe('--label-map: maps * twice (to 0 and 1)');
    expect(refusal('liver=x', 'spec /label-map')).toBe(
      "spec /label-map: 'x' is not a label value (a decimal number such as 5)",
    );
  });

  it('refuses what Number() would take but a user did not mean: hex, exponents, Infinity, class names of Object', () => {
    expect(refusal('0x5:1')).toMatch(/'0x5' is not a label value/);
    expect(refusal('1e1:1')).toMatch(/'1e1' is not a label value/);
    expect(refusal('Infinity:1')).toMatch(/'Infinity' is not a label value/);
    expect(refusal('constructor=5')).toMatch(/class 'constructor' is not a LiTS class/);
    expect(refusal('5:toString')).toMatch(/class 'toString' is not a LiTS class/);
    expect(refusal('*=5')).toMatch(/class '\*' is not a LiTS class/);
  });
});

describe('mapLabel', () => {
  it('without a map: 0, 1 and 2 keep their meaning, any other value (3, 0.5, NaN) is foreign', () => {
    expect([0, 1, 2].map((v) => mapLabel(null, v))).toEqual([0, 1, 2]);
    expect([3, 0.5, -1, NaN, 255].map((v) => mapLabel(null, v))).toEqual([null, null, null, null, null]);
  });

  it('with pairs and no *: named values are mapped, 0/1/2 keep their meaning, others stay foreign', () => {
    const map = parseLabelMap('5:1,1:0');
    expect([5, 1, 0, 2, 7].map((v) => mapLabel(map, v))).toEqual([1, 0, 0, 2, null]);
  });

  it('with *: every value has a class', () => {
    const map = parseLabelMap('liver=5,tumour=6');
    expect([5, 6, 0, 1, 2, 117, NaN].map((v) => mapLabel(map, v))).toEqual([1, 2, 0, 0, 0, 0, 0]);
  });
});

describe('applyLabelMap and countLabelClasses', () => {
  const stored = [0, 5, 5, 6, 0, 9, 9, 9, 1, 2];

  it('map every voxel and count foreign values, most frequent first, for each typed array', () => {
    const map = parseLabelMap('5:1,6:2');
    for (const values of [
      Uint8Array.from(stored),
      Int8Array.from(stored),
      Int16Array.from(stored),
      Uint16Array.from(stored),
      Int32Array.from(stored),
      Float32Array.from(stored),
      Float64Array.from(stored),
      stored,
    ]) {
      const mapped = applyLabelMap(values, map);
      expect([...mapped.labels]).toEqual([0, 1, 1, 2, 0, 0, 0, 0, 1, 2]);
      expect(mapped.foreign).toEqual([[9, 3]]);
      expect(countLabelClasses(values, map)).toEqual({ counts: [2, 3, 2], foreign: [[9, 3]] });
    }
  });

  it('apply NIfTI scaling before the map (stored 10 with slope 0.5 is value 5)', () => {
    const values = Int16Array.from([0, 10, 10, 12, -2]);
    const scale = { slope: 0.5, inter: 0 };
    const mapped = applyLabelMap(values, parseLabelMap('5:1,6:2'), scale);
    expect([...mapped.labels]).toEqual([0, 1, 1, 2, 0]);
    expect(mapped.foreign).toEqual([[-1, 1]]);
    expect(countLabelClasses(values, null, scale).foreign).toEqual([
      [5, 2],
      [-1, 1],
      [6, 1],
    ]);
  });

  it('count non-integer and NaN values of float masks as foreign', () => {
    const values = Float32Array.from([0, 0.5, 0.5, NaN, NaN, 1, 2, 2]);
    expect(countLabelClasses(values, null)).toEqual({
      counts: [1, 1, 2],
      foreign: [
        [0.5, 2],
        [NaN, 2],
      ],
    });
  });

  it('handle a whole 256-value uint8 mask and a long float run in one pass each', () => {
    const values = new Uint8Array(256 * 1000).map((_, i) => i % 256);
    const counted = countLabelClasses(values, null);
    expect(counted.counts).toEqual([1000, 1000, 1000]);
    expect(counted.foreign).toHaveLength(253);
    expect(counted.foreign[0]).toEqual([3, 1000]); // ties sorted by value
    // Aligned or not, any length: the word-skipping uint8 path and the plain one count alike.
    const sparse = new Uint8Array(4099).map((_, i) => (i % 97 === 0 ? (i % 3) + 1 : 0));
    const reference = countLabelClasses(Array.from(sparse), null);
    for (const view of [sparse, sparse.subarray(1), sparse.subarray(4), sparse.subarray(0, 4097)]) {
      const expected = view === sparse ? reference : countLabelClasses(Array.from(view), null);
      expect(countLabelClasses(view, null)).toEqual(expected);
      expect(countLabelClasses(Int8Array.from(view), null)).toEqual(expected);
    }
    const run = new Float64Array(100_000).fill(5);
    expect(countLabelClasses(run, parseLabelMap('liver=5')).counts).toEqual([0, 100_000, 0]);
  });
});

describe('describeForeignLabels', () => {
  it('names up to five values with their counts and how many more there are', () => {
    expect(describeForeignLabels([[5, 308996]])).toBe(
      'labels must be 0, 1 or 2, or be named by a label map (e.g. --label-map 5:1,*:0 or --labels liver=5); found 5 (308996 voxels)',
    );
    const many = describeForeignLabels([
      [3, 9],
      [7, 1],
      [0.5, 4],
      [8, 1],
      [9, 1],
      [10, 1],
      [11, 1],
    ]);
    expect(many).toMatch(
      /found 3 \(9 voxels\), 7 \(1 voxel\), 0\.5 \(4 voxels\), 8 \(1 voxel\), 9 \(1 voxel\) and 2 more values$/,
    );
  });
});
