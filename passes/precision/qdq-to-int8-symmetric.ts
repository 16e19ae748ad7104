/**
 * qdq-to-int8-symmetric (level 1; precision family; first in tensorrt's pipeline)
 *
 * Before:  a QDQ model from the CPU / cuda / wasm static presets (--quantize static):
 *            activations  q = QuantizeLinear(x, s, zp:uint8)  ->  DequantizeLinear(q, s, zp)   (asymmetric u8)
 *            weights      DequantizeLinear(Wq:int8, ws, wzp:int8, axis)                        (int8, zp 0)
 *            biases       DequantizeLinear(Bq:int32, bs, bzp:int32, axis)                      (int32)
 * After:   the form a target that takes int8 symmetric QDQ only runs (TensorRT's explicit
 *          quantization: s8 Q/DQ, zero point 0):
 *            activations  q' = QuantizeLinear(x, s', 0:int8)  ->  DequantizeLinear(q', s', 0:int8)
 *                         with the range the u8 pair represents, [lo, hi] = [(0 - zp) s, (255 - zp) s],
 *                         kept whole: s' = max(|lo|, |hi|) / 127, and the clamp the u8 pair applies kept
 *                         where the s8 range is wider: Relu(x) when lo = 0 (the static quantizer folds a
 *                         Relu into the u8 range: the model has no Relu node left), else Clip(x, lo, hi)
 *            weights      int8 with zero point 0: kept as they are. A constant uint8 weight, or an int8
 *                         one with a nonzero zero point, is dequantized and requantized symmetric at the
 *                         same granularity (per tensor or per channel along `axis`):
 *                         w = (q - zp) s,  s' = max|w| / 127 per channel,  q' = round(w / s')
 *            biases       a constant DequantizeLinear of a type the target does not take (int32) becomes
 *                         the float constant (q - zp) s, computed once here (exact in float64, stored
 *                         float32): TensorRT keeps biases in float.
 * Why:     TensorRT's table (targets/capabilities/tensorrt.ts) lists DequantizeLinear for int8 only:
 *          `compile -t tensorrt` of a CPU static model was refused ("DequantizeLinear type uint8 not
 *          supported (int8)", "type int32 ..."). Rewriting the pairs keeps the model quantized.
 * Accuracy: the int8 symmetric grid over [-m, m] (m = max(|lo|, |hi|)) is as fine as the uint8 grid
 *          when the range is centred, and up to 2x coarser when it is one-sided (after a ReLU the u8
 *          range is [0, hi] with 255 steps; the s8 grid spends half its 255 steps on negatives that
 *          never occur: step hi/127 instead of hi/255). Values are clipped exactly where the u8 pair
 *          clipped them (the Relu / Clip above; TensorRT fuses it into the producer). So the result is not the model as given, bit for bit: it is judged within the int8
 *          tolerance (cosine >= 0.99, TOLERANCES.int8 in src/bench/validate.ts) against the model as
 *          given (measured: test/precision-qdq.test.ts).
 * Conditions (each failure explained):
 *   - The target has a capability table whose DequantizeLinear row lacks the type (ctx.supports for the
 *     op, then the row's element types; no table or no type list: everything runs, nothing to do) and
 *     takes int8.
 *   - Activation pairs: a QuantizeLinear with a uint8 zero point, one-element float scale and zero
 *     point constants, whose output is no graph output and feeds only DequantizeLinear nodes reading
 *     the same scale and zero point (the same values, or constants equal to them). Per-axis activation
 *     scales, a Q feeding anything else, or a lone Q / DQ of an activation: explained and left.
 *   - Constant DequantizeLinear (weights, biases): the input, scale and zero point constants; the
 *     scale one element or 1-D along `axis` (no block_size); otherwise explained and left.
 */
