import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { discoverDataset, LITS_TEST_IDS } from '@lits-ddp/lits-data';
import { DEMO_PHANTOMS } from '../src/commands/demo.js';
import { ensurePhantomSet, phantomSetIds, type PhantomSet } from '../src/commands/phantom-set.js';

const work = await mkdtemp(join(tmpdir(), 'lits-phantom-set-'));
afterAll(() => rm(work, { recursive: true, force: true }));

const caseFiles = async (dir: string) => (await readdir(dir)).filter((n) => n.endsWith('.nii.gz')).sort();

describe('phantom sets numbered like LiTS', () => {
  it("hold the seed's LiTS test ids as test cases and the lowest other ids as training cases", () => {
    const { train, test } = phantomSetIds(DEMO_PHANTOMS);
    expect(test).toEqual([17, 27, 38, 45, 51, 61, 62, 64]);
    expect(train).toEqual([...Array.from({ length: 17 }, (_, i) => i), 18, 19, 20, 21, 22, 23, 24]);
    expect(train.filter((id) => LITS_TEST_IDS.includes(id))).toEqual([]);
    expect(() => phantomSetIds({ ...DEMO_PHANTOMS, test: 14 })).toThrow(/at most 13 test cases/);
  });

  it('are generated once, kept while the manifest matches, and regenerated (only their own files) when not', async () => {
    const dir = join(work, 'set');
    const small: PhantomSet = { seed: 3, size: [16, 16, 8], train: 3, test: 2 };
    const lines: string[] = [];
    await ensurePhantomSet(dir, small, (l) => lines.push(l));
    expect(lines).toEqual([`generating 5 phantom CT cases of 16×16×8 in ${dir}`]);
    const { cases, problems } = await discoverDataset(dir);
    expect(problems).toEqual([]);
    expect(cases.map((c) => c.id).sort((a, b) => a - b)).toEqual([0, 1, 2, 17, 27]);

    // Same set: nothing is written again.
    const before = (await stat(join(dir, 'volume-0.nii.gz'))).mtimeMs;
    await ensurePhantomSet(dir, small, (l) => lines.push(l));
    expect(lines).toHaveLength(1);
    expect((await stat(join(dir, 'volume-0.nii.gz'))).mtimeMs).toBe(before);

    // Another set (or an older generator): the old cases go, a user's own file stays.
    await writeFile(join(dir, 'notes.txt'), 'mine');
    await ensurePhantomSet(dir, { ...small, train: 1, test: 1 }, (l) => lines.push(l));
    expect(lines).toHaveLength(2);
    expect(await caseFiles(dir)).toEqual([
      'segmentation-0.nii.gz',
      'segmentation-17.nii.gz',
      'volume-0.nii.gz',
      'volume-17.nii.gz',
    ]);
    expect((await readdir(dir)).includes('notes.txt')).toBe(true);
  });
});
