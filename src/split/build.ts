/**
 * Build the two halves of a cut: the edge model (the nodes before the cut, the crossing values as
 * its outputs) and the cloud model (the rest, reading the crossing values and the graph inputs it
 * still needs). Each starts as a copy of the whole model; the other side's nodes, then dead
 * constants and unused inputs and initializers, are removed, so each side keeps only the weights it
 * uses. On the wire a float tensor can travel as int8 (QuantizeLinear with a per-tensor scale at the
 * end of the edge, DequantizeLinear at the start of the cloud) or fp16 (a Cast each side).
 *
 * Running them, and comparing edge -> cloud with the original, goes through the Runtime interface.
 */
import { cpuStandIn } from '../bench/stand-in.js';
import { evaluateNode } from '../analysis/evaluator.js';
import { inferShapes } from '../analysis/infer.js';
import { RULES } from '../analysis/ops/index.js';
import { outputMetrics } from '../bench/metrics.js';
import { toAttribute } from '../ir/attribute.js';
import { cloneModel } from '../ir/clone.js';
import { DataType } from '../ir/dtype.js';
import type { Graph, Node, Value } from '../ir/graph.js';
import type { Model } from '../ir/model.js';
import { Tensor } from '../ir/tensor.js';
import { tensorType } from '../ir/types.js';
import { concatChunks } from '../onnx/codec.js';
import { serializeModel } from '../io.js';
import type { Runtime, Session } from '../runtime.js';
import { SplitError, type Cut, type SplitAnalysis } from './cuts.js';

export type WireFormat = 'fp32' | 'fp16' | 'int8';
export const WIRE_FORMATS: readonly WireFormat[] = ['fp32', 'fp16', 'int8'];

export interface SplitModels {
  edge: Model;
  cloud: Model;
  /** edge output name -> cloud input name (equal unless the wire format renames it) */
  wire: { edgeOutput: string; cloudInput: string; value: string; format: WireFormat | 'as is'; scale?: number }[];
}

function removeDead(g: Graph): void {
  for (const n of g.topoOrder().reverse()) {
    if (n.outputs.every((v) => !v || (v.uses.length === 0 && !v.isReturned))) g.removeNode(n);
  }
  for (const v of g.initializers) if (v.uses.length === 0 && !v.isReturned && !v.isGraphInput) g.removeInitializer(v);
  for (let i = g.inputs.length - 1; i >= 0; i--) {
    const v = g.inputs[i]!;
    if (v.uses.length === 0 && !v.isReturned && !v.isConstant) g.inputs.splice(i, 1);
  }
  g.compact();
}

/** The same node in a copy of the model (copies keep the node list's order). */
function nodeMap(a: SplitAnalysis, copy: Model): (i: number) => Node {
  const pos = new Map<Node, number>(a.model.graph.nodes.map((n, i) => [n, i]));
  const copyNodes = copy.graph.nodes;
  return (i) => copyNodes[pos.get(a.nodes[i]!)!]!;
}

function copyWithTypes(model: Model): Model {
  const copy = cloneModel(model);
  // every value gets a type (symbolic dims kept): the new graph inputs and outputs need one
  inferShapes(copy, RULES, { evaluate: evaluateNode });
  return copy;
}

export interface BuildOptions {
  wire?: WireFormat;
  /** int8: per-tensor max |x| of each crossing value (from calibration), by name */
  ranges?: Record<string, number>;
}

export function buildSplit(a: SplitAnalysis, cut: Cut, opts: BuildOptions = {}): SplitModels {
  const format = opts.wire ?? 'fp32';
  const produced = cut.crossing.filter((c) => !c.graphInput);
  const wire: SplitModels['wire'] = [];

  const edge = copyWithTypes(a.model);
  {
    const g = edge.graph;
    const node = nodeMap(a, edge);
    const cloudNodes = a.nodes.map((_, i) => i).filter((i) => !a.isStatic[i] && !cut.edge[i]).map(node);
    g.outputs.length = 0;
    for (const c of produced) g.addOutput(g.local(c.name)!);
    for (const n of [...cloudNodes].reverse()) g.removeNode(n, { force: true });
    removeDead(g);
  }
  const cloud = copyWithTypes(a.model);
  {
    const g = cloud.graph;
    const node = nodeMap(a, cloud);
    const edgeNodes = a.nodes.map((_, i) => i).filter((i) => !a.isStatic[i] && cut.edge[i]).map(node);
    const crossing = produced.map((c) => g.local(c.name)!);
    for (const n of [...edgeNodes].reverse()) g.removeNode(n, { force: true });
    for (const v of crossing) g.inputs.push(v);
    removeDead(g);
  }

  for (const c of produced) {
    const floatValue = c.dtype === 'float32';
    if (format === 'fp32' || !floatValue) {
      wire.push({ edgeOutput: c.name, cloudInput: c.name, value: c.name, format: 'as is' });
      continue;
    }
    const eg = edge.graph, cg = cloud.graph;
    const ev = eg.local(c.name)!;
    const cv = cg.local(c.name)!;
    const shape = ev.type?.kind === 'tensor' ? ev.type.shape : undefined;
    const wireName = `${c.name}__${format}`;
    const slot = eg.outputs.indexOf(ev);
    let scale: number | undefined;
    let sent: Value;
    let received: Value;
    if (format === 'fp16') {
      sent = eg.addNode({ opType: 'Cast', inputs: [ev], outputs: [wireName], attributes: [toAttribute('to', DataType.FLOAT16)] }).outputs[0]!;
      sent.type = tensorType(DataType.FLOAT16, shape);
      received = cg.addInput(`${wireName}`, tensorType(DataType.FLOAT16, shape));
      const back = cg.addNode({ opType: 'Cast', inputs: [received], outputs: 1, attributes: [toAttribute('to', DataType.FLOAT)] }).outputs[0]!;
      back.type = cv.type;
      cg.replaceAllUsesWith(cv, back);
    } else {
      const range = opts.ranges?.[c.name];
      if (range === undefined) throw new SplitError(`--wire int8: no calibration range for '${c.name}'`);
      scale = Math.max(range, 1e-12) / 127;
      const es = eg.addInitializer(`${wireName}_scale`, Tensor.float32([scale], []));
      const ez = eg.addInitializer(`${wireName}_zero_point`, Tensor.fromTypedArray(DataType.INT8, [], Int8Array.of(0)));
      sent = eg.addNode({ opType: 'QuantizeLinear', inputs: [ev, es, ez], outputs: [wireName] }).outputs[0]!;
      sent.type = tensorType(DataType.INT8, shape);
      received = cg.addInput(wireName, tensorType(DataType.INT8, shape));
      const cs = cg.addInitializer(`${wireName}_scale`, Tensor.float32([scale], []));
      const cz = cg.addInitializer(`${wireName}_zero_point`, Tensor.fromTypedArray(DataType.INT8, [], Int8Array.of(0)));
      const back = cg.addNode({ opType: 'DequantizeLinear', inputs: [received, cs, cz], outputs: 1 }).outputs[0]!;
      back.type = cv.type;
      cg.replaceAllUsesWith(cv, back);
    }
    eg.setOutput(slot, sent);
    const i = cg.inputs.indexOf(cv);
    if (i >= 0 && cv.uses.length === 0 && !cv.isGraphOutput) cg.inputs.splice(i, 1);
    wire.push({ edgeOutput: wireName, cloudInput: wireName, value: c.name, format, ...(scale !== undefined ? { scale } : {}) });
  }
  for (const m of [edge, cloud]) {
    m.graph.toposort();
    m.setMetadata('retarget.split', JSON.stringify({ side: m === edge ? 'edge' : 'cloud', cut: cut.crossing.map((c) => c.name), wire: format }));
  }
  return { edge, cloud, wire };
}

