/**
 * Runs one ONNX backend test case (a folder with model.onnx and test_data_set_*): optionally through
 * our codec and IR first, then in onnxruntime-node, comparing with the expected outputs as ONNX's
 * own runner does (rtol 1e-3, atol 1e-7).
 */
import fs from 'node:fs';
import path from 'node:path';
import { compareTensors } from '../../src/compare.js';
import { concatChunks, decode } from '../../src/onnx/codec.js';
import { serializeModel } from '../../src/io.js';
import { readModel } from '../../src/node/files.js';
import { onnxruntimeNode } from '../../src/node/ort.js';
import { readTestDataSet, testDataSets } from '../../src/node/testdata.js';
import type { Model } from '../../src/ir/model.js';
import type { Tensor } from '../../src/ir/tensor.js';
import { deepDiff } from '../helpers/deep-diff.js';

export const SUITES = ['node', 'pytorch-converted', 'pytorch-operator', 'simple'];
export const TOLERANCE = { rtol: 1e-3, atol: 1e-7 };

export function dataRoot(): string {
  return process.env.ONNX_TESTDATA ?? '/usr/share/libonnx-testdata/data';
}

/** Case ids (`suite/test_name`) present under the data root. */
export function listCases(root: string): string[] {
  const ids: string[] = [];
  for (const suite of SUITES) {
    const dir = path.join(root, suite);
    if (!fs.existsSync(dir)) continue;
    for (const name of fs.readdirSync(dir).sort()) {
      if (fs.existsSync(path.join(dir, name, 'model.onnx'))) ids.push(`${suite}/${name}`);
    }
  }
  return ids;
}

export interface CaseResult { status: 'pass' | 'fail'; reason?: string; stage?: 'codec' | 'runtime' }

function firstLine(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  return msg.split('\n').find((l) => l.trim() !== '')?.trim().slice(0, 300) ?? msg;
}

/** Round trip through our codec and IR; returns the bytes to run, or a codec failure. */
function roundTrip(modelFile: string): { bytes: Uint8Array; model: Model } | CaseResult {
  let model: Model;
  try {
    model = readModel(modelFile).model;
  } catch (e) {
    return { status: 'fail', stage: 'codec', reason: `load: ${firstLine(e)}` };
  }
  const bytes = concatChunks(serializeModel(model).chunks);
  const original = decode('ModelProto', fs.readFileSync(modelFile));
  const diff = deepDiff(original, decode('ModelProto', bytes));
  if (diff) return { status: 'fail', stage: 'codec', reason: `round trip changed the ModelProto at ${diff}` };
  return { bytes, model };
}

export interface CaseOptions {
  /** run our round trip's bytes (else the untouched file) */
  roundTrip: boolean;
  /** change the model before it is serialized and run (e.g. compile it) */
  transform?: (model: Model) => Promise<void>;
}

export async function runCase(caseDir: string, opts: CaseOptions): Promise<CaseResult> {
  const modelFile = path.join(caseDir, 'model.onnx');
  let bytes: Uint8Array;
  const rt = roundTrip(modelFile);
  if ('status' in rt) return rt;
  const model = rt.model;
  bytes = opts.roundTrip ? rt.bytes : new Uint8Array(fs.readFileSync(modelFile));
  if (opts.transform) {
    try {
      await opts.transform(model);
    } catch (e) {
      return { status: 'fail', stage: 'codec', reason: `transform: ${firstLine(e)}` };
    }
    bytes = concatChunks(serializeModel(model).chunks);
  }

  const nonTensor = model.graph.inputs.find((v) => v.type && v.type.kind !== 'tensor');
  if (nonTensor) return { status: 'fail', stage: 'runtime', reason: `onnxruntime-node cannot feed ${nonTensor.type!.kind} input '${nonTensor.name}'` };
  const nonTensorOut = model.graph.outputs.find((v) => v.type && v.type.kind !== 'tensor');
  if (nonTensorOut) return { status: 'fail', stage: 'runtime', reason: `onnxruntime-node cannot return ${nonTensorOut.type!.kind} output '${nonTensorOut.name}'` };

  let session;
  try {
    session = await onnxruntimeNode.createSession(bytes, { graphOptimizationLevel: 'all', intraOpNumThreads: 1 });
  } catch (e) {
    return { status: 'fail', stage: 'runtime', reason: `ORT load: ${firstLine(e)}` };
  }
  try {
    for (const dir of testDataSets(caseDir)) {
      const set = readTestDataSet(dir);
      const feeds: Record<string, Tensor> = {};
      set.inputs.forEach((input, i) => { feeds[model.graph.inputs[i]!.name] = input.tensor; });
      let outputs: Record<string, Tensor>;
      try {
        outputs = await session.run(feeds);
      } catch (e) {
        return { status: 'fail', stage: 'runtime', reason: `ORT run: ${firstLine(e)}` };
      }
      for (let i = 0; i < set.outputs.length; i++) {
        const name = model.graph.outputs[i]!.name;
        const got = outputs[name];
        if (!got) return { status: 'fail', stage: 'runtime', reason: `output '${name}' missing` };
        const cmp = compareTensors(got, set.outputs[i]!.tensor, TOLERANCE);
        if (!cmp.ok) return { status: 'fail', stage: 'runtime', reason: `${path.basename(dir)} output '${name}': ${cmp.problem}` };
      }
    }
  } catch (e) {
    return { status: 'fail', stage: 'runtime', reason: `test data: ${firstLine(e)}` };
  } finally {
    await session.release();
  }
  return { status: 'pass' };
}
