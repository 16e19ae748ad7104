/**
 * convert-fp16 (level 3; runs only when ctx.options.quantize.mode === 'fp16')
 *
 * Before:  float32 weights and float32 computation everywhere
 * After:   float32 initializers, Constant / ConstantOfShape data and the computation of every op that
 *          has a float16 kernel are float16; the rest stays float32 ("fp32 islands"), with a Cast at
 *          each fp16 <-> fp32 boundary; the model's float inputs and outputs stay float32 (a Cast at
 *          the interface, names kept) unless quantize.fp16Io.
 * Conditions / choices:
 *   - Only float32 values change: integer, bool and shape subgraphs are left as they are, and float
 *     chains that only compute shapes (Shape -> Cast(float) -> Mul -> Floor -> Cast(int64)) stay
 *     float32 (fp16 has 11 significant bits: 2049 is not a float16).
 *   - Kept float32 (islands), by default: ops that overflow or lose precision in fp16
 *     (FP32_OPS below: Exp, Pow, the summing reductions, CumSum, Range, normalizations whose
 *     statistics need fp32), ops with no meaning in fp16 (quantization, random, dtype-attribute ops,
 *     sequences, control flow: their subgraphs stay float32), ops of other domains, nodes named in
 *     quantize.keepFloat (by node name or op type), and ops the target's capability table has no
 *     float16 kernel for. LayerNormalization is converted only when the target's table lists a
 *     float16 kernel for it, and then with stash_type=1 (mean and variance kept in float32 inside
 *     the kernel); without a table it stays float32. A target without a capability table (portable,
 *     or no target) gets FP32_OPS only: ORT inserts its own Casts around ops its EP lacks fp16
 *     kernels for, so the model still loads.
 *   - Cheap elementwise and data-movement ops (FOLLOWERS) follow their inputs: when every non-constant
 *     float input is float32 (they sit between fp32 islands or after a float32 model input), they
 *     stay float32 instead of adding a Cast pair around a single Add.
 *   - Casts: one per (value, precision), shared by all consumers. A Cast is never stacked on a Cast:
 *     a value made by Cast(x, to=float) gets its float16 version as Cast(x, to=float16) (the model's
 *     own Cast is retargeted when all its consumers are fp16, duplicated when consumers are mixed),
 *     and at the end Cast pairs that cancel (Cast(Cast(x, fp32), fp16) with x fp16, and ones this
 *     pass made) and Casts to the type their input already has are removed.
 *   - Initializers and Constant tensors: rounded to nearest even (IEEE 754). Finite values beyond
 *     the float16 range (|x| > 65504) SATURATE to +-65504 (counted as `saturated` in the report):
 *     models use -3.4e38 / -1e9 as "minus infinity" in attention masks, and saturating keeps them
 *     finite and effective where an infinity would make inf - inf = NaN. Infinities and NaN are
 *     kept. Nonzero values that round to zero are counted as `underflowed`. A constant used by both
 *     fp16 and fp32 consumers is duplicated when small (<= 1024 elements) and otherwise converted
 *     with a Cast back to float32 for its fp32 consumers. ConstantOfShape's `value` and Constant's
 *     value / value_float / value_floats attributes are converted likewise; Cast nodes to float32
 *     inside converted regions are retargeted to float16.
 *   - quantize.report gets: convertedNodes, keptFloat32Nodes (by op), islands (connected groups of
 *     float32 nodes), castsInserted, castsRemoved, initializersConverted, constantsConverted,
 *     saturated, underflowed, bytesBefore / bytesAfter (constant data of the main graph).
 * Subgraphs: 'skip' on purpose. If/Loop/Scan stay float32 as a whole (their bodies are not
 * converted); outer values they capture get a float32 Cast in the main graph.
 */
import { DataType } from '../../src/ir/dtype.js';
import { attr, attrInt } from '../../src/ir/attribute.js';
import type { Graph, Node, Value } from '../../src/ir/graph.js';
import { Tensor } from '../../src/ir/tensor.js';
import type { ValueType } from '../../src/ir/types.js';
import type { Pass, PassContext, QuantizeOptions } from '../../src/pass/pass.js';
import { PatchError, type Patch } from '../../src/pass/patch.js';
import { constantValue } from '../../src/pass/pattern.js';
import { kernelFor } from '../../src/target.js';

const F32 = DataType.FLOAT;
const F16 = DataType.FLOAT16;

// ------------------------------------------------------------------ float16 rounding