import { attrInt } from '../../src/ir/attribute.js';
import { DataType, dataTypeName } from '../../src/ir/dtype.js';
import type { Graph, Node, Value } from '../../src/ir/graph.js';
import { Tensor } from '../../src/ir/tensor.js';
import type { Pass, PassContext } from '../../src/pass/pass.js';
import { UnsupportedOpError, type Patch } from '../../src/pass/patch.js';
import { constantValue } from '../../src/pass/pattern.js';
import { kernelFor } from '../../src/target.js';

const NAME = 'qdq-to-int8-symmetric';

/**
 * The element types the target's own table lists for `op`'s first input in the kernel row at the
 * opset the model imports (`kernelFor`'s rule, as ctx.supports() and the final check judge it), 'any'
 * when it has no table or the row lists none, or undefined when it cannot run `op`.
 */
function tableTypes(ctx: PassContext, op: string): Set<string> | 'any' | undefined {
  if (!ctx.supports('', op)) return undefined;
  const caps = ctx.options.target?.capabilities;
  if (!caps) return 'any';
  const row = kernelFor(caps, op, '', ctx.opset(''));
  if (!row) return undefined;
  return row[2] === null ? 'any' : new Set(row[2]);
}

const count = (t: Tensor): number => t.dims.reduce((p, d) => p * d, 1);

/** Same constant contents (type, dims, values). */
function sameConstant(a: Value | undefined, b: Value | undefined): boolean {
  if (a === b) return true;
  const x = constantValue(a);
  const y = constantValue(b);
  if (!x || !y || x.dataType !== y.dataType || count(x) !== count(y)) return false;
  const p = x.toTypedArray();
  const q = y.toTypedArray();
  for (let i = 0; i < p.length; i++) if (p[i] !== q[i]) return false;
  return true;
}

const isDq = (n: Node | undefined): n is Node => n !== undefined && !n.removed && n.domain === '' && n.opType === 'DequantizeLinear';
const isQ = (n: Node): boolean => !n.removed && n.domain === '' && n.opType === 'QuantizeLinear';

interface PairMatch { q: Node; dqs: Node[]; scale: number; lo: number; hi: number; m: number }

/** The uint8 activation pair starting at QuantizeLinear `q`, or why it is not one (undefined: not uint8 at all). */
function matchPair(q: Node): PairMatch | string | undefined {
  const [x, sv, zv] = q.inputs;
  // no zero point: uint8, zero point 0 (the op's default)
  const zp = zv ? constantValue(zv) : Tensor.fromTypedArray(DataType.UINT8, [], new Uint8Array(1));
  if (!zp) return `${q}: the zero point '${zv!.name}' is not a constant`;
  if (zp.dataType !== DataType.UINT8) return undefined;
  const s = constantValue(sv);
  if (!s || s.dataType !== DataType.FLOAT) return `${q}: the scale '${sv?.name}' is not a float32 constant`;
  if (count(s) !== 1 || count(zp) !== 1) return `${q}: per-axis activation quantization (scale of ${count(s)} elements) is left as it is`;
  if (!x) return `${q}: no input`;
  const out = q.outputs[0]!;
  if (out.isReturned) return `${q}: its output '${out.name}' is a graph output (the model's interface is uint8)`;
  const dqs = [...new Set(out.uses.map((u) => u.node))];
  if (dqs.length === 0) return `${q}: its output is unused`;
  for (const d of dqs) {
    if (!isDq(d) || d.inputs[0] !== out) return `${q}: its output feeds ${d}, not only DequantizeLinear nodes`;
    if (!sameConstant(d.inputs[1], sv) || !sameConstant(d.inputs[2], zv)) return `${q}: ${d} dequantizes with another scale or zero point`;
  }
  const scale = (s.toTypedArray() as Float32Array)[0]!;
  const z = (zp.toTypedArray() as Uint8Array)[0]!;
  const lo = (0 - z) * scale;
  const hi = (255 - z) * scale;
  const m = Math.max(Math.abs(lo), Math.abs(hi));
  if (!(m > 0) || !Number.isFinite(m)) return `${q}: scale ${scale} gives an empty range`;
  return { q, dqs, scale: m / 127, lo, hi, m };
}