// ---------------------------------------------------------------- running

/** Bytes for a session of the validating (CPU) runtime: ops only a GPU runtime has run as their standard-op composition. */
function modelBytes(m: Model): Uint8Array {
  return concatChunks(serializeModel(cpuStandIn(m).model).chunks);
}

/** Open sessions for the two halves; `run` feeds the edge's outputs (and the original inputs the cloud reads) into the cloud. */
export async function openSplit(edge: Model, cloud: Model, runtime: Runtime): Promise<{ run(feeds: Record<string, Tensor>): Promise<Record<string, Tensor>>; release(): Promise<void> }> {
  const e: Session = await runtime.createSession(modelBytes(edge));
  const c: Session = await runtime.createSession(modelBytes(cloud));
  const pick = (names: readonly string[], from: Record<string, Tensor>): Record<string, Tensor> => {
    const out: Record<string, Tensor> = {};
    for (const n of names) {
      const t = from[n];
      if (!t) throw new SplitError(`no tensor for input '${n}'`);
      out[n] = t;
    }
    return out;
  };
  return {
    async run(feeds) {
      const sent = await e.run(pick(e.inputNames, feeds));
      return c.run(pick(c.inputNames, { ...feeds, ...sent }));
    },
    async release() { await e.release(); await c.release(); },
  };
}

/** Per-tensor max |x| of each of the edge model's outputs over the calibration inputs. */
export async function calibrateRanges(edge: Model, runtime: Runtime, inputs: Record<string, Tensor>[]): Promise<Record<string, number>> {
  const s = await runtime.createSession(modelBytes(edge));
  const ranges: Record<string, number> = {};
  try {
    for (const feeds of inputs) {
      const feed: Record<string, Tensor> = {};
      for (const n of s.inputNames) feed[n] = feeds[n]!;
      const out = await s.run(feed);
      for (const [name, t] of Object.entries(out)) {
        if (t.dataType !== DataType.FLOAT) continue;
        const x = t.toTypedArray() as Float32Array;
        let m = ranges[name] ?? 0;
        for (let i = 0; i < x.length; i++) { const v = Math.abs(x[i]!); if (v > m && Number.isFinite(v)) m = v; }
        ranges[name] = m;
      }
    }
  } finally {
    await s.release();
  }
  return ranges;
}

export interface CaseError { output: string; source: string; maxAbsError: number; cosine: number }

export interface ComposedComparison {
  /** worst over all outputs and input sets */
  maxAbsError: number;
  minCosine: number;
  cases: CaseError[];
}

/** Run the original and edge -> cloud on the same inputs and compare every output. */
export async function compareComposed(original: Model, edge: Model, cloud: Model, runtime: Runtime, inputs: { source: string; feeds: Record<string, Tensor> }[]): Promise<ComposedComparison> {
  const ref = await runtime.createSession(modelBytes(original));
  const split = await openSplit(edge, cloud, runtime);
  const cases: CaseError[] = [];
  try {
    for (const set of inputs) {
      const want = await ref.run(set.feeds);
      const got = await split.run(set.feeds);
      for (const [name, t] of Object.entries(want)) {
        const g = got[name];
        if (!g) throw new SplitError(`the cloud model does not produce output '${name}'`);
        const m = outputMetrics(name, t, g);
        cases.push({ output: name, source: set.source, maxAbsError: m.maxAbsError, cosine: m.cosine });
      }
    }
  } finally {
    await ref.release();
    await split.release();
  }
  return {
    maxAbsError: Math.max(0, ...cases.map((c) => c.maxAbsError)),
    minCosine: Math.min(1, ...cases.map((c) => c.cosine)),
    cases,
  };
}
