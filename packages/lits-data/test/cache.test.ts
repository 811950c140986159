import { execFile } from 'node:child_process';
import { readdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  cubeCacheKey,
  ensureCube,
  generatePhantomDataset,
  loadCube,
  parseLabelMap,
  preprocessCase,
  preprocessDataset,
  resolvePreprocessConfig,
  verifyCubeFile,
  type CacheEntry,
  type CaseFiles,
  type PreprocessProgress,
} from '../src/index.js';
import { tempDir } from './test-environment.js';

const run = promisify(execFile);
const tmp = tempDir('cache');
afterAll(tmp.cleanup);

const CONFIG = { preset: 'seed', targetSlices: 64, cubeSize: 32 } as const;

/** The cube file with its JSON header edited (and re-padded), image and label bytes unchanged. */
function withHeader(bytes: Buffer, edit: (header: Record<string, unknown>) => void): Buffer {
  const padding = (jsonLength: number): number => (8 - ((12 + jsonLength) % 8)) % 8;
  const length = bytes.readUInt32LE(8);
  const header = JSON.parse(bytes.toString('utf8', 12, 12 + length)) as Record<string, unknown>;
  edit(header);
  const json = Buffer.from(JSON.stringify(header));
  const start = Buffer.alloc(12);
  start.write('LITSCUBE', 0, 'latin1');
  start.writeUInt32LE(json.length, 8);
  const data = bytes.subarray(12 + length + padding(length));
  return Buffer.concat([start, json, Buffer.alloc(padding(json.length)), data]);
}
let cases: CaseFiles[] = [];

beforeAll(async () => {
  cases = await generatePhantomDataset({ outDir: join(tmp.dir, 'data'), cases: 3, seed: 4 });
});

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name));
}

