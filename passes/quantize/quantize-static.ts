/**
 * quantize-static: static int8 quantization in QDQ format (--quantize static).
 *
 * Runs only when `options.quantize.mode === 'static'`. The activations feeding and leaving the ops
 * ONNX Runtime's QDQ transformer fuses get a QuantizeLinear -> DequantizeLinear pair; constant
 * weights are quantized offline and stored as int8 initializers behind a DequantizeLinear:
 *
 *  - compute ops: Conv (weights per output channel when the preset says perChannel), MatMul and
 *    Gemm (weights per tensor), biases of Conv/Gemm as int32 with scale = x_scale * w_scale (left
 *    float where the target's DequantizeLinear has no int32 kernel: TensorRT);
 *  - Add, Mul, Concat, AveragePool, GlobalAveragePool: inputs and output quantized, own scales;
 *  - MaxPool, Reshape, Transpose, Flatten, Squeeze, Unsqueeze: pass-through when their input is
 *    quantized, the output keeps the input's scale and zero point;
 *  - Relu / Clip (min <= 0) that are the only consumer of a quantized op's output are folded into
 *    that op's range: with asymmetric activations the activation node is removed and the op's output
 *    is quantized to the activation's calibrated range (saturation does the clipping, as ORT's
 *    QDQRemovableActivation); with symmetric activations (int8, TensorRT) the activation stays and
 *    only its output is quantized (the runtime fuses Conv+Relu before the Q).
 *
 * Types come from the target's quantization preset (uint8 asymmetric activations and int8
 * symmetric per-channel weights for the x86 targets, int8 symmetric everything for TensorRT);
 * reduceRange quantizes weights to 7 bits (ORT's reduce_range). Without a target: U8S8, per-channel.
 *
 * Staying float: Softmax, LayerNormalization and every op not listed above are never quantized.
 * `keepFloat` lists node names, op types, or '@first' / '@last' (the first / last Conv, MatMul or
 * Gemm in topological order). Default: ['@last'] (the classifier / output projection stays float,
 * as most PTQ recipes do). Giving keepFloat replaces the default ([] quantizes the last layer too).
 *
 * Calibration runs the float model through `options.runtime` once per calibration input set, with
 * the tensors to calibrate added as graph outputs, and keeps only running statistics per tensor
 * (min/max, or a 2048-bin histogram for percentile and entropy): see lib/calibration.ts. Without
 * `quantize.calibration`, seeded synthetic inputs are used, with a loud warning in the report.
 *
 * With `quantize.debug`, the float and the quantized model are run on the first calibration set
 * with every quantized activation as an output, and `quantize.report.layers` gets the error per
 * tensor (max abs error, cosine, SNR), worst first.
 *
 * Main graph only ('skip'): calibration observes the main graph's values; subgraph values differ per
 * iteration and are not graph outputs that can be fetched.
 */
import { DataType } from '../../src/ir/dtype.js';
import type { Graph, Node, Value } from '../../src/ir/graph.js';
import type { Model } from '../../src/ir/model.js';
import { Tensor } from '../../src/ir/tensor.js';
import { tensorType } from '../../src/ir/types.js';
import { cloneModel } from '../../src/ir/clone.js';
import { serializeModel } from '../../src/io.js';
import { concatChunks } from '../../src/onnx/codec.js';
import { intInputRanges, syntheticInputs } from '../../src/inputs.js';
import { feedsForLayouts } from '../../src/layout.js';
import { outputMetrics } from '../../src/bench/metrics.js';
import type { Pass, PassContext, QuantizeOptions } from '../../src/pass/pass.js';
import type { Runtime } from '../../src/runtime.js';
import { staged } from '../../src/errors.js';
import type { QuantizationPreset } from '../../src/target.js';
import {
  qRange, quantizeValue, rangeFromStats, scaleZeroPoint, TensorStats,
  type CalibrationMethod, type QuantType,
} from '../lib/calibration.js';

/** Calibration sets drawn when none are given. */
export const SYNTHETIC_CALIBRATION_SETS = 16;