const f32buf = new Float32Array(1);
const u32buf = new Uint32Array(f32buf.buffer);

/**
 * float32 bits -> float16 bits, rounded to nearest even (IEEE 754, as numpy and ORT's Cast do).
 * With `saturate`, finite values beyond the float16 range become +-65504 (0x7bff) instead of
 * +-infinity; infinities and NaN are kept either way (NaN becomes the quiet NaN 0x7e00, sign kept).
 */
export function float32BitsToFloat16Bits(f: number, saturate = false): number {
  const sign = (f >>> 16) & 0x8000;
  const exp = (f >>> 23) & 0xff;
  const mant = f & 0x7fffff;
  if (exp === 0xff) return mant ? sign | 0x7e00 : sign | 0x7c00;
  const e = exp - 127 + 15;
  if (e >= 31) return sign | (saturate ? 0x7bff : 0x7c00);
  if (e <= 0) {
    // float16 subnormal (or zero): units of 2^-24
    if (e < -10) return sign; // below 2^-25: rounds to zero
    const m = mant | 0x800000;
    const shift = 14 - e; // 14..24
    let h = m >>> shift;
    const rem = m & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (h & 1))) h++; // a carry into 0x400 is the smallest normal: right bits
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1))) h++; // a carry may reach 0x7c00 (infinity): IEEE says so
  if (h >= 0x7c00 && saturate) h = 0x7bff;
  return sign | h;
}

/** A number rounded to float32 first (as stored in a float32 tensor), then to float16 bits. */
export function float32ToFloat16Bits(x: number, saturate = false): number {
  f32buf[0] = x;
  return float32BitsToFloat16Bits(u32buf[0]!, saturate);
}

/** float16 bits as a number (the IR's decoder, re-exported under the name this pass's callers use). */
export { fromFloat16Bits as float16BitsToNumber } from '../../src/ir/half.js';

export interface Fp16TensorResult {
  tensor: Tensor;
  /** finite values beyond +-65504, stored as +-65504 */
  saturated: number;
  /** nonzero values that became (signed) zero */
  underflowed: number;
}

/** A float32 tensor as float16 (raw data), rounded to nearest even, finite overflow saturated. */
export function tensorToFloat16(t: Tensor): Fp16TensorResult {
  if (t.dataType !== F32) throw new Error(`tensorToFloat16: expected float32, got type ${t.dataType}`);
  const src = t.toTypedArray() as Float32Array;
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  const out = new Uint16Array(src.length);
  let saturated = 0, underflowed = 0;
  for (let i = 0; i < bits.length; i++) {
    const f = bits[i]!;
    const h = float32BitsToFloat16Bits(f, true);
    out[i] = h;
    if ((h & 0x7fff) === 0x7bff && (f & 0x7fffffff) > 0x477fe000) saturated++; // |x| > 65504
    else if ((h & 0x7fff) === 0 && (f & 0x7fffffff) !== 0) underflowed++;
  }
  const { segment: _segment, ...extra } = t.extra as Record<string, unknown>;
  const tensor = new Tensor(F16, [...t.dims], { kind: 'raw', bytes: new Uint8Array(out.buffer) }, extra, t.name);
  return { tensor, saturated, underflowed };
}

// ------------------------------------------------------------------ op tables

/**
 * Ops kept float32 whatever the target: they overflow or lose precision in float16 (exp, powers,
 * long sums, normalization statistics, index ranges), or float16 means nothing to them.
 */
export const FP32_OPS: ReadonlySet<string> = new Set([
  // overflow / precision
  'Exp', 'Pow', 'ReduceSum', 'ReduceMean', 'ReduceSumSquare', 'ReduceL1', 'ReduceL2', 'ReduceLogSum',
  'ReduceLogSumExp', 'ReduceProd', 'CumSum', 'Range', 'InstanceNormalization', 'GroupNormalization',
  'MeanVarianceNormalization', 'LpNormalization', 'LayerNormalization',
  // not about float16 math: quantization, randomness, dtype attributes, signal ops, detection, control flow, sequences
  'QuantizeLinear', 'DequantizeLinear', 'DynamicQuantizeLinear', 'QLinearConv', 'QLinearMatMul', 'MatMulInteger', 'ConvInteger',
  'RandomNormal', 'RandomUniform', 'RandomNormalLike', 'RandomUniformLike', 'Multinomial', 'Bernoulli', 'EyeLike',
  'STFT', 'DFT', 'MelWeightMatrix', 'HannWindow', 'HammingWindow', 'BlackmanWindow',
  'NonMaxSuppression', 'RoiAlign', 'If', 'Loop', 'Scan',
  'SequenceConstruct', 'SequenceInsert', 'SequenceAt', 'SequenceErase', 'SequenceLength', 'SequenceEmpty', 'SplitToSequence',
  'ConcatFromSequence', 'SequenceMap', 'Optional', 'OptionalGetElement', 'OptionalHasElement',
]);

