/** Shape inference checked against one ONNX backend test case (see shape-conformance.test.ts). */
import path from 'node:path';
import { inferShapes, formatSymType, RULES } from '../../src/analysis/index.js';
import { evaluateNode } from '../../src/analysis/evaluator.js';
import { dataTypeName } from '../../src/ir/dtype.js';
import { readModel } from '../../src/node/files.js';
import { readTestDataSet, testDataSets } from '../../src/node/testdata.js';

/**
 * Infer one case. When the outputs do not come out exactly, infer again with the test inputs'
 * values known: if that gets them, the shape depends on input values, which static inference
 * cannot know, and the reason says so.
 */
export function checkCase(dir: string): string | undefined {
  const problem = checkCaseWith(dir, false);
  if (problem === undefined || !problem.startsWith('output')) return problem;
  const withValues = checkCaseWith(dir, true);
  return withValues === undefined ? `value-dependent: the output shape depends on the contents of graph inputs (${problem})` : problem;
}

/** Infer one case; returns undefined when every output matches, else the first mismatch. */
function checkCaseWith(dir: string, inputValues: boolean): string | undefined {
  const { model } = readModel(path.join(dir, 'model.onnx'));
  const sets = testDataSets(dir);
  if (sets.length === 0) return 'no test data';
  let set;
  try {
    set = readTestDataSet(sets[0]!);
  } catch (e) {
    return `test data is not tensors (${(e as Error).message.slice(0, 80)})`;
  }
  const g = model.graph;
  if (g.inputs.some((v) => v.type && v.type.kind !== 'tensor')) return 'non-tensor inputs';
  if (g.outputs.some((v) => v.type && v.type.kind !== 'tensor')) return 'non-tensor outputs';
  set.inputs.forEach((inp, i) => {
    const v = g.inputs[i]!;
    v.type = { kind: 'tensor', elemType: inp.tensor.dataType, shape: [...inp.tensor.dims] };
  });
  for (const gr of model.allGraphs()) for (const v of gr.definedValues()) if (v.producer) { v.type = undefined; v.inValueInfo = false; }
  let result;
  try {
    const values = new Map(set.inputs.map((inp, i) => [g.inputs[i]!, inp.tensor] as const));
    result = inferShapes(model, RULES, { evaluate: evaluateNode, ...(inputValues ? { inputValues: values } : {}) });
  } catch (e) {
    return `inference error: ${(e as Error).message.slice(0, 200)}`;
  }
  if (result.unknownOps.size) return `no rule for ${[...result.unknownOps.keys()].join(', ')}`;
  for (let i = 0; i < set.outputs.length; i++) {
    const v = g.outputs[i]!;
    const want = set.outputs[i]!.tensor;
    const got = result.types.get(v);
    const wantText = `${dataTypeName(want.dataType)}[${want.dims.join(',')}]`;
    if (!got || got.kind !== 'tensor') return `output '${v.name}': inferred ${formatSymType(got)}, expected ${wantText}`;
    const text = formatSymType(got);
    if (text !== wantText) return `output '${v.name}': inferred ${text}, expected ${wantText}`;
  }
  return undefined;
}

