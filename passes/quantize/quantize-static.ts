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
 * Calibration is data: this pass runs no model. Compile's calibration stage (src/calibrate.ts) asks
 * calibrationTensors() which values the plan needs ranges for, runs the float model as it is when
 * the pass starts (those values added as graph outputs, one calibration set at a time), and hands
 * the pass running statistics per value in `quantize.statistics` (min/max, or a 2048-bin histogram
 * for percentile and entropy: see lib/calibration.ts). Without statistics the model stays float.
 * Synthetic calibration inputs (no `quantize.calibration`) give a loud warning in the report.
 *
 * With `quantize.debug`, the pass lists in `quantize.quantizedTensors` each quantized activation's
 * float value and the DequantizeLinear output standing for it; the calibration stage runs both
 * models on the first calibration set and fills `quantize.report.layers` with the error per tensor
 * (max abs error, cosine, SNR), worst first.
 *
 * Main graph only ('skip'): calibration observes the main graph's values; subgraph values differ per
 * iteration and are not graph outputs that can be fetched.
 */
import { DataType } from '../../src/ir/dtype.js';
import type { Graph, Node, Value } from '../../src/ir/graph.js';
import { Tensor } from '../../src/ir/tensor.js';
import { tensorType } from '../../src/ir/types.js';
import type { CalibrationStatistics, Pass, PassContext, QuantizeOptions } from '../../src/pass/pass.js';
import type { Patch } from '../../src/pass/patch.js';
import { kernelFor, kernelTakes, type QuantizationPreset, type Target } from '../../src/target.js';
import {
  qRange, quantizeValue, rangeFromStats, scaleZeroPoint,
  type CalibrationMethod, type QuantType,
} from '../lib/calibration.js';

const COMPUTE = new Set(['Conv', 'MatMul', 'Gemm']);
const OWN_SCALE = new Set(['Add', 'Mul', 'Concat', 'AveragePool', 'GlobalAveragePool']);
const PASS_THROUGH = new Set(['MaxPool', 'Reshape', 'Transpose', 'Flatten', 'Squeeze', 'Unsqueeze']);
const ACTIVATIONS = new Set(['Relu', 'Clip']);
/** ops whose every data input is quantized (the others: input 0 only) */
const ALL_INPUTS = new Set(['MatMul', 'Add', 'Mul', 'Concat']);

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

