import { readFile } from 'node:fs/promises';
import Type from 'typebox';
import { errorMessage } from '@lits-ddp/errors';
import { checkJson, decodeJson } from '@lits-ddp/protocol';
import { RunRecordError } from './errors.js';
import { parseRunRecord, type ReproRunRecord } from './run-record.js';

// Any JSON value: the file's shape and each record are checked by hand, with messages that say what a field must
// hold (`must be one of "random", "seed", "deterministic"`), where a schema's union would only say "anyOf".
const AnyJson = Type.Unknown();

/** What runs.json stores besides the records (`writeReproReport`); both are optional, a bare array has neither. */
const ReportExtras = Type.Object({
  configuration: Type.Optional(
    Type.Record(Type.String(), Type.Union([Type.String(), Type.Number(), Type.Boolean()])),
  ),
  figure: Type.Optional(
    Type.Object({ title: Type.Optional(Type.String()), subtitle: Type.Optional(Type.String()) }),
  ),
});

/** A report's runs.json as read back: the records, the configuration and the figure's titles it was written with. */
export interface ReproReportFile {
  runs: ReproRunRecord[];
  configuration: Record<string, string | number | boolean>;
  figure: { title?: string; subtitle?: string };
}

/** The parsed file and its validated records. */
async function readRecords(file: string): Promise<{ parsed: unknown; records: ReproRunRecord[] }> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new RunRecordError(`${file}: ${errorMessage(err)}`, { cause: err });
  }
  const parsed = decodeJson(AnyJson, text, file);
  const runs = Array.isArray(parsed) ? parsed : (parsed as { runs?: unknown } | null)?.runs;
  if (!Array.isArray(runs))
    throw new RunRecordError(`${file}: expected an array of runs or { "runs": [...] }`);
  const records = runs.map((r, i) => parseRunRecord(r, `${file}: runs[${i}]`));
  const classes = records[0]?.iou.length;
  records.forEach((r, i) => {
    if (r.iou.length !== classes)
      throw new RunRecordError(
        `${file}: runs[${i}].iou: has ${r.iou.length} classes, runs[0] has ${classes}`,
      );
  });
  return { parsed, records };
}

/** The records of a report's runs.json (or of a bare array of records), each validated; the rest is not read. */
export async function readRunRecords(file: string): Promise<ReproRunRecord[]> {
  return (await readRecords(file)).records;
}

/**
 * Reads a report's runs.json (or a bare array of records) for re-rendering: the records, validated as by
 * `readRunRecords`, and the configuration and titles, checked against their schema.
 */
export async function readReproReport(file: string): Promise<ReproReportFile> {
  const { parsed, records } = await readRecords(file);
  const extras = Array.isArray(parsed) ? {} : checkJson(ReportExtras, parsed, file);
  return { runs: records, configuration: extras.configuration ?? {}, figure: extras.figure ?? {} };
}