/** Converted only where the target lists a float16 kernel, with stash_type=1 (statistics in float32). */
const LAYER_NORMS: ReadonlySet<string> = new Set(['LayerNormalization', 'SimplifiedLayerNormalization']);

/** Cheap elementwise and data-movement ops: they stay float32 when all their non-constant float inputs are float32. */
const FOLLOWERS: ReadonlySet<string> = new Set([
  'Add', 'Sub', 'Mul', 'Div', 'Neg', 'Abs', 'Relu', 'LeakyRelu', 'PRelu', 'Sqrt', 'Reciprocal', 'Erf', 'Tanh', 'Sigmoid',
  'HardSigmoid', 'HardSwish', 'Elu', 'Selu', 'Celu', 'Softsign', 'Gelu', 'Clip', 'Where', 'Max', 'Min', 'Sum', 'Mean',
  'Floor', 'Ceil', 'Round', 'Sign', 'Mod', 'Equal', 'Less', 'LessOrEqual', 'Greater', 'GreaterOrEqual', 'IsNaN', 'IsInf',
  'Identity', 'Reshape', 'Transpose', 'Squeeze', 'Unsqueeze', 'Flatten', 'Slice', 'Gather', 'GatherElements', 'GatherND',
  'Concat', 'Split', 'Expand', 'Tile', 'Pad', 'DepthToSpace', 'SpaceToDepth', 'Compress', 'ScatterND', 'ScatterElements',
  'Trilu', 'CastLike', 'Dropout', 'Log', 'ArgMax', 'ArgMin', 'ReduceMax', 'ReduceMin', 'TopK',
]);

/** Float inputs whose type is not the op's main type: left float32 (Resize/Upsample scales must be float32). */
const FP32_INPUT_SLOTS: Record<string, readonly number[]> = {
  'ai.onnx::Resize': [1, 2], 'ai.onnx::Upsample': [1], 'ai.onnx::Dropout': [1],
};
/** Float outputs that are not of the main type: normalization statistics (type U: float32 with stash_type 1). */
const FP32_OUTPUT_SLOTS: Record<string, readonly number[]> = {
  'ai.onnx::LayerNormalization': [1, 2],
  'ai.onnx::SimplifiedLayerNormalization': [1],
  'com.microsoft::SkipLayerNormalization': [1, 2],
  'com.microsoft::SkipSimplifiedLayerNormalization': [1, 2],
};
/** Inputs read in whatever precision they have (the op's result does not depend on it, or converts it). */
const AGNOSTIC_INPUT_SLOTS: Record<string, readonly number[]> = {
  'ai.onnx::Cast': [0], 'ai.onnx::CastLike': [0], 'ai.onnx::Shape': [0], 'ai.onnx::Size': [0],
};
/** com.microsoft ops that are quantized (their float inputs are scales): never converted. */
const QUANTIZED_CONTRIB = /^(Q|Dynamic|DequantizeLinear|QuantizeLinear|MatMulInteger|MatMulNBits|MatMulBnb4|GatherBlockQuantized|MoE$|QMoE)/;

/** Element type names as capability tables may spell them. */
function isFloat16Name(t: string): boolean {
  const s = t.trim().toLowerCase().replace(/^tensor\((.*)\)$/, '$1');
  return s === 'float16' || s === 'half' || s === 'mlfloat16' || s === 'fp16' || s === String(F16);
}

/**
 * Does the target's table have a float16 kernel for `node`? undefined when the target has no table.
 * The row is kernelFor's (src/target.ts) at the model's opset for the node's domain. Tables list the
 * element types of the op's FIRST input's constraint; when that input is not of the float type being
 * converted (Where's condition, OneHot's indices), having the op is all they say.
 */
function targetHasFp16Kernel(node: Node, ctx: PassContext, firstInputIsMain: boolean): boolean | undefined {
  const caps = ctx.options.target?.capabilities;
  if (!caps) return undefined;
  const row = kernelFor(caps, node.opType, node.domain, ctx.opset(node.domain));
  if (!row) return false;
  const types = row[2];
  return types === null || !firstInputIsMain || types.some(isFloat16Name);
}

