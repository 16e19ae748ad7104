/** Helpers for evaluator.test.ts: single-node ONNX backend test cases, run through an evaluator. */
import fs from 'node:fs';
import path from 'node:path';
import { compareTensors } from '../../src/compare.js';
import type { Node } from '../../src/ir/graph.js';
import { DataType } from '../../src/ir/dtype.js';
import { Tensor } from '../../src/ir/tensor.js';
import type { ValueType } from '../../src/ir/types.js';
import { readModel } from '../../src/node/files.js';
import { readTestDataSet, testDataSets } from '../../src/node/testdata.js';

export const NODE_DATA = path.join(process.env.ONNX_TESTDATA ?? '/usr/share/libonnx-testdata/data', 'node');
export const TOLERANCE = { rtol: 1e-3, atol: 1e-7 };

export interface SingleNodeCase {
  name: string;
  dir: string;
  node: Node;
  opset: number;
  domainOpsets: Record<string, number>;
}

/** The cases under NODE_DATA whose model is one node of the default domain (no functions, no subgraphs). */
export function singleNodeCases(): SingleNodeCase[] {
  if (!fs.existsSync(NODE_DATA)) return [];
  const out: SingleNodeCase[] = [];
  for (const name of fs.readdirSync(NODE_DATA).sort()) {
    const dir = path.join(NODE_DATA, name);
    const file = path.join(dir, 'model.onnx');
    if (!fs.existsSync(file)) continue;
    let model;
    try { model = readModel(file).model; } catch { continue; }
    const nodes = model.graph.nodes;
    if (nodes.length !== 1 || model.functions.length) continue;
    const node = nodes[0]!;
    // sequence/optional inputs or outputs (test_identity_sequence, test_identity_opt): not tensors
    if ([...model.graph.inputs, ...model.graph.outputs].some((v) => v.type && v.type.kind !== 'tensor')) continue;
    if (node.domain !== '' && node.domain !== 'ai.onnx') continue;
    const domainOpsets: Record<string, number> = {};
    for (const o of model.opsetImports) if (o.domain && o.domain !== 'ai.onnx') domainOpsets[o.domain] = o.version;
    out.push({ name, dir, node, opset: model.opsetVersion('') ?? 1, domainOpsets });
  }
  return out;
}

/**
 * Older ONNX test data stores bfloat16 tensors as uint16 (same bits); read them as the type the
 * model declares.
 */
function asDeclared(t: Tensor, type: ValueType | undefined): Tensor {
  if (type?.kind === 'tensor' && type.elemType === DataType.BFLOAT16 && t.dataType === DataType.UINT16) {
    return Tensor.fromRaw(DataType.BFLOAT16, t.dims, t.rawBytes());
  }
  return t;
}

/**
 * Run `evaluate` on every test data set of `c`. Returns undefined when all outputs match,
 * 'refused' when the evaluator gave no answer, else the first problem.
 */
export async function checkCase(
  c: SingleNodeCase,
  evaluate: (node: Node, inputs: (Tensor | undefined)[], opset: number) => Tensor[] | undefined | Promise<Tensor[] | undefined>,
): Promise<string | undefined> {
  const g = c.node.graph;
  for (const setDir of testDataSets(c.dir)) {
    let set;
    try { set = readTestDataSet(setDir); } catch (e) { return `unreadable test data: ${(e as Error).message.slice(0, 80)}`; }
    const inputs = c.node.inputs.map((v) => {
      if (!v) return undefined;
      const k = g.inputs.indexOf(v);
      if (k >= 0) { const t = set.inputs[k]?.tensor; return t && asDeclared(t, v.type); }
      return v.initializer;
    });
    const outs = await evaluate(c.node, inputs, c.opset);
    if (!outs) return 'refused';
    for (let i = 0; i < set.outputs.length; i++) {
      const k = c.node.outputs.indexOf(g.outputs[i]);
      const got = k >= 0 ? outs[k] : undefined;
      if (!got) return `${path.basename(setDir)}: output ${i} missing`;
      const r = compareTensors(got, asDeclared(set.outputs[i]!.tensor, g.outputs[i]!.type), TOLERANCE);
      if (!r.ok) return `${path.basename(setDir)} output ${i}: ${r.problem}`;
    }
  }
  return undefined;
}
