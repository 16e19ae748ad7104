import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { checkExternalLocation, ExternalDataError } from '../../src/onnx/external.js';
import { decode, encode } from '../../src/onnx/codec.js';
import type { ModelProto } from '../../src/onnx/proto.js';
import { readModel, writeModel } from '../../src/node/files.js';

const FIXTURE = path.resolve(import.meta.dirname, '../../fixtures/models/external-data');
let tmp: string;

beforeAll(() => { tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'retarget-ext-')); });
afterAll(() => { fs.rmSync(tmp, { recursive: true, force: true }); });

/** The fixture model with every external location replaced by `location`, written into `dir`. */
function withLocation(dir: string, location: string): string {
  fs.mkdirSync(dir, { recursive: true });
  const proto = decode<ModelProto>('ModelProto', fs.readFileSync(path.join(FIXTURE, 'model.onnx')));
  for (const t of proto.graph!.initializer!) {
    for (const e of t.externalData ?? []) if (e.key === 'location') e.value = location;
  }
  const file = path.join(dir, 'model.onnx');
  fs.writeFileSync(file, encode('ModelProto', proto));
  return file;
}

describe('reading external data', () => {
  test('tensors come from weights.bin at their offsets', () => {
    const loaded = readModel(path.join(FIXTURE, 'model.onnx'));
    const weights = fs.readFileSync(path.join(FIXTURE, 'weights.bin'));
    expect(loaded.externalFiles).toHaveLength(1);
    expect(loaded.externalFiles[0]).toMatchObject({ location: 'weights.bin', bytes: weights.length });
    const proto = decode<ModelProto>('ModelProto', fs.readFileSync(path.join(FIXTURE, 'model.onnx')));
    for (const t of proto.graph!.initializer!) {
      const offset = Number(t.externalData!.find((e) => e.key === 'offset')?.value ?? 0);
      const length = Number(t.externalData!.find((e) => e.key === 'length')!.value);
      const got = loaded.model.graph.local(t.name!)!.initializer!.rawBytes();
      expect(Buffer.from(got).equals(weights.subarray(offset, offset + length))).toBe(true);
    }
  });

  test.each([
    ['/etc/passwd', /absolute path/],
    ['../weights.bin', /contains '\.\.'/],
    ['sub/../../weights.bin', /contains '\.\.'/],
    ['C:\\weights.bin', /absolute path/],
    ['', /empty/],
  ])('refuses location %j', (location, why) => {
    expect(() => checkExternalLocation(location)).toThrow(ExternalDataError);
    expect(() => checkExternalLocation(location)).toThrow(why);
    const file = withLocation(path.join(tmp, `bad-${Math.random().toString(36).slice(2)}`), location);
    expect(() => readModel(file)).toThrow(why);
  });

  test('refuses a link that resolves outside the model folder', () => {
    const outside = path.join(tmp, 'secret.bin');
    fs.copyFileSync(path.join(FIXTURE, 'weights.bin'), outside);
    const dir = path.join(tmp, 'linked');
    const file = withLocation(dir, 'weights.bin');
    fs.symlinkSync(outside, path.join(dir, 'weights.bin'));
    expect(() => readModel(file)).toThrow(/resolves outside the model's folder/);
    // a link that stays inside the folder is fine
    const inside = path.join(tmp, 'linked-inside');
    const file2 = withLocation(inside, 'weights.bin');
    fs.copyFileSync(path.join(FIXTURE, 'weights.bin'), path.join(inside, 'real.bin'));
    fs.symlinkSync(path.join(inside, 'real.bin'), path.join(inside, 'weights.bin'));
    expect(readModel(file2).externalFiles[0]!.tensors).toBeGreaterThan(0);
  });

  test('a missing or short data file is a clear error', () => {
    const dir = path.join(tmp, 'short');
    const file = withLocation(dir, 'weights.bin');
    expect(() => readModel(file)).toThrow(/external data file 'weights.bin' not found/);
    fs.writeFileSync(path.join(dir, 'weights.bin'), fs.readFileSync(path.join(FIXTURE, 'weights.bin')).subarray(0, 100));
    expect(() => readModel(file)).toThrow(/go beyond the end of the file/);
  });
});

describe('writing external data', () => {
  test('--external-data writes one data file, and the result reads back the same', () => {
    const src = readModel(path.join(FIXTURE, 'model.onnx'));
    const out = path.join(tmp, 'written', 'm.onnx');
    fs.mkdirSync(path.dirname(out), { recursive: true });
    const w = writeModel(src.model, out, { externalData: true });
    expect(w.dataPath).toBe(path.join(path.dirname(out), 'm.onnx.data'));
    const proto = decode<ModelProto>('ModelProto', fs.readFileSync(out));
    const external = proto.graph!.initializer!.filter((t) => t.dataLocation === 1);
    expect(external.length).toBeGreaterThan(0);
    for (const t of external) expect(t.rawData).toBeUndefined();
    const back = readModel(out);
    for (const v of src.model.graph.initializers) {
      expect(Buffer.from(back.model.graph.local(v.name)!.initializer!.rawBytes()).equals(Buffer.from(v.initializer!.rawBytes()))).toBe(true);
    }
    // offsets of the data file are aligned
    for (const t of external) expect(Number(t.externalData!.find((e) => e.key === 'offset')!.value) % 64).toBe(0);
  });

  test('a model over the size limit goes to external data automatically', () => {
    const src = readModel(path.join(FIXTURE, 'model.onnx'));
    const out = path.join(tmp, 'auto.onnx');
    const w = writeModel(src.model, out, { sizeLimit: 10_000 });
    expect(w.dataPath).toBe(path.join(tmp, 'auto.onnx.data'));
    expect(fs.statSync(out).size).toBeLessThan(10_000);
    expect(readModel(out).model.graph.initializers.length).toBe(src.model.graph.initializers.length);
  });
});
