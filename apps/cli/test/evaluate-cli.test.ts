// `lits evaluate` on phantom masks, through the built `lits` binary: an empty prediction's surface distances, and
// ground truth whose liver is not label 1 (TotalSegmentator-style multi-organ masks). No model, no services.
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generatePhantomVolumes, writeNifti, type NiftiTransform } from '@lits-ddp/lits-data';

const LITS = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'main.js');
const SIZE: [number, number, number] = [32, 32, 16];

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

function lits(args: string[]): Promise<Ran> {
  return new Promise((resolve) => {
    execFile(process.execPath, [LITS, ...args], (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

const lastJson = (out: string): Record<string, unknown> =>
  JSON.parse(out.trim().split('\n').at(-1) ?? '{}') as Record<string, unknown>;

interface JsonCase {
  case: string;
  truth: string;
  diceLiver: number | null;
  diceTumour: number | null;
  assd: { liver: number | null; tumour: number | null };
  mssd: { liver: number | null; tumour: number | null };
  surfaceNullReason: { liver: string | null; tumour: string | null };
}

let dir: string;
let transform: NiftiTransform;
/** Cases 0 and 1: LiTS 0/1/2 truth; their predictions: the truth shifted by one voxel along x. */
const labels: Uint8Array[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lits-evaluate-cli-'));
  for (const sub of ['truth', 'pred', 'empty', 'organs', 'organs-tumour']) await mkdir(join(dir, sub));
  for (const id of [0, 1]) {
    const phantom = generatePhantomVolumes(5, id, { size: SIZE });
    transform = phantom.transform;
    labels.push(phantom.label);
    const write = (file: string, data: Uint8Array | Int16Array) =>
      writeNifti(join(dir, file), { shape: SIZE, data, transform });
    await write(`truth/segmentation-${id}.nii.gz`, phantom.label);
    await write(
      `pred/segmentation-${id}.nii.gz`,
      Uint8Array.from(phantom.label, (_, i) => phantom.label[i - 1] ?? 0),
    );
    // Case 0's prediction is empty: the model found nothing.
    await write(
      `empty/segmentation-${id}.nii.gz`,
      id === 0 ? new Uint8Array(phantom.label.length) : phantom.label,
    );
    // TotalSegmentator-like truth: liver 5 (its tumours included, there is no tumour class), organs 3 and 7 on
    // background voxels; and the same with the tumours as 6.
    const organ = (i: number) => (i % 5 === 0 ? 3 : i % 7 === 0 ? 7 : 0);
    await write(
      `organs/segmentation-${id}.nii.gz`,
      Int16Array.from(phantom.label, (v, i) => (v >= 1 ? 5 : organ(i))),
    );
    await write(
      `organs-tumour/segmentation-${id}.nii.gz`,
      Int16Array.from(phantom.label, (v, i) => (v === 1 ? 5 : v === 2 ? 6 : organ(i))),
    );
  }
});

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('lits evaluate', () => {
  it('shows an empty prediction’s surface distances as n/a in the table, null with the reason in JSON and CSV, under every --empty-rule', async () => {
    for (const rule of ['lits', 'skip', 'one']) {
      const args = ['evaluate', '--pred', join(dir, 'empty'), '--truth', join(dir, 'truth'), '--surface'];
      const csv = join(dir, `scores-${rule}.csv`);
      const table = await lits([...args, '--empty-rule', rule, '--quiet']);
      expect(table.code, table.stderr).toBe(0);
      const row0 = table.stdout.split('\n').find((l) => l.startsWith('0 '))!;
      expect(row0).toMatch(/n\/a \(empty prediction\)\s+n\/a \(empty prediction\)$/);
      expect(table.stdout.split('\n').find((l) => l.startsWith('1 '))).toMatch(/0\.00\s+0\.00$/);
      const json = await lits([...args, '--empty-rule', rule, '--quiet', '--json', '--csv', csv]);
      expect(json.code, json.stderr).toBe(0);
      const report = lastJson(json.stdout) as { cases: JsonCase[]; overall: { assd: { liver: number } } };
      expect(report.cases[0]).toMatchObject({
        diceLiver: 0,
        assd: { liver: null, tumour: null },
        mssd: { liver: null, tumour: null },
        surfaceNullReason: { liver: 'empty prediction' },
      });
      const [head, first] = (await readFile(csv, 'utf8')).split('\n') as [string, string];
      const columns = head.split(',');
      const cell = (name: string) => first.split(',')[columns.indexOf(name)];
      expect([cell('case'), cell('assd_liver_mm'), cell('mssd_liver_mm')]).toEqual(['0', '', '']);
      expect(cell('surface_liver_na_reason')).toBe('empty prediction');
      // The rule still applies to the means, as documented, and the table says how.
      expect(table.stdout).toContain(
        rule === 'lits'
          ? 'the means count them as 0 mm, as the LiTS evaluation does'
          : rule === 'skip'
            ? 'the means leave them out'
            : 'the means count those with both masks empty as 0 mm and leave the others out',
      );
    }
  });

  it('--labels liver=5 on a multi-organ truth (liver 5, organs 3 and 7) scores the same liver Dice as the 0/1/2 truth', async () => {
    const score = async (truth: string, extra: string[] = []) => {
      const ran = await lits(['evaluate', '--pred', join(dir, 'pred'), '--truth', truth, '--json', ...extra]);
      expect(ran.code, ran.stderr).toBe(0);
      return { report: lastJson(ran.stdout) as { cases: JsonCase[] }, stderr: ran.stderr };
    };
    const plain = await score(join(dir, 'truth'));
    const liver = await score(join(dir, 'organs'), ['--labels', 'liver=5']);
    expect(liver.stderr).toContain('ground-truth label map: 5:1,*:0');
    expect(liver.report.cases.map((c) => c.diceLiver)).toEqual(plain.report.cases.map((c) => c.diceLiver));
    expect(plain.report.cases.every((c) => c.diceLiver! > 0.8)).toBe(true);
    // With the tumours mapped too, every score equals the 0/1/2 truth's.
    const both = await score(join(dir, 'organs-tumour'), ['--label-map', '5:1,6:2,*:0']);
    expect(both.report.cases.map(({ truth: _, ...c }) => c)).toEqual(
      plain.report.cases.map(({ truth: _, ...c }) => c),
    );
    expect(labels.some((l) => l.includes(2))).toBe(true);
    // Without a map the foreign values are an error naming them; a bad map is a usage error.
    const none = await lits(['evaluate', '--pred', join(dir, 'pred'), '--truth', join(dir, 'organs')]);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(
      /organs\/segmentation-0\.nii\.gz \(ground truth\): labels must be 0, 1 or 2, or be named by a label map .*; found (\d+ \(\d+ voxels\), ){2}\d+ \(\d+ voxels\); first at voxel/,
    );
    for (const value of ['3', '5', '7']) expect(none.stderr).toContain(` ${value} (`);
    const bad = await lits(['evaluate', '--pred', dir, '--truth', dir, '--labels', 'liver=five']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("lits evaluate: --labels: 'five' is not a label value");
    const twice = await lits([
      'evaluate',
      '--pred',
      dir,
      '--truth',
      dir,
      '--labels',
      'liver=5',
      '--label-map',
      '5:1',
    ]);
    expect(twice.code).toBe(2);
    expect(twice.stderr).toContain('give --labels or --label-map, not both');
  });
});