function formats(target: Target | undefined, opset: number): Formats {
  const p: QuantizationPreset | undefined = target?.quantization;
  const act: QuantType = p?.activations === 'int8' ? 'int8' : 'uint8';
  const weight: QuantType = p?.weights === 'uint8' ? 'uint8' : 'int8';
  // int32 bias unless the target's DequantizeLinear kernel at this opset (kernelFor's row) does not take int32
  const dq = target ? kernelFor(target, 'DequantizeLinear', '', opset) : undefined;
  const int32Bias = !dq || kernelTakes(dq, 'int32');
  return {
    act,
    actSymmetric: p?.symmetricActivations ?? false,
    weight,
    weightSymmetric: p?.symmetricWeights ?? true,
    // per-axis DequantizeLinear needs opset 13
    perChannel: (p?.perChannel ?? true) && opset >= 13,
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

// ---------------------------------------------------------------------------------------------
// Planning: which nodes and tensors to quantize (pure: reads the graph, changes nothing)

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

/** keepFloat as a predicate: node names, op types, '@first' / '@last' compute node. */
function keepRule(order: readonly Node[], keep: readonly string[]): (n: Node) => boolean {
  const computeNodes = order.filter((n) => n.domain === '' && COMPUTE.has(n.opType));
  const first = computeNodes[0], last = computeNodes[computeNodes.length - 1];
  return (n) => keep.some((k) => k === n.name || k === n.opType || (k === '@first' && n === first) || (k === '@last' && n === last));
}

/** Produced by a quantized node, possibly through an activation that will be folded into it. */
function producedByQuantized(v: Value | undefined, nodes: ReadonlySet<Node>): boolean {
  const p = v?.producer;
  if (!p) return false;
  if (nodes.has(p)) return true;
  const src = p.inputs[0];
  return clipFoldable(p) && !!src?.producer && nodes.has(src.producer) && src.uses.length === 1 && !src.isReturned;
}

/** One float output, and no other output in use. */
function singleFloatOutput(n: Node): boolean {
  return isFloat(n.outputs[0]) && !n.outputs.slice(1).some((v) => v && (v.uses.length || v.isGraphOutput));
}

const floatWeight = (v: Value | undefined): boolean => v?.initializer?.dataType === DataType.FLOAT;
const constantOrAbsent = (v: Value | undefined): boolean => !v || !!v.initializer;

/** The node's inputs are of a kind the QDQ format quantizes (float data, constant weights and biases). */
function operandsQuantizable(n: Node, nodes: ReadonlySet<Node>): boolean {
  const op = n.opType;
  const [x, w, b] = n.inputs;
  if (op === 'Conv') return isFloat(x) && floatWeight(w) && constantOrAbsent(b);
  if (op === 'Gemm') return isFloat(x) && !constTensor(x) && floatWeight(w) && intAttr(n, 'transA', 0) === 0 && constantOrAbsent(b);
  if (op === 'MatMul' || OWN_SCALE.has(op)) {
    const data = ALL_INPUTS.has(op) ? n.inputs : [x];
    return data.every((v) => isFloat(v) || floatWeight(v)) && !data.every((v) => v?.initializer);
  }
  // pass-through ops: only worth it (and only fused) when the input is already quantized
  return producedByQuantized(x, nodes);
}

/** The nodes to quantize, in topological order, and the names of those keepFloat kept. */
function selectNodes(order: readonly Node[], keep: (n: Node) => boolean): { nodes: Set<Node>; kept: string[] } {
  const nodes = new Set<Node>();
  const kept: string[] = [];
  for (const n of order) {
    const op = n.opType;
    if (n.domain !== '' || !(COMPUTE.has(op) || OWN_SCALE.has(op) || PASS_THROUGH.has(op))) continue;
    if (keep(n)) { kept.push(n.name || op); continue; }
    if (singleFloatOutput(n) && operandsQuantizable(n, nodes)) nodes.add(n);
  }
  return { nodes, kept };
}

/** Relu / Clip that are the only consumer of a quantized node's output, folded into its range. */
function foldedActivations(nodes: ReadonlySet<Node>, keep: (n: Node) => boolean, f: Formats): Map<Node, Node> {
  const folded = new Map<Node, Node>();
  for (const n of nodes) {
    if (PASS_THROUGH.has(n.opType)) continue;
    const out = n.outputs[0]!;
    if (out.isReturned || out.uses.length !== 1) continue;
    const act = out.uses[0]!.node;
    if (out.uses[0]!.slot !== 0 || !clipFoldable(act) || keep(act) || act.outputs[0]!.isReturned) continue;
    // asymmetric folding removes the activation: not one that is an output, nor a dead one (its
    // producer would go with it)
    if (!f.actSymmetric && (act.outputs[0]!.isGraphOutput || act.outputs[0]!.uses.length === 0)) continue;
    folded.set(n, act);
  }
  return folded;
}

/** The activation inputs of a quantized node that get a Q/DQ pair (constants are quantized as weights). */
function quantizedInputs(n: Node): Value[] {
  const slots = ALL_INPUTS.has(n.opType) ? n.inputs.map((_, i) => i) : [0];
  return slots.map((i) => n.inputs[i]).filter((v): v is Value => !!v && !v.initializer && !constTensor(v));
}

/** Inputs and outputs of the quantized nodes, each with the float value whose statistics set its range. */
function planTensors(order: readonly Node[], nodes: ReadonlySet<Node>, folded: ReadonlyMap<Node, Node>, f: Formats): Map<Value, QTensor> {
  const tensors = new Map<Value, QTensor>();
  const statOf = new Map<Value, string>();
  // the value a consumer sees in place of v once asymmetric folding removed activations
  const resolve = (v: Value): Value => {
    const p = v.producer;
    if (p && !f.actSymmetric && ACTIVATIONS.has(p.opType)) {
      for (const [anchor, act] of folded) if (act === p) return anchor.outputs[0]!;
    }
    return v;
  };
  const add = (value: Value, stat: string, fromQuantized: boolean, ref: string): void => {
    tensors.set(value, { value, stat, fromQuantized, ref });
    if (fromQuantized) statOf.set(value, stat);
  };
  for (const n of order) {
    if (!nodes.has(n)) continue;
    for (const raw of quantizedInputs(n)) {
      const v = resolve(raw);
      if (!tensors.has(v)) tensors.set(v, { value: v, stat: statOf.get(v) ?? raw.name, fromQuantized: !!v.producer && nodes.has(v.producer), ref: raw.name });
    }
    const out = n.outputs[0]!;
    const act = folded.get(n);
    if (act) {
      // symmetric: the activation stays, its output is quantized (its producer's stays float);
      // asymmetric: the producer's output is quantized to the activation's range
      const actOut = act.outputs[0]!;
      add(f.actSymmetric ? actOut : out, actOut.name, true, actOut.name);
    } else if (PASS_THROUGH.has(n.opType)) {
      const inV = resolve(n.inputs[0]!);
      add(out, tensors.get(inV)?.stat ?? statOf.get(inV) ?? inV.name, true, out.name);
    } else {
      add(out, out.name, true, out.name);
    }
  }
  return tensors;
}

/** Decide which nodes and tensors to quantize. */
function planQuantization(graph: Graph, q: QuantizeOptions, f: Formats): Plan {
  const order = graph.topoOrder();
  const keep = keepRule(order, q.keepFloat ?? ['@last']);
  const { nodes, kept } = selectNodes(order, keep);
  const folded = foldedActivations(nodes, keep, f);
  return { nodes, folded, tensors: planTensors(order, nodes, folded, f), kept };
}

/** Formats and plan for `graph`, or why nothing is quantized. Puts element types on every value (shape inference). */
function prepare(graph: Graph, ctx: PassContext, q: QuantizeOptions): { f: Formats; plan: Plan } | string {
  const opset = ctx.opset('');
  if (opset < 10) return `opset ${opset} has no QuantizeLinear (needs 10)`;
  const f = formats(ctx.options.target, opset);
  // element types onto every value (planQuantization reads them; without inference, the declared ones)
  ctx.shapesOrExplain();
  const plan = planQuantization(graph, q, f);
  return plan.tensors.size === 0 ? 'nothing to quantize' : { f, plan };
}

/**
 * The values whose statistics quantize-static needs, in the graph as it is now (empty when it would
 * quantize nothing): what the calibration stage observes before the pass runs. Pure planning; it
 * only puts element types on the values, as the pass does.
 */
export function calibrationTensors(graph: Graph, ctx: PassContext): string[] {
  const q = ctx.options.quantize;
  if (q?.mode !== 'static') return [];
  const prepared = prepare(graph, ctx, q);
  if (typeof prepared === 'string') return [];
  return [...new Set([...prepared.plan.tensors.values()].map((t) => t.stat))];
}

/** Scale and zero point of every planned activation, from its calibrated range. */
function setActivationParams(plan: Plan, stats: CalibrationStatistics, q: QuantizeOptions, f: Formats): void {
  const method: CalibrationMethod = q.method ?? 'minmax';
  const percentile = q.percentile !== undefined ? { percentile: q.percentile } : {};
  for (const t of plan.tensors.values()) {
    const s = stats.tensors.get(t.stat);
    const [lo, hi] = s ? rangeFromStats(s, { method, ...percentile, symmetric: f.actSymmetric }) : [0, 0];
    t.params = scaleZeroPoint(lo, hi, f.act, f.actSymmetric);
  }
}

// ---------------------------------------------------------------------------------------------
// Rewriting

/** Asymmetric activations: remove the folded activations (the producer's Q saturates instead). */
function removeFoldedActivations(graph: Graph, ctx: PassContext, plan: Plan, f: Formats): number {
  if (f.actSymmetric || plan.folded.size === 0) return 0;
  const patch = ctx.patch(graph);
  // their constant bounds go with them when nothing else reads them
  for (const [anchor, act] of plan.folded) patch.replace(act.outputs[0]!, anchor.outputs[0]!);
  return patch.commit();
}

/**
 * A QuantizeLinear -> DequantizeLinear pair after every planned tensor. A tensor a quantized node
 * produces is read through the pair everywhere (a graph output keeps its name on the DQ); any other
 * only by the quantized nodes. Returns each tensor's DQ output.
 */
function insertQdqPairs(patch: Patch, plan: Plan, f: Formats): Map<Value, Value> {
  const actType = DTYPE[f.act];
  const dqOf = new Map<Value, Value>();
  for (const t of plan.tensors.values()) {
    const v = t.value;
    const base = v.name;
    const s = patch.constant(Tensor.float32([t.params!.scale], []), `${base}_scale`);
    const z = patch.constant(quantTensor(f.act, [], [t.params!.zeroPoint]), `${base}_zero_point`);
    const qv = patch.add('QuantizeLinear', [v, s, z], {}, { name: `${base}_QuantizeLinear` });
    qv.type = tensorType(actType, v.type?.kind === 'tensor' ? v.type.shape : undefined);
    const dqOpts = { name: `${base}_DequantizeLinear`, inputs: [qv, s, z], renameFrom: `${base}_float` };
    const dq = t.fromQuantized ? patch.insertAfter(v, 'DequantizeLinear', {}, dqOpts) : patch.add('DequantizeLinear', dqOpts.inputs, {}, dqOpts);
    dq.type = v.type;
    dqOf.set(v, dq);
    if (!t.fromQuantized) for (const u of v.uses) if (plan.nodes.has(u.node)) patch.setInput(u.node, u.slot, dq);
  }
  return dqOf;
}

/** Per-tensor or per-axis (`axis`) scales and zero points of a weight's values. */
function weightParams(w: Tensor, vals: Float32Array, axis: number | undefined, f: Formats): { scales: number[]; zps: number[]; channelOf: (i: number) => number } {
  const channels = axis === undefined ? 1 : w.dims[axis]!;
  const inner = axis === undefined ? vals.length : w.dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const channelOf = (i: number): number => (axis === undefined ? 0 : Math.floor(i / inner) % channels);
  const mins = new Float64Array(channels).fill(Infinity), maxs = new Float64Array(channels).fill(-Infinity);
  for (let i = 0; i < vals.length; i++) {
    const c = channelOf(i), x = vals[i]!;
    if (x < mins[c]!) mins[c] = x;
    if (x > maxs[c]!) maxs[c] = x;
  }
  const scales: number[] = [], zps: number[] = [];
  for (let c = 0; c < channels; c++) {
    const { scale, zeroPoint } = scaleZeroPoint(mins[c]!, maxs[c]!, f.weight, f.weightSymmetric, f.reduceRange);
    scales.push(scale); zps.push(zeroPoint);
  }
  return { scales, zps, channelOf };
}

/** Quantizes constant inputs through one patch: weights, biases and constant activations, each behind a DequantizeLinear. */
class ConstantQuantizer {
  bytesBefore = 0;
  bytesAfter = 0;
  /** the old constants and how many of their uses were rewired */
  private readonly rewired = new Map<Value, number>();

  constructor(private readonly patch: Patch, private readonly f: Formats) {}

  /** Input `slot` of `n` reads `value` in place of the constant `old`. */
  use(n: Node, slot: number, old: Value, value: Value): void {
    this.patch.setInput(n, slot, value);
    this.rewired.set(old, (this.rewired.get(old) ?? 0) + 1);
  }

  /** Quantized initializer `q` with its scale and zero point behind a DequantizeLinear of `dims`. */
  private dequantized(q: Tensor, type: QuantType, scales: number[], zps: number[], axis: number | undefined, nameHint: string): Value {
    const perAxis = axis !== undefined;
    const p = this.patch;
    const qv = p.constant(q, `${nameHint}_quantized`);
    const s = p.constant(Tensor.float32(scales, perAxis ? [scales.length] : []), `${nameHint}_scale`);
    const z = p.constant(quantTensor(type, perAxis ? [zps.length] : [], zps), `${nameHint}_zero_point`);
    const value = p.add('DequantizeLinear', [qv, s, z], perAxis ? { axis } : {}, { name: `${nameHint}_DequantizeLinear` });
    value.type = tensorType(DataType.FLOAT, [...q.dims]);
    return value;
  }

  /** A float weight as int8/uint8, per tensor or per `axis`; returns the DQ output and the scales. */
  weight(w: Tensor, axis: number | undefined, nameHint: string): { value: Value; scales: number[] } {
    const f = this.f;
    const vals = floatValues(w)!;
    const { scales, zps, channelOf } = weightParams(w, vals, axis, f);
    const [qmin, qmax] = qRange(f.weight, f.reduceRange);
    const out = Array.from(vals, (x, i) => quantizeValue(x, scales[channelOf(i)]!, zps[channelOf(i)]!, qmin, qmax));
    this.bytesBefore += vals.length * 4;
    this.bytesAfter += vals.length;
    return { value: this.dequantized(quantTensor(f.weight, w.dims, out), f.weight, scales, zps, axis, nameHint), scales };
  }

  /** A float bias as int32 with scale x_scale * w_scale (per channel or per tensor); undefined when it does not fit. */
  bias(b: Tensor, scales: number[], nameHint: string): Value | undefined {
    const vals = floatValues(b);
    if (!vals || b.dims.length !== 1) return undefined;
    const n = vals.length;
    if (scales.length !== 1 && scales.length !== n) return undefined;
    const sc = Array.from({ length: n }, (_, i) => scales.length === 1 ? scales[0]! : scales[i]!);
    if (sc.some((s) => !(s > 0) || !Number.isFinite(s))) return undefined;
    const [qmin, qmax] = qRange('int32');
    const out = Array.from(vals, (x, i) => quantizeValue(x, sc[i]!, 0, qmin, qmax));
    this.bytesBefore += n * 4;
    this.bytesAfter += n * 4;
    const perAxis = scales.length !== 1 && this.f.perChannel;
    const zps = new Array<number>(perAxis ? n : 1).fill(0);
    return this.dequantized(quantTensor('int32', [n], out), 'int32', perAxis ? sc : [sc[0]!], zps, perAxis ? 0 : undefined, nameHint);
  }

  /** A constant activation operand (Add/Mul/Concat) in the activation type, with its own range. */
  activation(t: Tensor, nameHint: string): Value {
    const f = this.f;
    const vals = floatValues(t)!;
    let lo = Infinity, hi = -Infinity;
    for (const x of vals) { if (x < lo) lo = x; if (x > hi) hi = x; }
    const { scale, zeroPoint } = scaleZeroPoint(lo, hi, f.act, f.actSymmetric);
    const [qmin, qmax] = qRange(f.act);
    const q = quantTensor(f.act, t.dims, Array.from(vals, (x) => quantizeValue(x, scale, zeroPoint, qmin, qmax)));
    return this.dequantized(q, f.act, [scale], [zeroPoint], undefined, nameHint);
  }

  /** Remove the old constants nothing reads once the rewiring is done. */
  removeUnused(): void {
    for (const [v, rewired] of this.rewired) {
      if (rewired < v.uses.length || v.isReturned) continue;
      if (v.initializer && !v.isGraphInput) this.patch.removeInitializer(v);
      else if (v.producer && v.producer.opType === 'Constant') this.patch.remove(v.producer);
    }
  }
}

/** Conv / Gemm: the weight (per output channel for Conv when per-channel), and the bias as int32 when it can be. */
function quantizeComputeWeights(n: Node, cq: ConstantQuantizer, xScale: number | undefined, f: Formats): void {
  const op = n.opType;
  const wv = n.inputs[1]!;
  const w = wv.initializer!;
  const axis = f.perChannel && op === 'Conv' ? 0 : undefined;
  const { value, scales } = cq.weight(w, axis, wv.name);
  cq.use(n, 1, wv, value);
  const bv = n.inputs[2];
  const biasOk = op === 'Conv' || (floatAttr(n, 'beta') ?? 1) === 1 && (floatAttr(n, 'alpha') ?? 1) === 1 && intAttr(n, 'transB', 0) === 1;
  if (!bv?.initializer || xScale === undefined || !f.int32Bias || !biasOk) return;
  if (bv.initializer.dims.length !== 1 || bv.initializer.dims[0] !== w.dims[0]) return;
  const qb = cq.bias(bv.initializer, scales.map((s) => s * xScale), bv.name);
  if (qb) cq.use(n, 2, bv, qb);
}

/** Constant inputs of MatMul (weights, int8 per tensor) and Add/Mul/Concat (activation type). */
function quantizeConstantInputs(n: Node, cq: ConstantQuantizer): void {
  const op = n.opType;
  if (PASS_THROUGH.has(op) || op === 'AveragePool' || op === 'GlobalAveragePool') return;
  n.inputs.forEach((v, i) => {
    const t = constTensor(v);
    if (!v || !t || t.dataType !== DataType.FLOAT) return;
    cq.use(n, i, v, op === 'MatMul' ? cq.weight(t, undefined, v.name).value : cq.activation(t, v.name));
  });
}

/** Quantize the constant inputs of every planned node. */
function quantizeConstants(cq: ConstantQuantizer, plan: Plan, f: Formats): void {
  for (const n of plan.nodes) {
    if (n.opType === 'Conv' || n.opType === 'Gemm') {
      // the activation scale input 0 is quantized with (it reads that tensor's DQ)
      const xScale = plan.tensors.get(n.inputs[0]!)?.params?.scale;
      quantizeComputeWeights(n, cq, xScale, f);
    } else {
      quantizeConstantInputs(n, cq);
    }
  }
  cq.removeUnused();
}

/** What the pass did, for the report. */
function summary(q: QuantizeOptions, stats: CalibrationStatistics, f: Formats, plan: Plan, cq: ConstantQuantizer): Record<string, unknown> {
  return {
    mode: 'static',
    method: q.method ?? 'minmax',
    calibrationSets: stats.sets,
    calibrationSynthetic: stats.synthetic,
    activations: `${f.act} ${f.actSymmetric ? 'symmetric' : 'asymmetric'}`,
    weights: `${f.weight} ${f.weightSymmetric ? 'symmetric' : 'asymmetric'}${f.perChannel ? ' per-channel (Conv)' : ' per-tensor'}${f.reduceRange ? ', 7-bit (reduce range)' : ''}`,
    biases: f.int32Bias ? 'int32' : 'float (target has no int32 DequantizeLinear)',
    quantizedNodes: plan.nodes.size,
    foldedActivations: plan.folded.size,
    quantizedTensors: plan.tensors.size,
    keptFloat: plan.kept,
    weightBytesBefore: cq.bytesBefore,
    weightBytesAfter: cq.bytesAfter,
  };
}

/** Each quantized activation's float value and its DQ output (for the debug table). */
function debugPairs(plan: Plan, dqOf: ReadonlyMap<Value, Value>): { float: string; dequantized: string }[] {
  const pairs: { float: string; dequantized: string }[] = [];
  for (const t of plan.tensors.values()) {
    const dq = dqOf.get(t.value);
    if (dq) pairs.push({ float: t.ref, dequantized: dq.name });
  }
  return pairs;
}

/** The report's warnings list (kept when the report has one). */
function reportWarnings(q: QuantizeOptions): string[] {
  const report = (q.report ??= {});
  const warnings: string[] = Array.isArray(report.warnings) ? (report.warnings as string[]) : [];
  report.warnings = warnings;
  return warnings;
}

const syntheticWarning = (sets: number): string =>
  `WARNING: quantize-static calibrated on ${sets} SYNTHETIC random input sets (no calibration data given): activation ranges, and so accuracy, may be far from what real inputs need. Pass real calibration data (--calibration).`;

/** Rewrite the planned graph: fold activations, insert Q/DQ pairs, quantize constants. */
function rewrite(graph: Graph, ctx: PassContext, plan: Plan, f: Formats): { changes: number; dqOf: Map<Value, Value>; cq: ConstantQuantizer } {
  const folding = removeFoldedActivations(graph, ctx, plan, f);
  const patch = ctx.patch(graph);
  const dqOf = insertQdqPairs(patch, plan, f);
  const cq = new ConstantQuantizer(patch, f);
  quantizeConstants(cq, plan, f);
  const changes = Math.max(folding, patch.commit()) + plan.nodes.size;
  ctx.invalidate();
  return { changes, dqOf, cq };
}

export const quantizeStatic: Pass = {
  name: 'quantize-static',
  description: 'static int8 quantization (QDQ): calibrated activations, int8 weights, int32 biases',
  level: 3,
  subgraphs: 'skip',
  emits: ['ai.onnx::QuantizeLinear', 'ai.onnx::DequantizeLinear'],
  run(graph, ctx) {
    const q = ctx.options.quantize;
    if (q?.mode !== 'static') return 0;
    const warnings = reportWarnings(q);
    const stats = q.statistics;
    if (!stats) {
      warnings.push('quantize-static: no calibration statistics (no runtime to calibrate with); the model was left float');
      ctx.explain('no calibration statistics (quantize.statistics): compile\'s calibration stage needs options.runtime');
      return 0;
    }
    const prepared = prepare(graph, ctx, q);
    if (typeof prepared === 'string') {
      ctx.explain(prepared);
      return 0;
    }
    const { f, plan } = prepared;
    if (!ctx.allowRewrite(`quantize-static: ${plan.nodes.size} nodes`)) return 0;
    if (stats.synthetic) warnings.push(syntheticWarning(stats.sets));
    setActivationParams(plan, stats, q, f);
    const { changes, dqOf, cq } = rewrite(graph, ctx, plan, f);
    Object.assign(q.report!, summary(q, stats, f, plan, cq));
    if (q.debug) q.quantizedTensors = debugPairs(plan, dqOf);
    return changes;
  },
};
