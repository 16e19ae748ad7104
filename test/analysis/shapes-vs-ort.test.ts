/**
 * Shape inference on real exported models, checked against onnxruntime: with the input dims pinned,
 * every intermediate value gets a concrete shape equal to the one ORT produces when that value is
 * made a graph output; with symbolic inputs, every value gets a rank and an element type.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { inferShapes, formatSymType, RULES } from '../../src/analysis/index.js';
import { evaluateNode } from '../../src/analysis/evaluator.js';
import { concatChunks } from '../../src/onnx/codec.js';
import { serializeModel } from '../../src/io.js';
import { cloneModel } from '../../src/ir/clone.js';
import type { Model } from '../../src/ir/model.js';
import { readModel } from '../../src/node/files.js';
import { onnxruntimeNode } from '../../src/node/ort.js';
import { readTestDataSet, testDataSets } from '../../src/node/testdata.js';

const FIXTURES = path.resolve(import.meta.dirname, '../../fixtures/models');
const MODELS = ['gpt2-tiny-op14', 'gpt2-tiny-op17', 'bert-tiny-op17', 'bert-tiny-op14', 'prenorm-tiny-op17', 'cnn-tiny-op13', 'control-flow-op13',
  'audio-frontend-reflect-op13', 'detector-stride32-op13', 'sample-rate-if-op13', 'near-zero-sigmoid-op13', 'decoder-past-tiny-op14', 'llama-past-tiny-op14', 'silero-vad-legacy',
  // models in another precision (make_precision_fixtures.py)
  'cnn-tiny-fp16-op13', 'gpt2-tiny-fp16-op14', 'cnn-tiny-convinteger-op13', 'bert-tiny-convinteger-op14',
  // a QOperator model built by hand (make_qoperator_fixture.py)
  'cnn-tiny-qoperator-op13',
  // a decoder family the fusions were not written for (make_decoder_family.py)
  'neox-past-tiny-op14', 'gptj-past-tiny-op14'];

/** symbol -> size, read off the test inputs' shapes */
export function pinnedDims(model: Model, shapes: number[][]): Record<string, number> {
  const dims: Record<string, number> = {};
  model.graph.inputs.forEach((v, i) => {
    const t = v.type;
    if (t?.kind !== 'tensor' || !t.shape || !shapes[i]) return;
    t.shape.forEach((d, k) => { if (typeof d === 'string') dims[d] = shapes[i]![k]!; });
  });
  return dims;
}

describe.each(MODELS)('%s', (name) => {
  const dir = path.join(FIXTURES, name);

  test.each(testDataSets(dir).map((d) => path.basename(d)))('pinned to %s: every value concrete and equal to ORT', async (setName) => {
    const set = readTestDataSet(path.join(dir, setName));
    const { model } = readModel(path.join(dir, 'model.onnx'));
    const dims = pinnedDims(model, set.inputs.map((x) => [...x.tensor.dims]));
    // scalar integer inputs (a sample rate) decide shapes by their value, not their dims: inference is told them
    const inputValues = new Map(set.inputs.flatMap((x, i) => (x.tensor.dims.length === 0 && typeof x.tensor.toTypedArray()[0] === 'bigint' ? [[model.graph.inputs[i]!, x.tensor] as const] : [])));
    const result = inferShapes(model, RULES, { dims, evaluate: evaluateNode, inputValues });
    expect([...result.unknownOps.keys()]).toEqual([]);
    const values = model.graph.nodes.flatMap((n) => n.outputs).filter((v) => v !== undefined);
    const notConcrete = values.filter((v) => {
      const t = result.types.get(v!);
      return !t || t.kind !== 'tensor' || !t.shape || t.shape.some((d) => d.value === undefined);
    }).map((v) => `${v!.name}: ${formatSymType(result.types.get(v!))}`);
    expect(notConcrete).toEqual([]);

    // every computed value of the main graph as an output, then compare with ORT's shapes
    const probe = cloneModel(model);
    const outputs = new Set(probe.graph.outputs);
    for (const n of probe.graph.nodes) for (const v of n.outputs) if (v && !outputs.has(v) && v.type?.kind === 'tensor') probe.graph.addOutput(v);
    const session = await onnxruntimeNode.createSession(concatChunks(serializeModel(probe).chunks), { graphOptimizationLevel: 'disabled' });
    const feeds = Object.fromEntries(set.inputs.map((x, i) => [model.graph.inputs[i]!.name, x.tensor]));
    const got = await session.run(feeds);
    await session.release();
    const mismatches: string[] = [];
    for (const v of values) {
      const actual = got[v!.name];
      if (!actual) continue;
      const inferred = formatSymType(result.types.get(v!));
      const real = formatSymType({ kind: 'tensor', elemType: actual.dataType, shape: actual.dims.map((d) => ({ value: d, toString: () => String(d) }) as never) });
      if (inferred !== real) mismatches.push(`${v!.name}: inferred ${inferred}, ORT ${real}`);
    }
    expect(mismatches).toEqual([]);
    expect(Object.keys(got).length).toBeGreaterThan(values.length * 0.9);
  });

  test('symbolic inputs: every value gets a rank and an element type', () => {
    const { model } = readModel(path.join(dir, 'model.onnx'));
    const result = inferShapes(model, RULES, { evaluate: evaluateNode });
    const missing: string[] = [];
    for (const g of model.allGraphs()) {
      for (const n of g.nodes) for (const v of n.outputs) {
        if (!v) continue;
        const t = result.types.get(v);
        if (!t || t.kind !== 'tensor' || !t.shape || !t.elemType) missing.push(`${v.name} (${n.opType}): ${formatSymType(t)}`);
      }
    }
    expect(missing).toEqual([]);
  });
});

test('fixture list is complete', () => {
  expect(fs.readdirSync(FIXTURES).filter((d) => d !== 'external-data').sort()).toEqual([...MODELS].sort());
});