// ------------------------------------------------------------------ the pass

type Prec = typeof F32 | typeof F16;

interface Report {
  mode: 'fp16';
  fp16Io: boolean;
  convertedNodes: number;
  keptFloat32Nodes: number;
  keptFloat32: Record<string, number>;
  islands: number;
  castsInserted: number;
  castsRemoved: number;
  castsRetargeted: number;
  initializersConverted: number;
  constantsConverted: number;
  saturated: number;
  underflowed: number;
  bytesBefore: number;
  bytesAfter: number;
}

function constantBytes(graph: Graph): number {
  let n = 0;
  for (const v of graph.initializers) n += v.initializer?.byteLength ?? 0;
  for (const node of graph.nodes) {
    if (node.opType !== 'Constant' || node.domain !== '') continue;
    const t = constantValue(node.outputs[0]);
    n += t?.byteLength ?? 0;
  }
  return n;
}

function withElem(t: ValueType | undefined, elemType: number): ValueType | undefined {
  if (t?.kind !== 'tensor') return undefined;
  return { ...t, elemType };
}

const SMALL_CONSTANT = 1024;

type Want = Prec | 'any';
interface UseWant { node: Node | undefined; slot: number; want: Want }

const slotSet = (table: Record<string, readonly number[]>, n: Node): readonly number[] => table[n.qualifiedOp] ?? [];

/**
 * One run of the pass over a graph: decide which nodes compute in float16 (markShapeBound, decide),
 * then apply through a Patch (convertNodes, convertFlexValues, rewireUses), then tidy up
 * (removeCancellingCasts, removeUnusedInitializers) and fill the report.
 */
class Fp16Conversion {
  readonly fp16Io: boolean;
  private readonly keep: Set<string>;
  private readonly inferred: Map<Value, { kind: string; elemType?: number }> | undefined;
  /** element type of a value in the original model */
  private readonly origElem = new Map<Value, number | undefined>();
  private readonly nodes: Node[];
  readonly report: Report;
  /** float32 nodes that only compute shapes (their float results end in Cast to an integer type) */
  private readonly shapeBound = new Set<Node>();
  private readonly converted = new Set<Node>();
  private readonly keptRelevant = new Set<Node>();
  /** current precision of each float32 value after conversion */
  private readonly cur = new Map<Value, Prec>();
  /** nodes this pass made (Casts, float16 twins) */
  private readonly created = new Set<Node>();
  /** float16 / float32 versions of original values, made once and shared */
  private readonly variants = new Map<Value, Map<Prec, Value>>();
  changes = 0;

  constructor(private readonly graph: Graph, private readonly ctx: PassContext, q: QuantizeOptions) {
    this.fp16Io = q.fp16Io === true;
    this.keep = new Set(q.keepFloat ?? []);
    // without shapes: the declared types only
    this.inferred = ctx.shapesOrExplain()?.types as Map<Value, { kind: string; elemType?: number }> | undefined;
    this.nodes = graph.topoOrder();
    const bytesBefore = constantBytes(graph);
    this.report = {
      mode: 'fp16', fp16Io: this.fp16Io, convertedNodes: 0, keptFloat32Nodes: 0, keptFloat32: {}, islands: 0, castsInserted: 0,
      castsRemoved: 0, castsRetargeted: 0, initializersConverted: 0, constantsConverted: 0, saturated: 0, underflowed: 0,
      bytesBefore, bytesAfter: bytesBefore,
    };
  }

  // ---------------------------------------------------------------- questions about the original

  elemOf(v: Value): number | undefined {
    if (this.origElem.has(v)) return this.origElem.get(v);
    let t: number | undefined;
    const s = this.inferred?.get(v);
    if (s?.kind === 'tensor' && s.elemType) t = s.elemType;
    if (t === undefined && v.type?.kind === 'tensor' && v.type.elemType) t = v.type.elemType;
    if (t === undefined && v.initializer) t = v.initializer.dataType;
    this.origElem.set(v, t);
    return t;
  }

  isF32(v: Value | undefined): v is Value {
    return v !== undefined && this.elemOf(v) === F32;
  }

  /** input slots of `n` that follow its main float type */
  tInputs(n: Node): number[] {
    const fp32 = slotSet(FP32_INPUT_SLOTS, n), agn = slotSet(AGNOSTIC_INPUT_SLOTS, n);
    const out: number[] = [];
    n.inputs.forEach((v, i) => { if (this.isF32(v) && !fp32.includes(i) && !agn.includes(i)) out.push(i); });
    return out;
  }

