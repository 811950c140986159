/**
 * `npm run bench`: the seed preset on a generated 512×512×200 int16 .nii.gz against gunzip + parse of the same file,
 * and cube-cache load time. Progress on stderr; the last stdout line is one JSON object.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { readNifti } from '../nifti/read.js';
import { preprocessCase } from '../preprocess/case.js';
import { resolvePreprocessConfig } from '../preprocess/config.js';
import { writeCubeFile, loadCube } from '../cache/cube-file.js';

const SIZE = process.env.LITS_BENCH_SIZE ?? '512x512x200';
const REPEATS = Number(process.env.LITS_BENCH_REPEATS ?? 5);

function log(text: string): void {
  process.stderr.write(`bench: ${text}\n`);
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

async function timed<T>(fn: () => Promise<T> | T): Promise<[number, T]> {
  const start = performance.now();
  const value = await fn();
  return [performance.now() - start, value];
}

const round = (v: number, digits = 1): number => Number(v.toFixed(digits));

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'lits-data-bench-'));
  try {
    const cli = join(dirname(fileURLToPath(import.meta.url)), '..', 'cli.js');
    log(`generating a ${SIZE} phantom case in a child process (keeps its memory out of peakRssMb)`);
    execFileSync(
      process.execPath,
      [cli, 'synth', '--out', dir, '--cases', '1', '--size', SIZE, '--seed', '1'],
      {
        stdio: ['ignore', 'ignore', 'inherit'],
      },
    );
    const c = { id: 0, image: join(dir, 'volume-0.nii.gz'), label: join(dir, 'segmentation-0.nii.gz') };
    const config = resolvePreprocessConfig({ preset: 'seed' });
    log('warm-up');
    await readNifti(c.image, { native: true });
    await preprocessCase(c, config);
    const parseVolume: number[] = [];
    const parseBoth: number[] = [];
    const preprocess: number[] = [];
    let cube = await preprocessCase(c, config);
    for (let r = 0; r < REPEATS; r++) {
      const [tv] = await timed(() => readNifti(c.image, { native: true }));
      const [tl] = await timed(() => readNifti(c.label, { native: true }));
      const [tp, result] = await timed(() => preprocessCase(c, config));
      cube = result;
      parseVolume.push(tv);
      parseBoth.push(tv + tl);
      preprocess.push(tp);
      log(
        `repeat ${r + 1}/${REPEATS}: parse volume ${tv.toFixed(0)} ms, + mask ${tl.toFixed(0)} ms, seed preset ${tp.toFixed(0)} ms`,
      );
    }
    const peakRssMb = process.resourceUsage().maxRSS / 1024;
    const cubeFile = join(dir, 'cube.cube');
    await writeCubeFile(cubeFile, cube, config);
    const loads: number[] = [];
    for (let r = 0; r < 21; r++) loads.push((await timed(() => loadCube(cubeFile)))[0]);
    log(`cube load: median ${median(loads).toFixed(2)} ms over ${loads.length}`);
    const result = {
      preprocessOverParse: round(median(preprocess) / median(parseVolume), 3),
      preprocessOverParseOfBothFiles: round(median(preprocess) / median(parseBoth), 3),
      cachedCubeLoadMs: round(median(loads), 2),
      peakRssMb: round(peakRssMb),
      seedPresetMs: round(median(preprocess)),
      parseVolumeMs: round(median(parseVolume)),
      parseVolumeAndMaskMs: round(median(parseBoth)),
      volumeShape: SIZE,
      cubeShape: cube.shape,
      repeats: REPEATS,
      node: process.version,
    };
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