describe('cube cache', () => {
  it('stores a cube once and loads it back identical, with its geometry', async () => {
    const cacheDir = join(tmp.dir, 'one');
    const first = await ensureCube(cases[0]!, { cacheDir, config: CONFIG });
    expect(first.cached).toBe(false);
    const second = await ensureCube(cases[0]!, { cacheDir, config: CONFIG });
    expect(second).toEqual({ ...first, cached: true });
    const cube = loadCube(first.file);
    const fresh = await preprocessCase(cases[0]!, CONFIG);
    expect(cube.caseId).toBe(0);
    expect(cube.shape).toEqual([32, 32, 32]);
    expect(
      Buffer.compare(
        Buffer.from(cube.image.buffer, cube.image.byteOffset, cube.image.byteLength),
        Buffer.from(fresh.image.buffer),
      ),
    ).toBe(0);
    expect(Buffer.compare(Buffer.from(cube.label), Buffer.from(fresh.label))).toBe(0);
    expect(cube.geometry).toEqual(JSON.parse(JSON.stringify(fresh.geometry)));
    expect(cube.config).toEqual(resolvePreprocessConfig(CONFIG));
    verifyCubeFile(first.file);
  });

  it('keys on the source identity and the config', async () => {
    const config = resolvePreprocessConfig(CONFIG);
    const key = await cubeCacheKey(cases[1]!, config);
    expect(await cubeCacheKey(cases[1]!, config)).toBe(key);
    expect(await cubeCacheKey(cases[1]!, resolvePreprocessConfig({ ...CONFIG, cubeSize: 16 }))).not.toBe(key);
    expect(await cubeCacheKey(cases[1]!, resolvePreprocessConfig({ preset: 'improved' }))).not.toBe(key);
    expect(await cubeCacheKey(cases[2]!, config)).not.toBe(key);
    const contentKey = await cubeCacheKey(cases[1]!, config, 'content');
    const { mtime } = statSync(cases[1]!.image);
    utimesSync(cases[1]!.image, mtime, new Date(mtime.getTime() + 10_000));
    expect(await cubeCacheKey(cases[1]!, config)).not.toBe(key); // touched: stat identity changes
    expect(await cubeCacheKey(cases[1]!, config, 'content')).toBe(contentKey); // same bytes
  });

  it('keys on the label map and the validation rules: a cube made without a map is not reused with one', async () => {
    const config = resolvePreprocessConfig(CONFIG);
    const tumourAsLiver = parseLabelMap('2:1');
    const plain = await cubeCacheKey(cases[0]!, config);
    expect(await cubeCacheKey(cases[0]!, config, 'stat', { labelMap: null })).toBe(plain);
    expect(await cubeCacheKey(cases[0]!, config, 'stat', { labelMap: tumourAsLiver })).not.toBe(plain);
    expect(
      await cubeCacheKey(cases[0]!, config, 'stat', { labelMap: parseLabelMap('tumour=2,liver=1') }),
    ).toBe(await cubeCacheKey(cases[0]!, config, 'stat', { labelMap: parseLabelMap('1:1,2:2,*:0') }));
    expect(await cubeCacheKey(cases[0]!, config, 'stat', { geometryTolerance: 0.5 })).not.toBe(plain);

    const cacheDir = join(tmp.dir, 'label-maps');
    const unmapped = await preprocessDataset(cases.slice(0, 1), { cacheDir, config: CONFIG });
    expect(loadCube(unmapped.entries[0]!.file).label.includes(2)).toBe(true);
    const mapped = await preprocessDataset(cases.slice(0, 1), {
      cacheDir,
      config: CONFIG,
      labelMap: tumourAsLiver,
    });
    expect(mapped.entries[0]!.cached).toBe(false);
    expect(mapped.entries[0]!.file).not.toBe(unmapped.entries[0]!.file);
    expect(mapped.labelMap).toBe('2:1');
    expect(loadCube(mapped.entries[0]!.file).label.includes(2)).toBe(false);
    const again = await preprocessDataset(cases.slice(0, 1), { cacheDir, config: CONFIG });
    expect(again.entries[0]).toEqual({ ...unmapped.entries[0], cached: true });
  });

  it('is safe when several processes preprocess the same case at once', { timeout: 120_000 }, async () => {
    const cacheDir = join(tmp.dir, 'race');
    const fixture = join(import.meta.dirname, 'fixtures', 'ensure-cube.mjs');
    const startAt = String(Date.now() + 3000);
    const outputs = await Promise.all(
      Array.from({ length: 4 }, () =>
        run(process.execPath, [fixture, cacheDir, cases[2]!.image, cases[2]!.label, startAt]),
      ),
    );
    const entries = outputs.map((o) => JSON.parse(o.stdout.trim()) as CacheEntry);
    const writers = entries.filter((e) => !e.cached).length;
    process.stderr.write(`cache race: ${writers} of 4 processes wrote the cube\n`);
    expect(new Set(entries.map((e) => e.file)).size).toBe(1);
    const files = filesUnder(cacheDir);
    expect(files).toEqual([entries[0]!.file]);
    verifyCubeFile(entries[0]!.file);
    const fresh = await preprocessCase(cases[2]!, CONFIG);
    expect(Buffer.compare(Buffer.from(loadCube(entries[0]!.file).label), Buffer.from(fresh.label))).toBe(0);
  });

  it('preprocesses a whole data set with progress, then finds everything cached', async () => {
    const cacheDir = join(tmp.dir, 'all');
    const seen: PreprocessProgress[] = [];
    const manifest = await preprocessDataset(cases, {
      cacheDir,
      config: CONFIG,
      onProgress: (p) => seen.push(p),
    });
    expect(manifest.entries.map((e) => e.caseId)).toEqual([0, 1, 2]);
    expect(seen.map((p) => [p.done, p.total, p.cached])).toEqual([
      [1, 3, false],
      [2, 3, false],
      [3, 3, false],
    ]);
    const again = await preprocessDataset(cases, { cacheDir, config: CONFIG });
    expect(again.entries.every((e) => e.cached)).toBe(true);
    expect(again.configHash).toBe(manifest.configHash);
  });

  it('detects a truncated or corrupted cube file', async () => {
    const cacheDir = join(tmp.dir, 'corrupt');
    const entry = await ensureCube(cases[0]!, { cacheDir, config: CONFIG });
    const bytes = readFileSync(entry.file);
    const flipped = Buffer.from(bytes);
    flipped[flipped.length - 40_000]! ^= 0xff;
    writeFileSync(entry.file, flipped);
    expect(() => verifyCubeFile(entry.file)).toThrow(/image bytes fail their CRC-32/);
    writeFileSync(entry.file, bytes.subarray(0, bytes.length - 10));
    expect(() => loadCube(entry.file)).toThrow(/\.cube: cube file is \d+ bytes; its header says \d+/);
    writeFileSync(entry.file, 'hello');
    expect(() => loadCube(entry.file)).toThrow(/not a lits-data cube file/);
    expect(() => loadCube(join(cacheDir, 'missing.cube'))).toThrow(/missing\.cube: cube not in the cache/);
  });

  it('checks the cube header against its schema, naming the first bad field', async () => {
    const cacheDir = join(tmp.dir, 'bad-header');
    const entry = await ensureCube(cases[1]!, { cacheDir, config: CONFIG });
    const bytes = readFileSync(entry.file);
    writeFileSync(
      entry.file,
      withHeader(bytes, () => undefined),
    );
    expect(loadCube(entry.file).caseId).toBe(1);
    writeFileSync(
      entry.file,
      withHeader(bytes, (h) => delete (h.geometry as Record<string, unknown>).outputAffine),
    );
    expect(() => loadCube(entry.file)).toThrow(
      /\.cube: corrupt cube header \(field \/geometry .*outputAffine/,
    );
    writeFileSync(
      entry.file,
      withHeader(bytes, (h) => (h.shape = [32, '32', 32])),
    );
    expect(() => loadCube(entry.file)).toThrow(/corrupt cube header \(field \/shape\/1 /);
    writeFileSync(
      entry.file,
      withHeader(bytes, (h) => (h.format = 2)),
    );
    expect(() => loadCube(entry.file)).toThrow(/cube format 2; this version reads 1/);
    expect(() => loadCube(entry.file)).toThrow(expect.objectContaining({ code: 'DATA_FILE_INVALID' }));
  });
});