  tOutputs(n: Node): number[] {
    const fp32 = slotSet(FP32_OUTPUT_SLOTS, n);
    const out: number[] = [];
    n.outputs.forEach((v, i) => { if (this.isF32(v) && !fp32.includes(i)) out.push(i); });
    return out;
  }

  /** Constant / ConstantOfShape / Cast to float: their float16 version is cheap to make, so consumers decide. */
  isFlexNode(n: Node): boolean {
    if (n.domain !== '' || !this.isF32(n.outputs[0])) return false;
    if (n.opType === 'Constant') return constantValue(n.outputs[0])?.dataType === F32;
    if (n.opType === 'ConstantOfShape') { const a = n.attr('value'); return a === undefined || (a.type === 'tensor' && a.value.dataType === F32); }
    if (n.opType === 'Cast') return attrInt(n.attr('to')) === F32;
    return false;
  }

  isFlexValue(v: Value): boolean {
    return (v.initializer !== undefined && !v.isGraphInput && v.graph === this.graph) || (v.producer !== undefined && this.isFlexNode(v.producer));
  }

  // ---------------------------------------------------------------- deciding

  /** Which float32 nodes are only computing shapes (their float results end in Cast to an integer type). */
  markShapeBound(): void {
    for (let i = this.nodes.length - 1; i >= 0; i--) {
      const n = this.nodes[i]!;
      const outs = n.outputs.filter((v): v is Value => this.isF32(v));
      if (!outs.length || outs.some((v) => v.isReturned)) continue;
      let any = false, all = true;
      for (const v of outs) {
        for (const u of v.uses) {
          const r = this.shapeUse(u.node, u.slot);
          if (r === 'ignored') continue;
          any = true;
          if (r === 'value') { all = false; break; }
        }
        if (!all) break;
      }
      if (any && all) this.shapeBound.add(n);
    }
  }

  /** How a use reads a float value: not at all (Shape / Size), towards a shape, or as a value. */
  private shapeUse(c: Node, slot: number): 'ignored' | 'shape' | 'value' {
    if (c.graph !== this.graph) return 'value';
    if (c.domain === '' && (c.opType === 'Shape' || c.opType === 'Size') && slot === 0) return 'ignored';
    if (c.domain === '' && c.opType === 'Cast' && slot === 0) {
      const to = attrInt(c.attr('to'));
      if (to !== F32 && to !== F16 && to !== DataType.DOUBLE && to !== DataType.BFLOAT16) return 'shape';
    }
    if (slotSet(FP32_INPUT_SLOTS, c).includes(slot)) return 'shape';
    return this.shapeBound.has(c) ? 'shape' : 'value';
  }

  /** precision of a float32 value's home (before flex decisions): 'flex' for constants and Cast-to-float */
  private homeOf(v: Value): Prec | 'flex' {
    if (this.isFlexValue(v)) return 'flex';
    if (v.isGraphInput) return this.fp16Io && !v.initializer ? F16 : F32;
    const p = v.producer;
    if (p && this.converted.has(p) && this.tOutputs(p).includes(v.producerSlot ?? -1)) return F16;
    return F32;
  }

  /** Why `n` stays float32, or undefined. */
  private keepReason(n: Node): string | undefined {
    if (this.keep.has(n.name) || this.keep.has(n.opType)) return 'quantize.keepFloat';
    if (n.subgraphs().length) return 'has subgraphs';
    if ([...n.attributes.values()].some((a) => a.refAttrName !== undefined)) return 'reference attribute';
    const table = targetHasFp16Kernel(n, this.ctx, this.tInputs(n).includes(0));
    if (n.domain === 'com.microsoft' && QUANTIZED_CONTRIB.test(n.opType)) return 'quantized op';
    if (n.domain !== '' && table !== true) return `${n.domain} op without a float16 kernel in the target's table`;
    if (n.domain === '' && LAYER_NORMS.has(n.opType)) return table === true ? undefined : `${n.opType} statistics (no float16 kernel listed)`;
    if (n.domain === '' && FP32_OPS.has(n.opType)) return 'overflows or loses precision in float16';
    if (table === false) return `target '${this.ctx.options.target?.name}' has no float16 kernel`;
    if (this.shapeBound.has(n)) return 'computes a shape';
    if (n.outputs.some((v) => v && this.elemOf(v) === undefined) || n.inputs.some((v) => v && this.elemOf(v) === undefined)) return 'unknown element types';
    return undefined;
  }

