/** ONNX backend-test data folders: test_data_set_N/input_N.pb and output_N.pb (TensorProto). */
import fs from 'node:fs';
import path from 'node:path';
import { decode } from '../onnx/codec.js';
import type { TensorProto } from '../onnx/proto.js';
import { tensorFromProto } from '../ir/from-proto.js';
import type { Tensor } from '../ir/tensor.js';

export interface TestDataSet {
  dir: string;
  /** tensors in file order (input_0, input_1, ...), with the name each TensorProto carries */
  inputs: { name: string; tensor: Tensor }[];
  outputs: { name: string; tensor: Tensor }[];
}

export class TestDataError extends Error {}

function numbered(dir: string, prefix: string): string[] {
  return fs.readdirSync(dir)
    .filter((f) => f.startsWith(prefix) && f.endsWith('.pb'))
    .sort((a, b) => Number(a.slice(prefix.length, -3)) - Number(b.slice(prefix.length, -3)))
    .map((f) => path.join(dir, f));
}

/** Read one .pb file as a TensorProto. Sequence/map/optional values are refused with TestDataError. */
export function readTensorFile(file: string): { name: string; tensor: Tensor } {
  const bytes = fs.readFileSync(file);
  const proto = decode<TensorProto>('TensorProto', new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length));
  if (proto.dataType === undefined && proto.dims === undefined) throw new TestDataError(`${file}: not a TensorProto (a sequence, map or optional value?)`);
  return { name: proto.name ?? '', tensor: tensorFromProto(proto, file, false) };
}

export function readTestDataSet(dir: string): TestDataSet {
  return { dir, inputs: numbered(dir, 'input_').map(readTensorFile), outputs: numbered(dir, 'output_').map(readTensorFile) };
}

/** The test_data_set_* folders of a model folder, in order. */
export function testDataSets(modelDir: string): string[] {
  return fs.readdirSync(modelDir)
    .filter((d) => d.startsWith('test_data_set_') && fs.statSync(path.join(modelDir, d)).isDirectory())
    .sort((a, b) => Number(a.slice(14)) - Number(b.slice(14)))
    .map((d) => path.join(modelDir, d));
}

/**
 * The folder of `modelFile` when it ships test data for that model (the ONNX model-zoo layout:
 * model.onnx beside test_data_set_*), else undefined. Sets whose first set names inputs the model
 * does not have, or has a different count of inputs, belong to another model and are not used.
 */
export function modelFolderTestData(modelFile: string, inputNames?: readonly string[]): string | undefined {
  const dir = path.dirname(path.resolve(modelFile));
  let sets: string[];
  try {
    sets = testDataSets(dir);
  } catch {
    return undefined;
  }
  if (sets.length === 0) return undefined;
  if (inputNames) {
    const first = numbered(sets[0]!, 'input_');
    if (first.length !== inputNames.length) return undefined;
    try {
      const names = first.map((f) => readTensorFile(f).name).filter(Boolean);
      if (names.some((n) => !inputNames.includes(n))) return undefined;
    } catch {
      return undefined;
    }
  }
  return dir;
}