const COMPUTE = new Set(['Conv', 'MatMul', 'Gemm']);
const OWN_SCALE = new Set(['Add', 'Mul', 'Concat', 'AveragePool', 'GlobalAveragePool']);
const PASS_THROUGH = new Set(['MaxPool', 'Reshape', 'Transpose', 'Flatten', 'Squeeze', 'Unsqueeze']);
const ACTIVATIONS = new Set(['Relu', 'Clip']);

/** Resolved activation / weight formats. */
interface Formats {
  act: QuantType;
  actSymmetric: boolean;
  weight: QuantType;
  weightSymmetric: boolean;
  perChannel: boolean;
  reduceRange: boolean;
  /** bias as int32 DequantizeLinear (else kept float) */
  int32Bias: boolean;
}

function formats(ctx: PassContext): Formats {
  const p: QuantizationPreset | undefined = ctx.options.target?.quantization;
  const act: QuantType = p?.activations === 'int8' ? 'int8' : 'uint8';
  const weight: QuantType = p?.weights === 'uint8' ? 'uint8' : 'int8';
  const dq = ctx.options.target?.capabilities?.kernels['ai.onnx::DequantizeLinear'];
  const int32Bias = !dq || dq.some(([, , types]) => types === null || types.includes('int32'));
  return {
    act,
    actSymmetric: p?.symmetricActivations ?? false,
    weight,
    weightSymmetric: p?.symmetricWeights ?? true,
    perChannel: p?.perChannel ?? true,
    reduceRange: p?.reduceRange ?? false,
    int32Bias,
  };
}

const DTYPE: Record<QuantType, number> = { uint8: DataType.UINT8, int8: DataType.INT8, int32: DataType.INT32 };

function quantTensor(type: QuantType, dims: readonly number[], values: ArrayLike<number>): Tensor {
  const arr = type === 'uint8' ? Uint8Array.from(values) : type === 'int8' ? Int8Array.from(values) : Int32Array.from(values);
  return Tensor.fromTypedArray(DTYPE[type], dims, arr);
}

function floatValues(t: Tensor): Float32Array | undefined {
  if (t.dataType !== DataType.FLOAT) return undefined;
  return t.toTypedArray() as Float32Array;
}

function intAttr(n: Node, name: string, dflt: number): number {
  const a = n.attr(name);
  return a?.type === 'int' ? Number(a.value) : dflt;
}

function floatAttr(n: Node, name: string): number | undefined {
  const a = n.attr(name);
  return a?.type === 'float' ? Number(a.value) : undefined;
}

function isFloat(v: Value | undefined): boolean {
  return v?.type?.kind === 'tensor' && v.type.elemType === DataType.FLOAT;
}

function constTensor(v: Value | undefined): Tensor | undefined {
  if (!v) return undefined;
  if (v.initializer) return v.initializer;
  const p = v.producer;
  if (p && p.opType === 'Constant' && p.domain === '') {
    const a = p.attr('value');
    if (a?.type === 'tensor') return a.value;
  }
  return undefined;
}

/** Clip's lower bound (undefined: none), from its min input (opset 11+) or attribute. */
function clipMin(n: Node): number | undefined | null {
  if (n.opType === 'Relu') return 0;
  if (n.inputs.length > 1 || n.attr('min') === undefined) {
    const m = n.inputs[1];
    if (!m) return undefined;
    const t = constTensor(m);
    if (!t) return null; // not constant: cannot fold
    const vals = floatValues(t);
    return vals && vals.length === 1 ? vals[0]! : null;
  }
  return floatAttr(n, 'min');
}

function clipFoldable(n: Node): boolean {
  if (n.domain !== '' || !ACTIVATIONS.has(n.opType)) return false;
  if (n.opType === 'Clip' && n.inputs[2] && !constTensor(n.inputs[2])) return false;
  const lo = clipMin(n);
  return lo === undefined || (lo !== null && lo <= 0);
}

