import { UsageError } from '../errors.js';

/** Where the CLI writes: stdout carries results (one JSON object with --json), stderr carries progress and errors. */
export interface CliIo {
  stdout: { write(text: string): unknown; isTTY?: boolean };
  stderr: { write(text: string): unknown; isTTY?: boolean };
}

export const processIo: CliIo = { stdout: process.stdout, stderr: process.stderr };

export function parseShape(flag: string, text: string): [number, number, number] {
  const parts = text.toLowerCase().split('x').map(Number);
  if (parts.length !== 3 || parts.some((n) => !Number.isInteger(n) || n < 1))
    throw new UsageError(`--${flag} must look like 64x64x32, got '${text}'`);
  return parts as [number, number, number];
}

export function parseNumbers(flag: string, text: string, count: number, separator: RegExp): number[] {
  const parts = text.split(separator).map(Number);
  if (parts.length !== count || parts.some((n) => !Number.isFinite(n)))
    throw new UsageError(`--${flag} needs ${count} numbers, got '${text}'`);
  return parts;
}

export function parseInteger(flag: string, text: string, min: number): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < min)
    throw new UsageError(`--${flag} must be an integer ≥ ${min}, got '${text}'`);
  return n;
}

/** CLI seeds: digits are numbers, anything else a string (counter-rng keeps 1 and '1' apart). */
export function parseSeed(text: string): number | string {
  return /^\d+$/.test(text) && Number.isSafeInteger(Number(text)) ? Number(text) : text;
}
