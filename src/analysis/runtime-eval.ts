/**
 * Constant evaluation through a runtime, for the ops the TypeScript evaluator does not implement:
 * the node is copied into a one-node model (its constant inputs as initializers, its attributes
 * as they are), serialized and run, so folding is correct for every op the runtime has.
 *
 * Browser-safe: the runtime comes in through the Runtime interface (onnxruntime-node in Node,
 * onnxruntime-web in a browser).
 */
import { concatChunks } from '../onnx/codec.js';
import { serializeModel } from '../io.js';
import { DataType } from '../ir/dtype.js';
import type { Node, Value } from '../ir/graph.js';
import { Model } from '../ir/model.js';
import type { Tensor } from '../ir/tensor.js';
import type { Runtime } from '../runtime.js';
import { evaluateNode } from './evaluator.js';

export class RuntimeEvalError extends Error {}

/** The lowest IR version that knows `opset` of the default domain (never below 4: initializers need not be inputs). */
function irVersionFor(opset: number): number {
  if (opset >= 21) return 10;
  if (opset >= 19) return 9;
  if (opset >= 15) return 8;
  if (opset >= 13) return 7;
  if (opset >= 11) return 6;
  if (opset >= 10) return 5;
  return 4;
}

/** Ops whose results are random: folding them would freeze one draw into the model. */
const RANDOM_OPS = new Set(['RandomNormal', 'RandomUniform', 'RandomNormalLike', 'RandomUniformLike', 'Bernoulli', 'Multinomial']);

/** Why `node` must not be folded by running it, or undefined. */
function nondeterministic(node: Node, inputs: (Tensor | undefined)[]): string | undefined {
  if (RANDOM_OPS.has(node.opType)) return 'its outputs are random';
  // Dropout in training mode (opset 12+: input 2) drops random elements, unless its ratio is 0
  if (node.opType === 'Dropout' && inputs[2] && inputs[2].elementCount === 1 && Number(inputs[2].toTypedArray()[0]) !== 0) {
    const ratio = inputs[1];
    const zero = ratio && ratio.elementCount === 1 && (ratio.dataType === DataType.FLOAT || ratio.dataType === DataType.DOUBLE) && Number(ratio.toTypedArray()[0]) === 0;
    if (!zero) return 'Dropout in training mode is random';
  }
  return undefined;
}

/** A one-node model computing `node` on `inputs` (initializers); the node's outputs are the graph outputs. */
export function oneNodeModel(node: Node, inputs: (Tensor | undefined)[], opset: number, domainOpsets: Record<string, number> = {}): Model {
  if (node.subgraphs().length) throw new RuntimeEvalError(`${node}: nodes with subgraphs are not evaluated in isolation`);
  const random = nondeterministic(node, inputs);
  if (random) throw new RuntimeEvalError(`${node}: not folded: ${random}`);
  const model = new Model();
  const g = model.graph;
  g.name = 'evaluate';
  model.irVersion = irVersionFor(opset);
  const domains: Record<string, number> = { ...domainOpsets };
  delete domains[''];
  delete domains['ai.onnx'];
  if (node.domain !== '' && node.domain !== 'ai.onnx' && domains[node.domain] === undefined) domains[node.domain] = 1;
  model.opsetImports = [{ domain: '', version: opset }, ...Object.entries(domains).map(([domain, version]) => ({ domain, version }))];

  const n = Math.max(node.inputs.length, inputs.length);
  const ins: (Value | undefined)[] = [];
  for (let i = 0; i < n; i++) {
    const t = inputs[i];
    if (!t) {
      if (node.inputs[i]) throw new RuntimeEvalError(`${node}: input ${i} ('${node.inputs[i]!.name}') has no constant value`);
      ins.push(undefined);
      continue;
    }
    ins.push(g.addInitializer(`input_${i}`, t, { exactName: true }));
  }
  const outNames = node.outputs.map((v, i) => (v ? `output_${i}` : undefined));
  if (outNames.every((x) => x === undefined)) throw new RuntimeEvalError(`${node}: no outputs to compute`);
  const copy = g.addNode({ opType: node.opType, domain: node.domain, name: 'node', inputs: ins, outputs: outNames, attributes: [...node.attributes.values()] });
  for (const v of copy.outputs) if (v) g.addOutput(v);
  return model;
}

/**
 * Run `node` on constant `inputs` with `runtime` (graph optimizations off: the op's own kernel).
 * Returns the outputs indexed like node.outputs (a slot the node leaves empty stays empty).
 * Throws RuntimeEvalError when the node cannot be built or run, has subgraphs, or is random.
 */
export async function evaluateWithRuntime(
  runtime: Runtime, node: Node, inputs: (Tensor | undefined)[], opset: number, domainOpsets?: Record<string, number>,
): Promise<Tensor[]> {
  const model = oneNodeModel(node, inputs, opset, domainOpsets);
  const bytes = concatChunks(serializeModel(model).chunks);
  let session;
  try {
    session = await runtime.createSession(bytes, { graphOptimizationLevel: 'disabled', intraOpNumThreads: 1 });
  } catch (e) {
    throw new RuntimeEvalError(`${node}: ${runtime.name} cannot load it: ${firstLine(e)}`);
  }
  try {
    const names = node.outputs.map((v, i) => (v ? `output_${i}` : undefined));
    const result = await session.run({}, { outputs: names.filter((x): x is string => x !== undefined) });
    const outs: Tensor[] = [];
    names.forEach((name, i) => {
      if (name === undefined) return;
      const t = result[name];
      if (!t) throw new RuntimeEvalError(`${node}: ${runtime.name} returned no output ${i}`);
      outs[i] = t;
    });
    return outs;
  } catch (e) {
    if (e instanceof RuntimeEvalError) throw e;
    throw new RuntimeEvalError(`${node}: ${runtime.name} failed to run it: ${firstLine(e)}`);
  } finally {
    await session.release();
  }
}

/**
 * Evaluate `node` on constant inputs: the TypeScript evaluator first, then `runtime` (when given)
 * for what it does not implement. Undefined when neither can (no runtime, or the runtime refuses).
 */
export async function evaluate(
  node: Node, inputs: (Tensor | undefined)[], opset: number, runtime?: Runtime, domainOpsets?: Record<string, number>,
): Promise<Tensor[] | undefined> {
  const local = evaluateNode(node, inputs, opset);
  if (local) return local;
  if (!runtime) return undefined;
  if (node.subgraphs().length) return undefined;
  if (node.inputs.some((v, i) => v && !inputs[i])) return undefined;
  try {
    return await evaluateWithRuntime(runtime, node, inputs, opset, domainOpsets);
  } catch (e) {
    if (e instanceof RuntimeEvalError) return undefined;
    throw e;
  }
}

function firstLine(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  return msg.split('\n').find((l) => l.trim() !== '')?.trim().slice(0, 300) ?? msg;
}