  /** Decide, in topological order, which nodes compute in float16. */
  decide(): void {
    let allowed = true;
    for (const n of this.nodes) {
      if (this.isFlexNode(n)) continue;
      const ti = this.tInputs(n), to = this.tOutputs(n);
      if (!ti.length && !to.length) continue; // no float32 data of its main type: integer / shape node
      const reason = this.keepReason(n);
      let convert = reason === undefined;
      if (convert && n.domain === '' && FOLLOWERS.has(n.opType)) {
        const homes = ti.map((i) => this.homeOf(n.inputs[i]!)).filter((h) => h !== 'flex');
        convert = homes.length === 0 || homes.includes(F16);
      }
      if (convert && allowed && !this.ctx.allowRewrite(`convert-fp16: ${n}`)) allowed = false;
      if (convert && allowed) this.converted.add(n);
      else {
        this.keptRelevant.add(n);
        if (reason) this.ctx.explain(`${n} stays float32: ${reason}`);
      }
    }
  }

  /** What precision each use of a float32 value wants (a graph output: slot -1; a subgraph's return: slot -2). */
  private wantsOf(v: Value): UseWant[] {
    const out: UseWant[] = [];
    for (const u of v.uses) {
      const c = u.node;
      let want: Want = F32;
      if (c.graph === this.graph) {
        if (slotSet(AGNOSTIC_INPUT_SLOTS, c).includes(u.slot)) want = 'any';
        else if (this.converted.has(c) && this.tInputs(c).includes(u.slot)) want = F16;
      }
      out.push({ node: c, slot: u.slot, want });
    }
    if (v.isReturned) {
      if (v.isGraphOutput) out.push({ node: undefined, slot: -1, want: this.fp16Io ? F16 : F32 });
      if (v.returnedBy.size) out.push({ node: undefined, slot: -2, want: F32 });
    }
    return out;
  }

  /** The float32 values of the graph, in order: graph inputs, initializers, node outputs. */
  private floatValues(): Value[] {
    const values: Value[] = [];
    const seen = new Set<Value>();
    const addValue = (v: Value | undefined): void => { if (v && !seen.has(v) && this.isF32(v)) { seen.add(v); values.push(v); } };
    this.graph.inputs.forEach(addValue);
    this.graph.initializers.forEach(addValue);
    for (const n of this.nodes) n.outputs.forEach(addValue);
    return values;
  }

  // ---------------------------------------------------------------- applying

  private setElem(v: Value, t: Prec): void {
    this.cur.set(v, t);
    const ty = withElem(v.type, t);
    if (ty) v.type = ty;
  }

  precOf(v: Value): number | undefined {
    return this.cur.get(v) ?? this.elemOf(v);
  }

  private addCast(patch: Patch, x: Value, to: Prec, hint: string): Value {
    const out = patch.add('Cast', [x], [attr.int('to', to)], { name: hint });
    this.created.add(out.producer!);
    this.report.castsInserted++;
    this.changes++;
    const ty = withElem(x.type, to);
    if (ty) out.type = ty;
    this.cur.set(out, to);
    return out;
  }

  /** The float16 version of flex node `n` made in place: `target` (n itself, or its twin) gets the converted attribute. */
  private convertConstantNode(n: Node, target: Node): void {
    const report = this.report;
    if (n.opType === 'Constant') {
      const r = tensorToFloat16(constantValue(n.outputs[0])!);
      report.saturated += r.saturated;
      report.underflowed += r.underflowed;
      for (const k of [...target.attributes.keys()]) if (k.startsWith('value')) target.attributes.delete(k);
      target.attributes.set('value', attr.tensor('value', r.tensor));
      report.constantsConverted++;
    } else if (n.opType === 'ConstantOfShape') {
      const a = n.attr('value');
      const r = tensorToFloat16(a?.type === 'tensor' ? a.value : Tensor.float32([0], [1]));
      report.saturated += r.saturated;
      target.attributes.set('value', attr.tensor('value', r.tensor));
      report.constantsConverted++;
    } else {
      target.attributes.set('to', attr.int('to', F16));
      report.castsRetargeted++;
    }
  }

  private setVariant(v: Value, p: Prec, made: Value): void {
    if (!this.variants.has(v)) this.variants.set(v, new Map());
    this.variants.get(v)!.set(p, made);
  }