interface ConstMatch { dq: Node; kind: 'requantize' | 'float'; values: Float64Array; dims: number[]; axis: number | undefined }

/** A DequantizeLinear of constants: its float values, dequantized in float64. */
function dequantizeConstant(dq: Node): { values: Float64Array; dims: number[]; axis: number | undefined; type: number } | string {
  const [qv, sv, zv] = dq.inputs;
  const q = constantValue(qv);
  if (!q) return `${dq}: the input '${qv?.name}' is not a constant (an activation DequantizeLinear without its QuantizeLinear pair)`;
  if (dq.attr('block_size') && (attrInt(dq.attr('block_size')) ?? 0) !== 0) return `${dq}: blocked quantization (block_size) is left as it is`;
  const s = constantValue(sv);
  if (!s || s.dataType !== DataType.FLOAT) return `${dq}: the scale '${sv?.name}' is not a float32 constant`;
  const zp = zv ? constantValue(zv) : undefined;
  if (zv && !zp) return `${dq}: the zero point '${zv.name}' is not a constant`;
  const dims = [...q.dims];
  const n = count(s);
  let axis: number | undefined;
  if (n !== 1 || s.dims.length === 1) {
    const a = attrInt(dq.attr('axis')) ?? 1;
    axis = a < 0 ? a + dims.length : a;
    if (n !== 1 && (s.dims.length !== 1 || axis < 0 || axis >= dims.length || dims[axis] !== n)) return `${dq}: scale of shape [${s.dims.join(', ')}] is neither per tensor nor per channel along axis ${a}`;
    if (n === 1) axis = undefined;
  }
  if (zp && count(zp) !== n) return `${dq}: zero point and scale differ in size`;
  const qa = q.toTypedArray() as ArrayLike<number>;
  const sa = s.toTypedArray() as Float32Array;
  const za = zp ? (zp.toTypedArray() as ArrayLike<number>) : undefined;
  const inner = axis === undefined ? 1 : dims.slice(axis + 1).reduce((p, d) => p * d, 1);
  const values = new Float64Array(qa.length);
  for (let i = 0; i < qa.length; i++) {
    const c = n === 1 ? 0 : Math.floor(i / inner) % n;
    values[i] = (Number(qa[i]) - (za ? Number(za[c]) : 0)) * sa[c]!;
  }
  return { values, dims, axis, type: q.dataType };
}

/** What to do with a constant DequantizeLinear the target may not take as it is (undefined: nothing). */
function matchConstant(dq: Node, dqTypes: Set<string> | 'any'): ConstMatch | string | undefined {
  const q = constantValue(dq.inputs[0]);
  if (!q) return undefined;
  const zp = dq.inputs[2] ? constantValue(dq.inputs[2]) : undefined;
  const type = dataTypeName(q.dataType);
  const takes = dqTypes === 'any' || dqTypes.has(type);
  const zeroZp = !zp || Array.from(zp.toTypedArray() as ArrayLike<number>).every((v) => Number(v) === 0);
  if (takes && (q.dataType !== DataType.INT8 || zeroZp)) return undefined; // runs as it is
  const d = dequantizeConstant(dq);
  if (typeof d === 'string') return d;
  if (q.dataType === DataType.UINT8 || q.dataType === DataType.INT8) return { dq, kind: 'requantize', values: d.values, dims: d.dims, axis: d.axis };
  return { dq, kind: 'float', values: d.values, dims: d.dims, axis: d.axis };
}

