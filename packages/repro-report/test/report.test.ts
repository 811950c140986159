import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildBoxplot,
  MODE_COLOURS,
  panelY,
  readReproReport,
  readRunRecords,
  renderPng,
  RunRecordError,
  writeReproReport,
  type ReproMode,
} from '../src/index.js';
import { studyRecords } from './records.js';

const ZOOM = 2;

function rgbAt(png: PNG, x: number, y: number): [number, number, number] {
  const i = (Math.round(y * ZOOM) * png.width + Math.round(x * ZOOM)) * 4;
  return [png.data[i] as number, png.data[i + 1] as number, png.data[i + 2] as number];
}

const hexRgb = (hex: string): [number, number, number] =>
  [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16)) as [number, number, number];
const near = (a: number[], b: number[], tol = 40): boolean =>
  a.every((v, i) => Math.abs(v - (b[i] as number)) <= tol);

describe('IoU boxplot', () => {
  it('one panel per class, one box per mode; the PNG shows each median line in its mode colour', () => {
    const figure = buildBoxplot(studyRecords(), {
      title: 'IoU <test> & co',
      subtitle: 'three runs per mode',
    });
    expect(figure.panels.map((p) => p.className)).toEqual(['background', 'liver', 'tumour']);
    expect(figure.svg).toContain('IoU &lt;test&gt; &amp; co');
    const png = PNG.sync.read(renderPng(figure.svg, ZOOM));
    expect([png.width, png.height]).toEqual([figure.width * ZOOM, figure.height * ZOOM]);
    for (const panel of figure.panels) {
      expect(panel.boxes.map((b) => b.mode)).toEqual(['random', 'seed', 'deterministic']);
      for (const box of panel.boxes) {
        expect(box.values).toHaveLength(3); // repeated runs only
        // Just inside the box edge, away from the dots in its middle.
        const y = panelY(panel, box.box!.median);
        const x = box.x - box.halfWidth + 3;
        expect(
          near(rgbAt(png, x, y), hexRgb(MODE_COLOURS[box.mode as ReproMode])),
          `${panel.className} ${box.mode}`,
        ).toBe(true);
      }
      // The random tumour box spans 0.4 ± 0.05 around its median: tinted fill between q1 and q3.
    }
    const tumour = figure.panels[2]!;
    const random = tumour.boxes[0]!;
    const fill = rgbAt(
      png,
      random.x - random.halfWidth + 3,
      panelY(tumour, (random.box!.q1 + random.box!.median) / 2),
    );
    expect(near(fill, [187, 214, 233], 30)).toBe(true); // 30 % blue over white
    // Text is drawn with the bundled font: dark pixels in the title row.
    let dark = 0;
    for (let x = 0; x < png.width; x++) if (rgbAt(png, x / ZOOM, 20)[0] < 100) dark++;
    expect(dark).toBeGreaterThan(50);
  });

  it('renders the same bytes every time (fonts come from the package, not the system)', () => {
    const { svg } = buildBoxplot(studyRecords());
    expect(renderPng(svg).equals(renderPng(svg))).toBe(true);
  });
});