  /** `v` (an original float32 value) in precision `p`, made once and shared. */
  private variant(patch: Patch, v: Value, p: Prec): Value {
    if (this.precOf(v) === p) return v;
    const have = this.variants.get(v)?.get(p);
    if (have) return have;
    let made: Value;
    const prod = v.producer;
    if (prod && prod.domain === '' && prod.opType === 'Cast' && prod.inputs[0] && (this.created.has(prod) || this.isFlexNode(prod) || attrInt(prod.attr('to')) === F16)) {
      // never a Cast on a Cast: cast the source instead
      const src = prod.inputs[0];
      made = this.precOf(src) === p ? src : this.addCast(patch, src, p, `${src.name}_to_${p === F16 ? 'fp16' : 'fp32'}`);
    } else {
      made = this.addCast(patch, v, p, `${v.name}_to_${p === F16 ? 'fp16' : 'fp32'}`);
    }
    this.setVariant(v, p, made);
    return made;
  }

  /** Converted nodes' main-type outputs become float16 (and, with fp16Io, the graph's float inputs). */
  convertNodes(): void {
    for (const n of this.converted) {
      this.report.convertedNodes++;
      this.changes++;
      for (const i of this.tOutputs(n)) this.setElem(n.outputs[i]!, F16);
      if (n.domain === '' && LAYER_NORMS.has(n.opType)) n.attributes.set('stash_type', attr.int('stash_type', 1));
    }
    if (this.fp16Io) {
      for (const v of this.graph.inputs) {
        if (this.isF32(v) && !v.initializer) { this.setElem(v, F16); this.changes++; }
      }
    }
  }

  /** Flex values (initializers, Constant, ConstantOfShape, Cast to float): float16 when a consumer wants it. */
  convertFlexValues(patch: Patch, values: Value[]): void {
    for (const v of values) {
      if (!this.isFlexValue(v)) continue;
      const wants = new Set(this.wantsOf(v).map((w) => w.want).filter((w) => w !== 'any'));
      if (!wants.has(F16)) continue;
      const both = wants.has(F32);
      if (v.initializer) this.convertInitializer(patch, v, both);
      else if (v.producer) this.convertFlexNode(patch, v, v.producer, both);
    }
  }

  private convertInitializer(patch: Patch, v: Value, both: boolean): void {
    const r = tensorToFloat16(v.initializer!);
    this.report.saturated += r.saturated;
    this.report.underflowed += r.underflowed;
    this.report.initializersConverted++;
    this.changes++;
    if (both && v.initializer!.elementCount <= SMALL_CONSTANT) {
      // a float16 copy for the fp16 consumers; the float32 original stays for the others
      const copy = patch.constant(r.tensor, `${v.name}_fp16`);
      this.cur.set(copy, F16);
      this.setVariant(v, F16, copy);
    } else {
      patch.setInitializer(v, r.tensor);
      this.setElem(v, F16);
    }
  }

  private convertFlexNode(patch: Patch, v: Value, prod: Node, both: boolean): void {
    this.changes++;
    if (both && (prod.opType !== 'Constant' || (constantValue(v)?.elementCount ?? 0) <= SMALL_CONSTANT)) {
      // duplicate: a float16 twin of the Constant / ConstantOfShape / Cast
      const out = patch.copy(prod, [...prod.inputs], [...prod.attributes.values()], { name: `${prod.name || prod.opType}_fp16` })[0]!;
      const twin = out.producer!;
      this.created.add(twin);
      this.convertConstantNode(prod, twin);
      const ty = withElem(v.type, F16);
      if (ty) out.type = ty;
      this.cur.set(out, F16);
      this.setVariant(v, F16, out);
    } else {
      this.convertConstantNode(prod, prod);
      this.setElem(v, F16);
    }
  }

  /** Every use whose precision differs from its value's reads the value's variant in that precision. */
  rewireUses(patch: Patch, values: Value[]): void {
    for (const v of values) {
      for (const w of this.wantsOf(v)) {
        if (w.want === 'any' || this.precOf(v) === w.want) continue;
        if (w.node) patch.setInput(w.node, w.slot, this.variant(patch, v, w.want));
        else if (w.slot === -2) patch.replaceReturns(v, this.variant(patch, v, F32));
        else {
          // a graph output: the Cast's output takes the output's name
          const c = this.addCast(patch, v, w.want, `${v.name}_cast`);
          patch.replaceOutput(v, c, { renameFrom: `${v.name}_${w.want === F16 ? 'fp32' : 'fp16'}` });
        }
      }
    }
  }