/** A tensor that gets a Q/DQ pair: the value in the rewritten graph, and whose statistics set its range. */
interface QTensor {
  value: Value;
  /** name of the value in the float model whose calibrated range is used */
  stat: string;
  /** produced by a quantized node (all its consumers and graph-output slots read the DQ) */
  fromQuantized: boolean;
  /** name of the float model's value with the same contents (for the debug table) */
  ref: string;
  params?: { scale: number; zeroPoint: number };
}

interface Plan {
  nodes: Set<Node>;
  /** activation nodes folded into their producer (asymmetric: removed) */
  folded: Map<Node, Node>;
  tensors: Map<Value, QTensor>;
  kept: string[];
}

function matchesKeep(n: Node, keep: readonly string[], first: Node | undefined, last: Node | undefined): boolean {
  return keep.some((k) => k === n.name || k === n.opType || (k === '@first' && n === first) || (k === '@last' && n === last));
}

/** Decide which nodes and tensors to quantize. */
function planQuantization(graph: Graph, q: QuantizeOptions, f: Formats): Plan {
  const order = graph.topoOrder();
  const computeNodes = order.filter((n) => n.domain === '' && COMPUTE.has(n.opType));
  const first = computeNodes[0], last = computeNodes[computeNodes.length - 1];
  const keep = q.keepFloat ?? ['@last'];
  const nodes = new Set<Node>();
  const kept: string[] = [];
  // produced by a quantized node, possibly through an activation that will be folded into it
  const producedByQ = (v: Value | undefined): boolean => {
    const p = v?.producer;
    if (!p) return false;
    if (nodes.has(p)) return true;
    const src = p.inputs[0];
    return clipFoldable(p) && !!src?.producer && nodes.has(src.producer) && src.uses.length === 1 && !src.isReturned;
  };

  for (const n of order) {
    if (n.domain !== '') continue;
    const op = n.opType;
    if (!COMPUTE.has(op) && !OWN_SCALE.has(op) && !PASS_THROUGH.has(op)) continue;
    if (matchesKeep(n, keep, first, last)) { kept.push(n.name || op); continue; }
    const out = n.outputs[0];
    if (!isFloat(out) || n.outputs.slice(1).some((v) => v && (v.uses.length || v.isGraphOutput))) continue;
    if (op === 'Conv') {
      if (!isFloat(n.inputs[0]) || !n.inputs[1]?.initializer || n.inputs[1].initializer.dataType !== DataType.FLOAT) continue;
      if (n.inputs[2] && !n.inputs[2].initializer) continue;
    } else if (op === 'Gemm') {
      if (!isFloat(n.inputs[0]) || constTensor(n.inputs[0]) || !n.inputs[1]?.initializer || n.inputs[1].initializer.dataType !== DataType.FLOAT) continue;
      if (intAttr(n, 'transA', 0) !== 0) continue;
      if (n.inputs[2] && !n.inputs[2].initializer) continue;
    } else if (op === 'MatMul') {
      if (!n.inputs.every((v) => isFloat(v) || v?.initializer?.dataType === DataType.FLOAT)) continue;
      if (n.inputs.every((v) => v?.initializer)) continue;
    } else if (OWN_SCALE.has(op)) {
      const data = op === 'Add' || op === 'Mul' || op === 'Concat' ? n.inputs : [n.inputs[0]];
      if (!data.every((v) => isFloat(v) || v?.initializer?.dataType === DataType.FLOAT)) continue;
      if (data.every((v) => v?.initializer)) continue;
    } else if (PASS_THROUGH.has(op)) {
      // only worth it (and only fused) when the input is already quantized
      if (!producedByQ(n.inputs[0])) continue;
    }
    nodes.add(n);
  }

  // activations folded into their producer
  const folded = new Map<Node, Node>();
  for (const n of nodes) {
    if (PASS_THROUGH.has(n.opType)) continue;
    const out = n.outputs[0]!;
    if (out.isReturned || out.uses.length !== 1) continue;
    const act = out.uses[0]!.node;
    if (out.uses[0]!.slot !== 0 || !clipFoldable(act) || matchesKeep(act, keep, first, last) || act.outputs[0]!.isReturned) continue;
    if (!f.actSymmetric && act.outputs[0]!.isGraphOutput) continue;
    folded.set(n, act);
  }

  // tensors: inputs and outputs of quantized nodes
  const tensors = new Map<Value, QTensor>();
  // the value a consumer sees in place of v once asymmetric folding removed activations
  const resolve = (v: Value): Value => {
    const p = v.producer;
    if (p && !f.actSymmetric && ACTIVATIONS.has(p.opType)) {
      for (const [anchor, act] of folded) if (act === p) return anchor.outputs[0]!;
    }
    return v;
  };
  const statOf = new Map<Value, string>();
  for (const n of graph.topoOrder()) {
    if (!nodes.has(n)) continue;
    const op = n.opType;
    const slots = op === 'Conv' || op === 'Gemm' ? [0] : op === 'MatMul' || op === 'Add' || op === 'Mul' || op === 'Concat' ? n.inputs.map((_, i) => i) : [0];
    for (const i of slots) {
      const raw = n.inputs[i];
      if (!raw || raw.initializer) continue;
      if (constTensor(raw)) continue; // Constant-node data: quantized as a weight below
      const v = resolve(raw);
      if (!tensors.has(v)) {
        const stat = statOf.get(v) ?? raw.name;
        tensors.set(v, { value: v, stat, fromQuantized: !!v.producer && nodes.has(v.producer), ref: raw.name });
      }
    }
    const out = n.outputs[0]!;
    const act = folded.get(n);
    let stat = out.name;
    if (PASS_THROUGH.has(op)) {
      const inV = resolve(n.inputs[0]!);
      stat = tensors.get(inV)?.stat ?? statOf.get(inV) ?? inV.name;
    }
    if (act) {
      const actOut = act.outputs[0]!;
      if (f.actSymmetric) {
        // the activation stays; quantize its output only (its producer's output stays float)
        tensors.set(actOut, { value: actOut, stat: actOut.name, fromQuantized: true, ref: actOut.name });
        statOf.set(actOut, actOut.name);
      } else {
        tensors.set(out, { value: out, stat: actOut.name, fromQuantized: true, ref: actOut.name });
        statOf.set(out, actOut.name);
      }
    } else {
      tensors.set(out, { value: out, stat, fromQuantized: true, ref: out.name });
      statOf.set(out, stat);
    }
  }
  return { nodes, folded, tensors, kept };
}

