/**
 * Input sets from a folder: ONNX test-data layout (test_data_set_*\/input_N.pb, or one such folder),
 * or .npy files named after the model's inputs (or input_N.npy).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Model } from '../ir/model.js';
import type { Tensor } from '../ir/tensor.js';
import { readNpy } from './npy.js';
import { readTestDataSet, testDataSets } from './testdata.js';

export class InputsError extends Error {}

export interface InputSet { source: string; feeds: Record<string, Tensor> }

function modelInputs(model: Model): string[] {
  return model.graph.inputs.filter((v) => !v.initializer).map((v) => v.name);
}

function fromPbFolder(model: Model, dir: string): InputSet {
  const set = readTestDataSet(dir);
  const names = modelInputs(model);
  const feeds: Record<string, Tensor> = {};
  set.inputs.forEach((inp, i) => {
    const name = names.includes(inp.name) ? inp.name : names[i];
    if (!name) throw new InputsError(`${dir}: more input files than the model has inputs`);
    feeds[name] = inp.tensor;
  });
  return { source: dir, feeds };
}

export function readInputSets(model: Model, dir: string): InputSet[] {
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new InputsError(`${dir}: not a folder`);
  const sets = testDataSets(dir);
  if (sets.length) return sets.map((d) => fromPbFolder(model, d));
  const files = fs.readdirSync(dir);
  if (files.some((f) => /^input_\d+\.pb$/.test(f))) return [fromPbFolder(model, dir)];
  const npy = files.filter((f) => f.endsWith('.npy'));
  if (npy.length) {
    const names = modelInputs(model);
    const feeds: Record<string, Tensor> = {};
    for (const f of npy) {
      const base = f.slice(0, -4);
      const m = /^input_(\d+)$/.exec(base);
      const name = names.includes(base) ? base : m ? names[Number(m[1])] : undefined;
      if (!name) throw new InputsError(`${path.join(dir, f)}: no model input named '${base}'`);
      feeds[name] = readNpy(path.join(dir, f));
    }
    return [{ source: dir, feeds }];
  }
  throw new InputsError(`${dir}: no test_data_set_* folders, input_N.pb or .npy files`);
}