describe('report folder', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'repro-report-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes runs.csv, runs.json, summary.md and the boxplot; runs.json reads back as the same records', async () => {
    const runs = studyRecords();
    const report = await writeReproReport(join(dir, 'r'), runs, {
      configuration: { epochs: 40, engine: 'cpu' },
      createdAt: '2025-01-01T00:00:00.000Z',
    });
    expect((await readFile(report.files.csv, 'utf8')).split('\n')).toHaveLength(runs.length + 2);
    const md = await readFile(report.files.markdown, 'utf8');
    expect(md).toContain('- epochs: 40');
    expect(md).toContain('![test IoU per class and mode](iou-boxplot.png)');
    expect(md).toContain(report.table.trimEnd());
    expect(PNG.sync.read(await readFile(report.files.png)).width).toBeGreaterThan(1000);
    expect(await readFile(report.files.svg, 'utf8')).toMatch(/^<svg /);
    expect(await readRunRecords(report.files.json)).toEqual(runs);
    const json = JSON.parse(await readFile(report.files.json, 'utf8')) as {
      summary: unknown;
      createdAt: string;
    };
    expect(json.createdAt).toBe('2025-01-01T00:00:00.000Z');
    expect(json.summary).toEqual(report.summary);
    // What `lits repro --from` re-renders with: the records, the configuration and the figure's titles.
    const titled = await writeReproReport(join(dir, 't'), runs, {
      configuration: { epochs: 40 },
      title: 'T',
      subtitle: 'S',
    });
    expect(await readReproReport(titled.files.json)).toEqual({
      runs,
      configuration: { epochs: 40 },
      figure: { title: 'T', subtitle: 'S' },
    });
  });

  it('a bad record is refused naming the file, the run and the field', async () => {
    const file = join(dir, 'bad.json');
    const runs = studyRecords() as unknown as Array<Record<string, unknown>>;
    runs[4] = { ...runs[4], iou: [0.9, 1.5, 0.2] };
    await writeFile(file, JSON.stringify({ runs }));
    await expect(readRunRecords(file)).rejects.toThrow(
      `${file}: runs[4].iou: must be a non-empty array of null or numbers in [0, 1]`,
    );
    runs[4] = { ...runs[4], iou: [0.9, 0.2], mode: 'lucky' };
    await writeFile(file, JSON.stringify(runs));
    await expect(readRunRecords(file)).rejects.toThrow(
      /runs\[4\]\.mode: must be one of "random", "seed", "deterministic" \(got "lucky"\)/,
    );
    runs[4] = { ...runs[4], mode: 'seed' };
    await writeFile(file, JSON.stringify(runs));
    await expect(readRunRecords(file)).rejects.toThrow(/runs\[4\]\.iou: has 2 classes, runs\[0\] has 3/);
    runs[4] = { ...runs[4], iou: [0.9, 0.2, 0.1], resumedFrom: { epoch: -1 } };
    await writeFile(file, JSON.stringify(runs));
    await expect(readRunRecords(file)).rejects.toThrow(
      /runs\[4\]\.resumedFrom: must be null or \{ epoch \} with an integer ≥ 0/,
    );
    runs[4] = { ...runs[4], resumedFrom: null, worldSizes: [2, 0] };
    await writeFile(file, JSON.stringify(runs));
    await expect(readRunRecords(file)).rejects.toThrow(
      /runs\[4\]\.worldSizes: must be an array of integers ≥ 1/,
    );
    runs[4] = { ...runs[4], worldSizes: [2, 1], recoveryS: -1 };
    await writeFile(file, JSON.stringify(runs));
    await expect(readRunRecords(file)).rejects.toThrow(/runs\[4\]\.recoveryS: must be null or a number ≥ 0/);
    await writeFile(file, '{"runs": 3}');
    await expect(readRunRecords(file)).rejects.toThrow(/expected an array of runs/);
    await writeFile(file, '{not json');
    await expect(readRunRecords(file)).rejects.toThrow(new RegExp(`^${file.replace(/[.\\/]/g, '\\$&')}: `));
    await expect(readRunRecords(file)).rejects.toMatchObject({ code: 'JSON_INVALID' });
    await writeFile(file, JSON.stringify({ runs: studyRecords(), configuration: { epochs: [40] } }));
    await expect(readReproReport(file)).rejects.toThrow(`${file}: field /configuration/epochs`);
    await expect(readRunRecords(join(dir, 'missing.json'))).rejects.toBeInstanceOf(RunRecordError);
    await expect(readRunRecords(join(dir, 'missing.json'))).rejects.toMatchObject({
      code: 'RUN_RECORD_INVALID',
    });
  });
});