/** Run the model once per calibration set with the `names` as outputs; running statistics only. */
async function calibrate(model: Model, runtime: Runtime, sets: Record<string, Tensor>[], names: string[], method: CalibrationMethod): Promise<Map<string, TensorStats>> {
  const stats = new Map<string, TensorStats>(names.map((n) => [n, new TensorStats(method)]));
  const inputNames = new Set(model.graph.inputs.map((v) => v.name));
  const fetch = names.filter((n) => !inputNames.has(n));
  const probe = withOutputs(model, fetch);
  const session = await runtime.createSession(probe, { graphOptimizationLevel: 'disabled' });
  try {
    for (const feeds of sets) {
      const got = fetch.length ? await session.run(feeds, { outputs: fetch }) : {};
      for (const n of names) {
        const t = inputNames.has(n) ? feeds[n] : got[n];
        const vals = t && floatValues(t);
        if (vals) stats.get(n)!.add(vals);
      }
      // `got` goes out of scope here: one set's activations at a time
    }
  } finally {
    await session.release();
  }
  return stats;
}

/** Serialized copy of `model` with the named values added as graph outputs. */
function withOutputs(model: Model, names: readonly string[]): Uint8Array {
  const m = cloneModel(model);
  const g = m.graph;
  const existing = new Set(g.outputs.map((v) => v.name));
  for (const name of names) {
    if (existing.has(name)) continue;
    const v = g.local(name);
    if (!v) continue;
    if (v.type?.kind !== 'tensor') v.type = tensorType(DataType.FLOAT);
    g.addOutput(v);
    existing.add(name);
  }
  return concatChunks(serializeModel(m).chunks);
}