  /** Apply the decisions: outputs retyped, flex values converted, uses rewired, in one patch. */
  apply(): void {
    const values = this.floatValues();
    this.convertNodes();
    const patch = this.ctx.patch(this.graph);
    this.convertFlexValues(patch, values);
    this.rewireUses(patch, values);
    patch.commit();
  }

  // ---------------------------------------------------------------- tidying

  /** What replaces Cast `n`: its input when it casts to the type that has, a Cast pair's source when they cancel. */
  private castReplacement(n: Node): Value | undefined {
    const x = n.inputs[0], y = n.outputs[0];
    if (!x || !y) return undefined;
    const to = attrInt(n.attr('to'));
    const touched = this.created.has(n) || this.cur.has(x) || this.cur.has(y);
    if (this.precOf(x) === to && touched) return x;
    const p = x.producer;
    if (!p || p.removed || p.domain !== '' || p.opType !== 'Cast' || !p.inputs[0]) return undefined;
    const src = p.inputs[0];
    const mid = this.precOf(x);
    const widened = mid === F32 && this.precOf(src) === F16; // fp16 -> fp32 -> fp16 is lossless
    const floats = new Set<number | undefined>([F32, F16, DataType.DOUBLE]);
    if (this.precOf(src) === to && floats.has(to) && floats.has(mid) && (widened || this.created.has(n) || this.created.has(p))) return src;
    return undefined;
  }

  /** Casts to the type their input has, and Cast pairs that cancel, are removed (one patch each). */
  removeCancellingCasts(): void {
    for (const n of this.graph.nodes) {
      if (n.removed || n.domain !== '' || n.opType !== 'Cast') continue;
      const replacement = this.castReplacement(n);
      if (!replacement) continue;
      const p = n.inputs[0]!.producer;
      const patch = this.ctx.patch(this.graph);
      patch.replace(n.outputs[0]!, replacement);
      try {
        patch.commit();
      } catch (e) {
        if (!(e instanceof PatchError)) throw e;
        this.ctx.explain(`cannot remove ${n}: ${e.message}`);
        continue;
      }
      this.changes++;
      for (const c of [n, p]) {
        if (!c?.removed || c.opType !== 'Cast') continue;
        if (this.created.has(c)) this.report.castsInserted--;
        else this.report.castsRemoved++;
      }
    }
  }

  /** Initializers left without uses (converted copies replaced the originals' only users). */
  removeUnusedInitializers(): void {
    const patch = this.ctx.patch(this.graph);
    for (const v of this.graph.initializers) {
      if (v.uses.length === 0 && !v.isReturned && !v.isGraphInput && (this.cur.has(v) || this.variants.has(v))) patch.removeInitializer(v);
    }
    patch.commit();
  }

  /** The report's counts of what stayed float32: nodes by op, and islands (groups connected by float values). */
  finishReport(): Report {
    const report = this.report, kept = this.keptRelevant;
    report.keptFloat32Nodes = kept.size;
    for (const n of kept) report.keptFloat32[n.qualifiedOp] = (report.keptFloat32[n.qualifiedOp] ?? 0) + 1;
    const parent = new Map<Node, Node>();
    const find = (n: Node): Node => { let r = n; while (parent.get(r) !== r) r = parent.get(r)!; parent.set(n, r); return r; };
    for (const n of kept) parent.set(n, n);
    for (const n of kept) {
      for (const v of n.inputs) {
        const p = v?.producer;
        if (p && kept.has(p)) parent.set(find(p), find(n));
      }
    }
    report.islands = new Set([...kept].map(find)).size;
    report.bytesAfter = constantBytes(this.graph);
    return report;
  }
}

export const convertFp16: Pass = {
  name: 'convert-fp16',
  description: 'convert float32 weights and computation to float16, with float32 islands for ops that overflow or lack fp16 kernels (--quantize fp16)',
  level: 3,
  subgraphs: 'skip',
  emits: ['ai.onnx::Cast'],
  run(graph, ctx) {
    const q = ctx.options.quantize;
    if (q?.mode !== 'fp16') return 0;
    const c = new Fp16Conversion(graph, ctx, q);
    c.markShapeBound();
    c.decide();
    c.apply();
    c.removeCancellingCasts();
    c.removeUnusedInitializers();
    const report = c.finishReport();
    if (q.report) Object.assign(q.report, report);
    else q.report = { ...report };
    return c.changes;
  },
};
