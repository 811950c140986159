import { readFileSync } from 'node:fs';
import { DeployFileError } from './errors.js';

/** One Dockerfile instruction, continuation lines joined. */
export interface DockerInstruction {
  line: number;
  keyword: string;
  args: string;
}

/** A Dockerfile read into instructions and stages. */
export interface Dockerfile {
  file: string;
  instructions: DockerInstruction[];
  stages: { from: string; name?: string }[];
}

export function parseDockerfile(file: string, text = readFileSync(file, 'utf8')): Dockerfile {
  const instructions: DockerInstruction[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const start = i;
    let line = lines[i] ?? '';
    if (/^\s*(#|$)/.test(line)) continue;
    while (/\\\s*$/.test(line) && i + 1 < lines.length) {
      line = line.replace(/\\\s*$/, ' ');
      i++;
      const next = lines[i] ?? '';
      if (!/^\s*#/.test(next)) line += next;
    }
    const m = /^\s*([A-Za-z]+)\s+(.*)$/.exec(line);
    if (!m) throw new DeployFileError(`${file}:${start + 1}`, `cannot read "${line.trim()}"`);
    instructions.push({
      line: start + 1,
      keyword: (m[1] as string).toUpperCase(),
      args: (m[2] as string).trim(),
    });
  }
  const stages = instructions
    .filter((ins) => ins.keyword === 'FROM')
    .map((ins) => {
      const [from, as, name] = ins.args.replace(/--platform=\S+\s+/, '').split(/\s+/);
      return { from: from as string, ...(as?.toUpperCase() === 'AS' && name ? { name } : {}) };
    });
  return { file, instructions, stages };
}

/** The exec-form (JSON array) value of the last ENTRYPOINT/CMD of the final stage, or undefined. */
export function execForm(df: Dockerfile, keyword: 'ENTRYPOINT' | 'CMD'): string[] | undefined {
  const lastFrom = df.instructions.map((i) => i.keyword).lastIndexOf('FROM');
  const ins = df.instructions
    .slice(lastFrom)
    .filter((i) => i.keyword === keyword)
    .at(-1);
  if (!ins) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(ins.args);
  } catch (err) {
    throw new DeployFileError(`${df.file}:${ins.line}`, `${keyword} must use the exec form (a JSON array)`, {
      cause: err,
    });
  }
  if (!Array.isArray(parsed) || !parsed.every((a) => typeof a === 'string'))
    throw new DeployFileError(`${df.file}:${ins.line}`, `${keyword} must be a JSON array of strings`);
  return parsed;
}

/** Instructions of the final stage (what the image runs with). */
export function finalStage(df: Dockerfile): DockerInstruction[] {
  const lastFrom = df.instructions.map((i) => i.keyword).lastIndexOf('FROM');
  return df.instructions.slice(lastFrom);
}

/**
 * The command names of `lits`, read from the dispatch table in apps/cli/src/main.ts
 * (`const commands: Record<…> = { demo: …, train: … }`).
 */
export function readLitsCommandTable(mainTs: string): string[] {
  const text = readFileSync(mainTs, 'utf8');
  const head = /const commands\b.*=\s*\{\s*$/m.exec(text);
  if (!head) throw new DeployFileError(mainTs, 'no "const commands" table');
  const body = text.slice(head.index + head[0].length);
  const end = body.search(/\n\};/);
  const names = [...body.slice(0, end).matchAll(/^\s*['"]?([a-z][\w-]*)['"]?\s*:\s*async/gm)].map(
    (m) => m[1] as string,
  );
  if (names.length === 0) throw new DeployFileError(mainTs, 'the command table is empty');
  return names;
}