/** Symmetric int8 per tensor (axis undefined) or per channel along `axis`: q', s'. */
function requantize(values: Float64Array, dims: number[], axis: number | undefined): { q: Int8Array; s: Float32Array } {
  const n = axis === undefined ? 1 : dims[axis]!;
  const inner = axis === undefined ? 1 : dims.slice(axis + 1).reduce((p, d) => p * d, 1);
  const chan = (i: number): number => (n === 1 ? 0 : Math.floor(i / inner) % n);
  const m = new Float64Array(n);
  for (let i = 0; i < values.length; i++) m[chan(i)] = Math.max(m[chan(i)]!, Math.abs(values[i]!));
  const s = new Float32Array(n);
  for (let c = 0; c < n; c++) s[c] = m[c]! > 0 ? m[c]! / 127 : 1;
  const q = new Int8Array(values.length);
  for (let i = 0; i < values.length; i++) q[i] = Math.max(-127, Math.min(127, Math.round(values[i]! / s[chan(i)]!)));
  return { q, s };
}

/** The DequantizeLinear types the target takes, when it takes int8 and not all the model's types; else explains why there is nothing to do. */
function rewritableDqTypes(ctx: PassContext): Set<string> | undefined {
  const target = ctx.options.target ? `target '${ctx.options.target.name}'` : 'the target';
  const dqTypes = tableTypes(ctx, 'DequantizeLinear');
  if (dqTypes === undefined) {
    ctx.explain(`${target} has no DequantizeLinear: no QDQ form runs there, nothing to re-express`);
    return undefined;
  }
  if (dqTypes === 'any' || dqTypes.has('uint8') && dqTypes.has('int32')) {
    ctx.explain(`${target} runs DequantizeLinear of uint8 and int32 (or has no type list): the QDQ model runs as it is`);
    return undefined;
  }
  if (!dqTypes.has('int8')) {
    ctx.explain(`${target}'s DequantizeLinear takes ${[...dqTypes].join(', ')}, not int8: no symmetric int8 form to rewrite into`);
    return undefined;
  }
  return dqTypes;
}

const zero = (): Tensor => Tensor.fromTypedArray(DataType.INT8, [], new Int8Array(1));

/** The uint8 pair `m` at `q` as an int8 symmetric one, the clamp the u8 pair applied kept. */
function rewritePair(patch: Patch, ctx: PassContext, q: Node, m: PairMatch): void {
  const base = q.inputs[0]!.name;
  const s = patch.constant(Tensor.float32([m.scale], []), `${base}_scale_s8`);
  const z = patch.constant(zero(), `${base}_zero_point_s8`);
  // the u8 pair clamps to [lo, hi] (the static quantizer folds a Relu into that clamp): keep it
  let x = q.inputs[0]!;
  if (m.lo === 0) x = patch.add('Relu', [x], {}, { name: `${q.name || 'QuantizeLinear'}_clamp` });
  else if (m.lo > -m.m || m.hi < m.m) {
    x = ctx.opset('') >= 11
      ? patch.add('Clip', [x, patch.constant(Tensor.float32([m.lo], []), `${base}_lo`), patch.constant(Tensor.float32([m.hi], []), `${base}_hi`)], {}, { name: `${q.name || 'QuantizeLinear'}_clamp` })
      : patch.add('Clip', [x], { min: m.lo, max: m.hi }, { name: `${q.name || 'QuantizeLinear'}_clamp` });
  }
  const nq = patch.add('QuantizeLinear', [x, s, z], {}, { name: `${q.name || 'QuantizeLinear'}_s8` });
  const ndq = patch.add('DequantizeLinear', [nq, s, z], {}, { name: `${m.dqs[0]!.name || 'DequantizeLinear'}_s8` });
  for (const d of m.dqs) patch.replace(d.outputs[0]!, ndq);
}