function scalarConst(g: Graph, type: QuantType | 'float', values: number[], dims: number[], name: string): Value {
  const t = type === 'float' ? Tensor.float32(values, dims) : quantTensor(type, dims, values);
  return g.addInitializer(name, t);
}

export interface QuantizedLayerError {
  tensor: string;
  /** the node producing it in the float model */
  node: string;
  op: string;
  maxAbsError: number;
  cosine: number;
  snrDb: number;
}

export const quantizeStatic: Pass = {
  name: 'quantize-static',
  description: 'static int8 quantization (QDQ): calibrated activations, int8 weights, int32 biases',
  level: 3,
  subgraphs: 'skip',
  emits: ['ai.onnx::QuantizeLinear', 'ai.onnx::DequantizeLinear'],
  async run(graph, ctx) {
    const q = ctx.options.quantize;
    if (q?.mode !== 'static') return 0;
    const report = (q.report ??= {});
    const warnings: string[] = Array.isArray(report.warnings) ? (report.warnings as string[]) : [];
    report.warnings = warnings;
    const runtime = ctx.options.runtime;
    if (!runtime) {
      warnings.push('quantize-static: no runtime to calibrate with; the model was left float');
      ctx.explain('no runtime (options.runtime) to run calibration');
      return 0;
    }
    const opset = ctx.opset('');
    if (opset < 10) {
      ctx.explain(`opset ${opset} has no QuantizeLinear (needs 10)`);
      return 0;
    }
    const f = formats(ctx);
    if (opset < 13) f.perChannel = false; // per-axis DequantizeLinear needs opset 13
    const method: CalibrationMethod = q.method ?? 'minmax';
    ctx.shapes(); // element types onto every value

    const model = ctx.model;
    const plan = planQuantization(graph, q, f);
    if (plan.tensors.size === 0) {
      ctx.explain('nothing to quantize');
      return 0;
    }
    if (!ctx.allowRewrite(`quantize-static: ${plan.nodes.size} nodes`)) return 0;

    // calibration data
    // data made for the original model, laid out as this one takes it (--input-layout NHWC)
    let sets = q.calibration?.map((f) => feedsForLayouts(model, f));
    if (!sets || sets.length === 0) {
      const dims = ctx.options.dims ?? {};
      const intRanges = intInputRanges(model);
      sets = Array.from({ length: SYNTHETIC_CALIBRATION_SETS }, (_, i) => syntheticInputs(model, { seed: 1000 + i, dims, defaultDim: 1, intRanges }));
      warnings.push(`WARNING: quantize-static calibrated on ${SYNTHETIC_CALIBRATION_SETS} SYNTHETIC random input sets (no calibration data given): activation ranges, and so accuracy, may be far from what real inputs need. Pass real calibration data (--calibration).`);
    }
    const floatModel = q.debug ? cloneModel(model) : undefined;
    const statNames = [...new Set([...plan.tensors.values()].map((t) => t.stat))];
    const stats = await staged('calibration', { pass: 'quantize-static' }, () => calibrate(model, runtime, sets, statNames, method));

    for (const t of plan.tensors.values()) {
      const s = stats.get(t.stat);
      const [lo, hi] = s ? rangeFromStats(s, { method, ...(q.percentile !== undefined ? { percentile: q.percentile } : {}), symmetric: f.actSymmetric }) : [0, 0];
      t.params = scaleZeroPoint(lo, hi, f.act, f.actSymmetric);
    }

    // ---- rewrite
    const patch = ctx.patch(graph);
    // asymmetric: remove folded activations (the producer's Q saturates instead)
    if (!f.actSymmetric) {
      for (const [anchor, act] of plan.folded) {
        const out = anchor.outputs[0]!;
        graph.replaceAllUsesWith(act.outputs[0]!, out);
        const bounds = act.inputs.slice(1);
        graph.removeNode(act);
        for (const v of bounds) {
          if (!v || v.uses.length || v.isReturned) continue;
          if (v.producer?.opType === 'Constant') graph.removeNode(v.producer);
          else if (v.initializer && !v.isGraphInput) graph.removeInitializer(v);
        }
      }
    }
    const actType = DTYPE[f.act];
    const dqOf = new Map<Value, Value>();
    for (const t of plan.tensors.values()) {
      const v = t.value;
      const base = v.name;
      const s = scalarConst(graph, 'float', [t.params!.scale], [], `${base}_scale`);
      const z = scalarConst(graph, f.act, [t.params!.zeroPoint], [], `${base}_zero_point`);
      const consumers = v.uses.slice();
      const qv = patch.add('QuantizeLinear', [v, s, z], {}, { name: `${base}_QuantizeLinear` });
      const dq = patch.add('DequantizeLinear', [qv, s, z], {}, { name: `${base}_DequantizeLinear` });
      qv.type = tensorType(actType, v.type?.kind === 'tensor' ? v.type.shape : undefined);
      dq.type = v.type;
      dqOf.set(v, dq);
      for (const u of consumers) {
        if (t.fromQuantized || plan.nodes.has(u.node)) graph.setInput(u.node, u.slot, dq);
      }
      if (t.fromQuantized && v.isGraphOutput) {
        graph.outputs.forEach((o, i) => { if (o === v) graph.setOutput(i, dq); });
        const name = v.name;
        graph.rename(v, graph.scope.unique(`${name}_float`), { interfaceSwap: true });
        graph.rename(dq, name, { interfaceSwap: true });
      }
    }

    // weights and biases
    const wq = qRange(f.weight, f.reduceRange);
    let weightBytesBefore = 0, weightBytesAfter = 0;
    const quantizeWeight = (w: Tensor, axis: number | undefined, nameHint: string): { value: Value; scales: number[] } => {
      const vals = floatValues(w)!;
      const channels = axis === undefined ? 1 : w.dims[axis]!;
      const inner = axis === undefined ? vals.length : w.dims.slice(axis + 1).reduce((a, b) => a * b, 1);
      const scales: number[] = [], zps: number[] = [];
      const mins = new Float64Array(channels).fill(Infinity), maxs = new Float64Array(channels).fill(-Infinity);
      for (let i = 0; i < vals.length; i++) {
        const c = axis === undefined ? 0 : Math.floor(i / inner) % channels;
        const x = vals[i]!;
        if (x < mins[c]!) mins[c] = x;
        if (x > maxs[c]!) maxs[c] = x;
      }
      for (let c = 0; c < channels; c++) {
        const { scale, zeroPoint } = scaleZeroPoint(mins[c]!, maxs[c]!, f.weight, f.weightSymmetric, f.reduceRange);
        scales.push(scale); zps.push(zeroPoint);
      }
      const out = new Array<number>(vals.length);
      for (let i = 0; i < vals.length; i++) {
        const c = axis === undefined ? 0 : Math.floor(i / inner) % channels;
        out[i] = quantizeValue(vals[i]!, scales[c]!, zps[c]!, wq[0], wq[1]);
      }
      weightBytesBefore += vals.length * 4;
      weightBytesAfter += vals.length;
      const qw = graph.addInitializer(`${nameHint}_quantized`, quantTensor(f.weight, w.dims, out));
      const perAxis = axis !== undefined;
      const s = scalarConst(graph, 'float', scales, perAxis ? [channels] : [], `${nameHint}_scale`);
      const z = scalarConst(graph, f.weight, zps, perAxis ? [channels] : [], `${nameHint}_zero_point`);
      const value = patch.add('DequantizeLinear', [qw, s, z], perAxis ? { axis } : {}, { name: `${nameHint}_DequantizeLinear` });
      value.type = tensorType(DataType.FLOAT, [...w.dims]);
      return { value, scales };
    };
    const quantizeBias = (b: Tensor, scales: number[], nameHint: string): Value | undefined => {
      const vals = floatValues(b);
      if (!vals || b.dims.length !== 1) return undefined;
      const n = vals.length;
      if (scales.length !== 1 && scales.length !== n) return undefined;
      const sc = Array.from({ length: n }, (_, i) => scales.length === 1 ? scales[0]! : scales[i]!);
      if (sc.some((s) => !(s > 0) || !Number.isFinite(s))) return undefined;
      const [qmin, qmax] = qRange('int32');
      const out = Array.from(vals, (x, i) => quantizeValue(x, sc[i]!, 0, qmin, qmax));
      weightBytesBefore += n * 4;
      weightBytesAfter += n * 4;
      const qb = graph.addInitializer(`${nameHint}_quantized`, quantTensor('int32', [n], out));
      const perAxis = scales.length !== 1 && f.perChannel;
      const s = scalarConst(graph, 'float', perAxis ? sc : [sc[0]!], perAxis ? [n] : [], `${nameHint}_scale`);
      const z = scalarConst(graph, 'int32', perAxis ? new Array<number>(n).fill(0) : [0], perAxis ? [n] : [], `${nameHint}_zero_point`);
      const value = patch.add('DequantizeLinear', [qb, s, z], perAxis ? { axis: 0 } : {}, { name: `${nameHint}_DequantizeLinear` });
      value.type = tensorType(DataType.FLOAT, [n]);
      return value;
    };
    // the activation scale a compute node's input 0 is quantized with
    const inputScale = (n: Node): number | undefined => {
      const dq = n.inputs[0];
      const qn = dq?.producer?.opType === 'DequantizeLinear' ? dq.producer.inputs[0]?.producer : undefined;
      if (!qn) return undefined;
      for (const t of plan.tensors.values()) if (dqOf.get(t.value) === dq) return t.params!.scale;
      return undefined;
    };
    const oldWeights = new Set<Value>();
    for (const n of plan.nodes) {
      const op = n.opType;
      if (op === 'Conv' || op === 'Gemm') {
        const wv = n.inputs[1]!;
        const w = wv.initializer!;
        const axis = !f.perChannel ? undefined : op === 'Conv' ? 0 : undefined;
        const { value, scales } = quantizeWeight(w, axis, wv.name);
        graph.setInput(n, 1, value);
        oldWeights.add(wv);
        const bv = n.inputs[2];
        const xs = inputScale(n);
        const biasOk = op === 'Conv' || (floatAttr(n, 'beta') ?? 1) === 1 && (floatAttr(n, 'alpha') ?? 1) === 1 && intAttr(n, 'transB', 0) === 1;
        if (bv?.initializer && xs !== undefined && f.int32Bias && biasOk) {
          const outC = op === 'Conv' ? w.dims[0]! : w.dims[0]!;
          if (bv.initializer.dims.length === 1 && bv.initializer.dims[0] === outC) {
            const qb = quantizeBias(bv.initializer, scales.map((s) => s * xs), bv.name);
            if (qb) { graph.setInput(n, 2, qb); oldWeights.add(bv); }
          }
        }
      } else {
        // constant inputs of MatMul (weights, int8 per tensor) and Add/Mul/Concat (activation type)
        n.inputs.forEach((v, i) => {
          const t = constTensor(v);
          if (!v || !t || t.dataType !== DataType.FLOAT || (PASS_THROUGH.has(op) || op === 'AveragePool' || op === 'GlobalAveragePool')) return;
          if (op === 'MatMul') {
            const { value } = quantizeWeight(t, undefined, v.name);
            graph.setInput(n, i, value);
          } else {
            const vals = floatValues(t)!;
            let lo = Infinity, hi = -Infinity;
            for (const x of vals) { if (x < lo) lo = x; if (x > hi) hi = x; }
            const { scale, zeroPoint } = scaleZeroPoint(lo, hi, f.act, f.actSymmetric);
            const [qmin, qmax] = qRange(f.act);
            const qc = graph.addInitializer(`${v.name}_quantized`, quantTensor(f.act, t.dims, Array.from(vals, (x) => quantizeValue(x, scale, zeroPoint, qmin, qmax))));
            const s = scalarConst(graph, 'float', [scale], [], `${v.name}_scale`);
            const z = scalarConst(graph, f.act, [zeroPoint], [], `${v.name}_zero_point`);
            const dq = patch.add('DequantizeLinear', [qc, s, z], {}, { name: `${v.name}_DequantizeLinear` });
            dq.type = tensorType(DataType.FLOAT, [...t.dims]);
            graph.setInput(n, i, dq);
          }
          oldWeights.add(v);
        });
      }
    }
    for (const v of oldWeights) {
      if (v.uses.length || v.isReturned) continue;
      if (v.initializer && !v.isGraphInput) graph.removeInitializer(v);
      else if (v.producer && v.producer.opType === 'Constant') graph.removeNode(v.producer);
    }
    const changes = patch.commit() + plan.nodes.size;
    ctx.invalidate();

    Object.assign(report, {
      mode: 'static',
      method,
      calibrationSets: sets.length,
      calibrationSynthetic: !q.calibration || q.calibration.length === 0,
      activations: `${f.act} ${f.actSymmetric ? 'symmetric' : 'asymmetric'}`,
      weights: `${f.weight} ${f.weightSymmetric ? 'symmetric' : 'asymmetric'}${f.perChannel ? ' per-channel (Conv)' : ' per-tensor'}${f.reduceRange ? ', 7-bit (reduce range)' : ''}`,
      biases: f.int32Bias ? 'int32' : 'float (target has no int32 DequantizeLinear)',
      quantizedNodes: plan.nodes.size,
      foldedActivations: plan.folded.size,
      quantizedTensors: plan.tensors.size,
      keptFloat: plan.kept,
      weightBytesBefore,
      weightBytesAfter,
    });

    if (q.debug && floatModel) {
      graph.compact();
      graph.toposort();
      report.layers = await layerErrors(floatModel, model, runtime, sets[0]!, plan, dqOf);
    }
    return changes;
  },
};

