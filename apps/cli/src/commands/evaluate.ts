import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { errorMessage } from '@lits-ddp/errors';
import { parseLabelMap, type LabelMap } from '@lits-ddp/lits-data';
import {
  evaluatePaths,
  formatReportTable,
  reportToCsv,
  reportToJson,
  EMPTY_RULES,
  type EmptyRule,
} from '@lits-ddp/lits-metrics';

const USAGE = `lits evaluate --pred PATH --truth PATH [options]

Scores predicted masks the LiTS way: Dice per case and global (pooled) with liver = label ≥ 1 and
tumour = label 2, IoU, VOE and RVD per region, optionally ASSD and MSSD in mm (header spacing).
Masks must hold 0, 1 and 2 only unless a label map names their values; any other value is an error.

  --pred PATH               a mask, or a folder of masks (segmentation-N.nii[.gz], matched by case number)
  --truth PATH              a mask, or a folder: LiTS (segmentation-N beside volume-N), MSD (labelsTr/), masks
  --surface                 also the average and maximum symmetric surface distance (mm); a case with an
                            empty mask shows "n/a (empty prediction)" (JSON: null and surfaceNullReason)
  --empty-rule lits|skip|one  score of an empty mask (default lits: Dice 0 when both are empty, and surface
                            means count empty cases as 0 mm, as the official LiTS code; skip: left out of the
                            means, as nnU-Net; one: Dice 1)
  --labels CLASS=VALUE,…    what the ground truth's values mean, e.g. liver=5 or liver=5,tumour=6 (every
                            other value is background): TotalSegmentator and other multi-organ masks
  --label-map VALUE:CLASS,… the same as value:class pairs, * for every other value: 5:1,6:2,*:0
  --pred-label-map MAP      a map for the predictions (either form); without it they must hold 0, 1, 2
  --geometry-tolerance MM   largest allowed affine difference between prediction and truth (default 0.001)
  --csv FILE                write one row per case plus the mean and global rows
  --json-file FILE          write the JSON report
  --json                    the last stdout line is one JSON object { cases, overall }
  --quiet                   no progress on stderr`;

export async function runEvaluate(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: {
        pred: { type: 'string' },
        truth: { type: 'string' },
        surface: { type: 'boolean', default: false },
        'empty-rule': { type: 'string', default: 'lits' },
        labels: { type: 'string' },
        'label-map': { type: 'string' },
        'pred-label-map': { type: 'string' },
        'geometry-tolerance': { type: 'string' },
        csv: { type: 'string' },
        'json-file': { type: 'string' },
        json: { type: 'boolean', default: false },
        quiet: { type: 'boolean', default: false },
        verbose: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (error) {
    process.stderr.write(`lits evaluate: ${errorMessage(error)}\n\n${USAGE}\n`);
    return 2;
  }
  const { values } = parsed;
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const rule = values['empty-rule'] as EmptyRule;
  const tolerance =
    values['geometry-tolerance'] === undefined ? undefined : Number(values['geometry-tolerance']);
  const usage = !values.pred
    ? '--pred PATH is required'
    : !values.truth
      ? '--truth PATH is required'
      : !EMPTY_RULES.includes(rule)
        ? `--empty-rule must be one of ${EMPTY_RULES.join(', ')}, got "${rule}"`
        : tolerance !== undefined && !(tolerance >= 0)
          ? `--geometry-tolerance must be a number ≥ 0, got "${values['geometry-tolerance']}"`
          : null;
  let labelMap: LabelMap | null = null;
  let predLabelMap: LabelMap | null = null;
  let mapProblem: string | null = null;
  if (values.labels !== undefined && values['label-map'] !== undefined)
    mapProblem = 'give --labels or --label-map, not both (they set the same map)';
  else
    try {
      if (values.labels !== undefined) labelMap = parseLabelMap(values.labels, '--labels');
      if (values['label-map'] !== undefined) labelMap = parseLabelMap(values['label-map'], '--label-map');
      if (values['pred-label-map'] !== undefined)
        predLabelMap = parseLabelMap(values['pred-label-map'], '--pred-label-map');
    } catch (error) {
      mapProblem = errorMessage(error);
    }
  if (usage ?? mapProblem) {
    process.stderr.write(`lits evaluate: ${usage ?? mapProblem}\n\n${USAGE}\n`);
    return 2;
  }
  if (!values.quiet) {
    if (labelMap) process.stderr.write(`ground-truth label map: ${labelMap.text}\n`);
    if (predLabelMap) process.stderr.write(`prediction label map: ${predLabelMap.text}\n`);
  }
  try {
    const report = await evaluatePaths({
      pred: values.pred!,
      truth: values.truth!,
      emptyRule: rule,
      surface: values.surface,
      labelMap,
      predLabelMap,
      ...(tolerance === undefined ? {} : { geometryTolerance: tolerance }),
      onCase: (done, total, c) => {
        if (!values.quiet)
          process.stderr.write(
            `[${done}/${total}] case ${c.case}: liver Dice ${c.diceLiver?.toFixed(4) ?? '—'}, tumour Dice ${c.diceTumour?.toFixed(4) ?? '—'}\n`,
          );
      },
    });
    for (const file of report.unmatchedPredictions)
      process.stderr.write(`lits evaluate: ${file} has no ground truth; not evaluated\n`);
    const json = reportToJson(report);
    if (values.csv) await writeFile(values.csv, reportToCsv(report));
    if (values['json-file']) await writeFile(values['json-file'], `${JSON.stringify(json, null, 2)}\n`);
    if (values.json) process.stdout.write(`${JSON.stringify(json)}\n`);
    else process.stdout.write(formatReportTable(report));
    return 0;
  } catch (error) {
    process.stderr.write(
      `lits evaluate: ${values.verbose && error instanceof Error ? error.stack : errorMessage(error)}\n`,
    );
    return 1;
  }
}