/** The constant DequantizeLinear `m.dq` as a float constant (biases) or an int8 symmetric one (weights). */
function rewriteConstant(patch: Patch, m: ConstMatch): void {
  const dq = m.dq;
  const base = dq.inputs[0]!.name;
  if (m.kind === 'float') {
    patch.replace(dq.outputs[0]!, patch.constant(Tensor.float32(Float32Array.from(m.values), m.dims), `${base}_dequantized`));
    return;
  }
  const { q, s } = requantize(m.values, m.dims, m.axis);
  const qv = patch.constant(Tensor.fromTypedArray(DataType.INT8, m.dims, q), `${base}_s8`);
  const sv = patch.constant(Tensor.float32(s, m.axis === undefined ? [] : [s.length]), `${base}_scale_s8`);
  const zv = patch.constant(m.axis === undefined ? zero() : Tensor.fromTypedArray(DataType.INT8, [s.length], new Int8Array(s.length)), `${base}_zero_point_s8`);
  const nd = patch.add('DequantizeLinear', [qv, sv, zv], m.axis === undefined ? {} : { axis: m.axis }, { name: `${dq.name || 'DequantizeLinear'}_s8` });
  patch.replace(dq.outputs[0]!, nd);
}

/** Changes made, and whether the rewrite budget (--stop-after-rewrites) ran out. */
interface Progress { changes: number; stopped: boolean }

/**
 * Match each node of `nodes` (undefined: not for this pass; a string: explained) and rewrite it in a
 * patch of its own; a rewrite the target refuses is explained and left.
 */
function rewriteEach<M>(
  graph: Graph, ctx: PassContext, nodes: Node[], match: (n: Node) => M | string | undefined,
  what: (m: M) => string, rewrite: (patch: Patch, n: Node, m: M) => void,
): Progress {
  let changes = 0;
  for (const n of nodes) {
    if (n.removed) continue;
    const m = match(n);
    if (m === undefined) continue;
    if (typeof m === 'string') {
      ctx.explain(m);
      continue;
    }
    if (!ctx.allowRewrite(`${NAME}/${what(m)} at ${n}`)) return { changes, stopped: true };
    const patch = ctx.patch(graph);
    try {
      rewrite(patch, n, m);
    } catch (e) {
      if (!(e instanceof UnsupportedOpError)) throw e;
      ctx.explain(`${n}: ${e.message}`);
      continue;
    }
    changes += patch.commit();
  }
  return { changes, stopped: false };
}

export const qdqToInt8Symmetric: Pass = {
  name: NAME,
  description: 'uint8 asymmetric activation Q/DQ pairs become int8 symmetric (zero point 0, the range kept), int8 weights with zero points requantized symmetric and int32 biases dequantized once, for targets that take int8 symmetric QDQ only (judged within int8 tolerance)',
  level: 1,
  subgraphs: 'recurse',
  run(graph: Graph, ctx: PassContext): number {
    const qdq = graph.nodes.filter((n) => !n.removed && n.domain === '' && (n.opType === 'QuantizeLinear' || n.opType === 'DequantizeLinear'));
    if (!qdq.length) {
      if (graph === ctx.model.graph) ctx.explain('no QuantizeLinear or DequantizeLinear: nothing to re-express');
      return 0;
    }
    const dqTypes = rewritableDqTypes(ctx);
    if (!dqTypes) return 0;
    let changes = 0;
    // activation pairs
    if (!dqTypes.has('uint8')) {
      const pairs = rewriteEach(graph, ctx, qdq.filter(isQ), matchPair, () => 'activation-pair', (patch, q, m) => rewritePair(patch, ctx, q, m));
      changes += pairs.changes;
      if (pairs.stopped) return changes;
    }
    // constant DequantizeLinear: weights and biases
    const constants = rewriteEach(graph, ctx, qdq.filter(isDq), (dq) => matchConstant(dq, dqTypes),
      (m) => (m.kind === 'float' ? 'dequantize-bias' : 'requantize-weight'), (patch, _dq, m) => rewriteConstant(patch, m));
    changes += constants.changes;
    if (constants.stopped) return changes;
    if (changes) ctx.invalidate();
    return changes;
  },
};