/** Per quantized activation: the float model's tensor against the quantized model's (its DQ output), worst first. */
async function layerErrors(floatModel: Model, quantModel: Model, runtime: Runtime, feeds: Record<string, Tensor>, plan: Plan, dqOf: Map<Value, Value>): Promise<QuantizedLayerError[]> {
  const pairs: { ref: string; dq: string; node: string; op: string }[] = [];
  for (const t of plan.tensors.values()) {
    const dq = dqOf.get(t.value);
    if (!dq) continue;
    const fv = floatModel.graph.local(t.ref);
    const prod = fv?.producer;
    pairs.push({ ref: t.ref, dq: dq.name, node: prod?.name ?? '(graph input)', op: prod?.opType ?? 'input' });
  }
  const inputNames = new Set(floatModel.graph.inputs.map((v) => v.name));
  const run = async (m: Model, names: string[]): Promise<Record<string, Tensor>> => {
    const fetch = [...new Set(names)].filter((n) => !inputNames.has(n));
    const s = await runtime.createSession(withOutputs(m, fetch), { graphOptimizationLevel: 'disabled' });
    try {
      return { ...feeds, ...(await s.run(feeds, { outputs: fetch })) };
    } finally {
      await s.release();
    }
  };
  const ref = await run(floatModel, pairs.map((p) => p.ref));
  const got = await run(quantModel, pairs.map((p) => p.dq));
  const rows: QuantizedLayerError[] = [];
  for (const p of pairs) {
    const a = ref[p.ref], b = got[p.dq];
    if (!a || !b) continue;
    const m = outputMetrics(p.ref, a, b);
    rows.push({ tensor: p.ref, node: p.node, op: p.op, maxAbsError: m.maxAbsError, cosine: m.cosine, snrDb: m.snrDb });
  }
  rows.sort((x, y) => x.snrDb - y.snrDb || y.maxAbsError - x.maxAbsError);
  return rows;
}
