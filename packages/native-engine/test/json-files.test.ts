import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { nativeEngineStatus } from '../src/index.js';
import { platformProblem } from '../src/toolchain.js';

const roots: string[] = [];
afterAll(() => roots.forEach((r) => rmSync(r, { recursive: true, force: true })));

/** A folder with the files the status reads: tfjs-node's package.json and, optionally, the marker. */
function packageFolder(packageJson: unknown, marker?: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'lits-native-engine-json-'));
  roots.push(dir);
  writeFileSync(join(dir, 'package.json'), JSON.stringify(packageJson));
  if (marker !== undefined) {
    mkdirSync(join(dir, 'deps'));
    writeFileSync(join(dir, 'deps', 'lits-native-engine.json'), marker);
  }
  return dir;
}

const TFJS_NODE_JSON = {
  version: '4.22.0',
  binary: {
    module_name: 'tfjs_binding',
    module_path: './lib/napi-v{napi_build_version}/',
    napi_versions: [8],
  },
};

describe.skipIf(platformProblem() !== undefined)('JSON files read from disk', () => {
  it('a marker without a field is "not ready", naming the file and the field', () => {
    const marker = JSON.stringify({ wheel: 'w.whl', napi: 8 });
    const packageDir = packageFolder(TFJS_NODE_JSON, marker);
    const status = nativeEngineStatus({ packageDir });
    expect(status.ready).toBe(false);
    expect(status.marker).toBeUndefined();
    expect(status.reason).toBe(
      `${join(packageDir, 'deps', 'lits-native-engine.json')}: field "sha256" must be a string, got nothing; ` +
        'the native engine must be provisioned again',
    );
  });

  it('a marker that is not JSON is "not ready" too', () => {
    const packageDir = packageFolder(TFJS_NODE_JSON, '{"wheel":');
    expect(nativeEngineStatus({ packageDir }).reason).toMatch(/lits-native-engine\.json: not valid JSON/);
  });

  it("tfjs-node's package.json with a wrongly typed field names the file and the field", () => {
    const bad = { ...TFJS_NODE_JSON, binary: { ...TFJS_NODE_JSON.binary, napi_versions: '8' } };
    const packageDir = packageFolder(bad);
    expect(nativeEngineStatus({ packageDir }).reason).toMatch(
      /package\.json: field "binary\.napi_versions" must be a list of integers, got "8"/,
    );
  });
});
