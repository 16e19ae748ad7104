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
import type { Pass, PassContext } from '../../src/pass/pass.js';
import { Patch, PatchError } from '../../src/pass/patch.js';
import { constantValue } from '../../src/pass/pattern.js';

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
 * Tables list the element types of the op's FIRST input's constraint; when that input is not of the
 * float type being converted (Where's condition, OneHot's indices), having the op is all they say.
 */
function targetHasFp16Kernel(node: Node, ctx: PassContext, firstInputIsMain: boolean): boolean | undefined {
  const caps = ctx.options.target?.capabilities;
  if (!caps) return undefined;
  const domain = node.domain === '' ? 'ai.onnx' : node.domain;
  if (!caps.domains.includes(domain)) return false;
  const entries = caps.kernels[`${domain}::${node.opType}`];
  if (!entries?.length) return false;
  const version = ctx.opset(node.domain);
  const entry = entries.find(([since, last]) => since <= version && (last === null || version <= last));
  if (!entry) return false;
  const types = entry[2];
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

export const convertFp16: Pass = {
  name: 'convert-fp16',
  description: 'convert float32 weights and computation to float16, with float32 islands for ops that overflow or lack fp16 kernels (--quantize fp16)',
  level: 3,
  subgraphs: 'skip',
  emits: ['ai.onnx::Cast'],
  run(graph, ctx) {
    const q = ctx.options.quantize;
    if (q?.mode !== 'fp16') return 0;
    const fp16Io = q.fp16Io === true;
    const keep = new Set(q.keepFloat ?? []);

    // without shapes: the declared types only
    const inferred = ctx.shapesOrExplain()?.types as Map<Value, { kind: string; elemType?: number }> | undefined;
    /** element type of a value in the original model */
    const origElem = new Map<Value, number | undefined>();
    const elemOf = (v: Value): number | undefined => {
      if (origElem.has(v)) return origElem.get(v);
      let t: number | undefined;
      const s = inferred?.get(v);
      if (s?.kind === 'tensor' && s.elemType) t = s.elemType;
      if (t === undefined && v.type?.kind === 'tensor' && v.type.elemType) t = v.type.elemType;
      if (t === undefined && v.initializer) t = v.initializer.dataType;
      origElem.set(v, t);
      return t;
    };
    const isF32 = (v: Value | undefined): v is Value => v !== undefined && elemOf(v) === F32;

    const nodes = graph.topoOrder();
    const bytesBefore = constantBytes(graph);
    const report: Report = {
      mode: 'fp16', fp16Io, convertedNodes: 0, keptFloat32Nodes: 0, keptFloat32: {}, islands: 0, castsInserted: 0,
      castsRemoved: 0, castsRetargeted: 0, initializersConverted: 0, constantsConverted: 0, saturated: 0, underflowed: 0,
      bytesBefore, bytesAfter: bytesBefore,
    };

    const slotSet = (table: Record<string, readonly number[]>, n: Node): readonly number[] => table[n.qualifiedOp] ?? [];
    /** input slots of `n` that follow its main float type */
    const tInputs = (n: Node): number[] => {
      const fp32 = slotSet(FP32_INPUT_SLOTS, n), agn = slotSet(AGNOSTIC_INPUT_SLOTS, n);
      const out: number[] = [];
      n.inputs.forEach((v, i) => { if (isF32(v) && !fp32.includes(i) && !agn.includes(i)) out.push(i); });
      return out;
    };
    const tOutputs = (n: Node): number[] => {
      const fp32 = slotSet(FP32_OUTPUT_SLOTS, n);
      const out: number[] = [];
      n.outputs.forEach((v, i) => { if (isF32(v) && !fp32.includes(i)) out.push(i); });
      return out;
    };

    /** Constant / ConstantOfShape / Cast to float: their float16 version is cheap to make, so consumers decide. */
    const isFlexNode = (n: Node): boolean => {
      if (n.domain !== '' || !isF32(n.outputs[0])) return false;
      if (n.opType === 'Constant') return constantValue(n.outputs[0])?.dataType === F32;
      if (n.opType === 'ConstantOfShape') { const a = n.attr('value'); return a === undefined || (a.type === 'tensor' && a.value.dataType === F32); }
      if (n.opType === 'Cast') return attrInt(n.attr('to')) === F32;
      return false;
    };
    const isFlexValue = (v: Value): boolean =>
      (v.initializer !== undefined && !v.isGraphInput && v.graph === graph) || (v.producer !== undefined && isFlexNode(v.producer));

    // --- which float32 nodes are only computing shapes (their float results end in Cast to an integer type)
    const shapeBound = new Set<Node>();
    for (let i = nodes.length - 1; i >= 0; i--) {
      const n = nodes[i]!;
      const outs = n.outputs.filter(isF32);
      if (!outs.length || outs.some((v) => v.isReturned)) continue;
      // uses by Shape / Size do not count: they read no values
      let any = false, all = true;
      for (const v of outs) {
        for (const u of v.uses) {
          const c = u.node;
          if (c.graph !== graph) { all = false; break; }
          if (c.domain === '' && (c.opType === 'Shape' || c.opType === 'Size') && u.slot === 0) continue;
          any = true;
          if (c.domain === '' && c.opType === 'Cast' && u.slot === 0) {
            const to = attrInt(c.attr('to'));
            if (to !== F32 && to !== F16 && to !== DataType.DOUBLE && to !== DataType.BFLOAT16) continue;
          }
          if (slotSet(FP32_INPUT_SLOTS, c).includes(u.slot)) continue;
          if (shapeBound.has(c)) continue;
          all = false;
          break;
        }
        if (!all) break;
      }
      if (any && all) shapeBound.add(n);
    }

    // --- decide, in topological order, which nodes compute in float16
    const converted = new Set<Node>();
    const keptRelevant = new Set<Node>();
    let allowed = true;
    /** precision of a float32 value's home (before flex decisions): 'flex' for constants and Cast-to-float */
    const homeOf = (v: Value): Prec | 'flex' => {
      if (isFlexValue(v)) return 'flex';
      if (v.isGraphInput) return fp16Io && !v.initializer ? F16 : F32;
      const p = v.producer;
      if (p && converted.has(p) && tOutputs(p).includes(v.producerSlot ?? -1)) return F16;
      return F32;
    };
    const keepReason = (n: Node): string | undefined => {
      if (keep.has(n.name) || keep.has(n.opType)) return 'quantize.keepFloat';
      if (n.subgraphs().length) return 'has subgraphs';
      if ([...n.attributes.values()].some((a) => a.refAttrName !== undefined)) return 'reference attribute';
      const table = targetHasFp16Kernel(n, ctx, tInputs(n).includes(0));
      if (n.domain === 'com.microsoft' && QUANTIZED_CONTRIB.test(n.opType)) return 'quantized op';
      if (n.domain !== '' && table !== true) return `${n.domain} op without a float16 kernel in the target's table`;
      if (n.domain === '' && LAYER_NORMS.has(n.opType)) return table === true ? undefined : `${n.opType} statistics (no float16 kernel listed)`;
      if (n.domain === '' && FP32_OPS.has(n.opType)) return 'overflows or loses precision in float16';
      if (table === false) return `target '${ctx.options.target?.name}' has no float16 kernel`;
      if (shapeBound.has(n)) return 'computes a shape';
      if (n.outputs.some((v) => v && elemOf(v) === undefined) || n.inputs.some((v) => v && elemOf(v) === undefined)) return 'unknown element types';
      return undefined;
    };
    for (const n of nodes) {
      if (isFlexNode(n)) continue;
      const ti = tInputs(n), to = tOutputs(n);
      if (!ti.length && !to.length) continue; // no float32 data of its main type: integer / shape node
      const reason = keepReason(n);
      let convert = reason === undefined;
      if (convert && n.domain === '' && FOLLOWERS.has(n.opType)) {
        const homes = ti.map((i) => homeOf(n.inputs[i]!)).filter((h) => h !== 'flex');
        convert = homes.length === 0 || homes.includes(F16);
      }
      if (convert && allowed && !ctx.allowRewrite(`convert-fp16: ${n}`)) allowed = false;
      if (convert && allowed) converted.add(n);
      else {
        keptRelevant.add(n);
        if (reason) ctx.explain(`${n} stays float32: ${reason}`);
      }
    }

    // --- what precision each use of a float32 value wants
    type Want = Prec | 'any';
    const wantsOf = (v: Value): { node: Node | undefined; slot: number; want: Want }[] => {
      const out: { node: Node | undefined; slot: number; want: Want }[] = [];
      for (const u of v.uses) {
        const c = u.node;
        let want: Want = F32;
        if (c.graph === graph) {
          if (slotSet(AGNOSTIC_INPUT_SLOTS, c).includes(u.slot)) want = 'any';
          else if (converted.has(c) && tInputs(c).includes(u.slot)) want = F16;
        }
        out.push({ node: c, slot: u.slot, want });
      }
      if (v.isReturned) {
        if (v.isGraphOutput) out.push({ node: undefined, slot: -1, want: fp16Io ? F16 : F32 });
        if (v.returnedBy.size) out.push({ node: undefined, slot: -2, want: F32 });
      }
      return out;
    };

    // collect the float32 values of the graph, in order: graph inputs, initializers, node outputs
    const values: Value[] = [];
    const seen = new Set<Value>();
    const addValue = (v: Value | undefined): void => { if (v && !seen.has(v) && isF32(v)) { seen.add(v); values.push(v); } };
    graph.inputs.forEach(addValue);
    graph.initializers.forEach(addValue);
    for (const n of nodes) n.outputs.forEach(addValue);

    // --- apply: current precision of each float32 value after conversion
    const cur = new Map<Value, Prec>();
    const created = new Set<Node>();
    let changes = 0;
    const setElem = (v: Value, t: Prec): void => {
      cur.set(v, t);
      const ty = withElem(v.type, t);
      if (ty) v.type = ty;
    };
    const precOf = (v: Value): number | undefined => cur.get(v) ?? elemOf(v);

    const addCast = (x: Value, to: Prec, hint: string): Value => {
      const node = graph.addNode({ opType: 'Cast', name: graph.scope.uniqueNode(hint), inputs: [x], outputs: 1, attributes: [attr.int('to', to)] });
      created.add(node);
      report.castsInserted++;
      changes++;
      const out = node.outputs[0]!;
      const ty = withElem(x.type, to);
      if (ty) out.type = ty;
      cur.set(out, to);
      return out;
    };

    // float16 versions of flex values made in place
    const convertConstantNode = (n: Node, target: Node): void => {
      // target: the node whose attribute to set (n itself, or a duplicate)
      if (n.opType === 'Constant') {
        const t = constantValue(n.outputs[0])!;
        const r = tensorToFloat16(t);
        report.saturated += r.saturated;
        report.underflowed += r.underflowed;
        for (const k of [...target.attributes.keys()]) if (k.startsWith('value')) target.attributes.delete(k);
        target.attributes.set('value', attr.tensor('value', r.tensor));
        report.constantsConverted++;
      } else if (n.opType === 'ConstantOfShape') {
        const a = n.attr('value');
        const t = a?.type === 'tensor' ? a.value : Tensor.float32([0], [1]);
        const r = tensorToFloat16(t);
        report.saturated += r.saturated;
        target.attributes.set('value', attr.tensor('value', r.tensor));
        report.constantsConverted++;
      } else {
        target.attributes.set('to', attr.int('to', F16));
        report.castsRetargeted++;
      }
    };

    const variants = new Map<Value, Map<Prec, Value>>();
    /** `v` (an original float32 value) in precision `p`, made once and shared. */
    const variant = (v: Value, p: Prec): Value => {
      if (precOf(v) === p) return v;
      let m = variants.get(v);
      if (!m) variants.set(v, (m = new Map()));
      const have = m.get(p);
      if (have) return have;
      let made: Value;
      const prod = v.producer;
      if (prod && prod.domain === '' && prod.opType === 'Cast' && prod.inputs[0] && (created.has(prod) || isFlexNode(prod) || attrInt(prod.attr('to')) === F16)) {
        // never a Cast on a Cast: cast the source instead
        const src = prod.inputs[0];
        made = precOf(src) === p ? src : addCast(src, p, `${src.name}_to_${p === F16 ? 'fp16' : 'fp32'}`);
      } else {
        made = addCast(v, p, `${v.name}_to_${p === F16 ? 'fp16' : 'fp32'}`);
      }
      m.set(p, made);
      return made;
    };

    // 1. converted nodes: their main-type outputs become float16
    for (const n of converted) {
      report.convertedNodes++;
      changes++;
      for (const i of tOutputs(n)) setElem(n.outputs[i]!, F16);
      if (n.domain === '' && LAYER_NORMS.has(n.opType)) n.attributes.set('stash_type', attr.int('stash_type', 1));
    }
    // 2. graph inputs with fp16Io
    if (fp16Io) {
      for (const v of graph.inputs) {
        if (isF32(v) && !v.initializer) { setElem(v, F16); changes++; }
      }
    }
    // 3. flex values (initializers, Constant, ConstantOfShape, Cast to float): consumers decide
    for (const v of values) {
      if (!isFlexValue(v)) continue;
      const wants = new Set(wantsOf(v).map((w) => w.want).filter((w) => w !== 'any'));
      if (!wants.has(F16)) continue;
      const both = wants.has(F32);
      const prod = v.producer;
      if (v.initializer) {
        const count = v.initializer.elementCount;
        const r = tensorToFloat16(v.initializer);
        report.saturated += r.saturated;
        report.underflowed += r.underflowed;
        report.initializersConverted++;
        changes++;
        if (both && count <= SMALL_CONSTANT) {
          // a float16 copy for the fp16 consumers; the float32 original stays for the others
          const copy = graph.addInitializer(`${v.name}_fp16`, r.tensor);
          cur.set(copy, F16);
          if (!variants.has(v)) variants.set(v, new Map());
          variants.get(v)!.set(F16, copy);
        } else {
          v.initializer = r.tensor;
          setElem(v, F16);
        }
      } else if (prod) {
        changes++;
        if (both && (prod.opType !== 'Constant' || (constantValue(v)?.elementCount ?? 0) <= SMALL_CONSTANT)) {
          // duplicate: a float16 twin of the Constant / ConstantOfShape / Cast
          const twin = graph.addNode({
            opType: prod.opType, name: graph.scope.uniqueNode(`${prod.name || prod.opType}_fp16`), inputs: [...prod.inputs], outputs: 1,
            attributes: [...prod.attributes.values()],
          });
          created.add(twin);
          convertConstantNode(prod, twin);
          const out = twin.outputs[0]!;
          const ty = withElem(v.type, F16);
          if (ty) out.type = ty;
          cur.set(out, F16);
          if (!variants.has(v)) variants.set(v, new Map());
          variants.get(v)!.set(F16, out);
        } else {
          convertConstantNode(prod, prod);
          setElem(v, F16);
        }
      }
    }
    // 4. rewire every use whose precision differs from its value's
    for (const v of values) {
      for (const w of wantsOf(v)) {
        if (w.want === 'any') continue;
        const have = precOf(v);
        if (have === w.want) continue;
        if (w.node) {
          const nv = variant(v, w.want);
          w.node.graph.setInput(w.node, w.slot, nv);
        } else if (w.slot === -2) {
          const nv = variant(v, F32);
          for (const sub of [...v.returnedBy]) sub.outputs.forEach((o, i) => { if (o === v) sub.setOutput(i, nv); });
        } else {
          // a graph output: the Cast's output takes the output's name
          const name = v.name;
          const c = addCast(v, w.want, `${name}_cast`);
          graph.outputs.forEach((o, i) => { if (o === v) graph.setOutput(i, c); });
          graph.rename(v, graph.scope.unique(`${name}_${w.want === F16 ? 'fp32' : 'fp16'}`), { interfaceSwap: true });
          graph.rename(c, name, { interfaceSwap: true });
          if (Object.keys(v.info).length) c.info = v.info;
        }
      }
    }

    // 5. clean up: Casts to the type their input has, and Cast pairs that cancel
    const floats = new Set<number | undefined>([F32, F16, DataType.DOUBLE]);
    for (const n of graph.nodes) {
      if (n.removed || n.domain !== '' || n.opType !== 'Cast') continue;
      const x = n.inputs[0], y = n.outputs[0];
      if (!x || !y) continue;
      const to = attrInt(n.attr('to'));
      let replacement: Value | undefined;
      const touched = created.has(n) || cur.has(x) || cur.has(y);
      if (precOf(x) === to && touched) replacement = x;
      else {
        const p = x.producer;
        if (p && !p.removed && p.domain === '' && p.opType === 'Cast' && p.inputs[0]) {
          const src = p.inputs[0];
          const mid = precOf(x);
          const widened = mid === F32 && precOf(src) === F16; // fp16 -> fp32 -> fp16 is lossless
          if (precOf(src) === to && floats.has(to) && floats.has(mid) && (widened || created.has(n) || created.has(p))) replacement = src;
        }
      }
      if (!replacement) continue;
      const p = x.producer;
      const patch = new Patch(graph);
      patch.replace(y, replacement);
      try {
        patch.commit();
      } catch (e) {
        if (!(e instanceof PatchError)) throw e;
        ctx.explain(`cannot remove ${n}: ${e.message}`);
        continue;
      }
      changes++;
      for (const c of [n, p]) {
        if (!c?.removed || c.opType !== 'Cast') continue;
        if (created.has(c)) report.castsInserted--;
        else report.castsRemoved++;
      }
    }
    // initializers left without uses (converted copies replaced the originals' only users)
    for (const v of graph.initializers) {
      if (v.uses.length === 0 && !v.isReturned && !v.isGraphInput && (cur.has(v) || variants.has(v))) graph.removeInitializer(v);
    }

    // --- report
    report.keptFloat32Nodes = keptRelevant.size;
    for (const n of keptRelevant) report.keptFloat32[n.qualifiedOp] = (report.keptFloat32[n.qualifiedOp] ?? 0) + 1;
    // islands: groups of float32 nodes connected by float values
    const parent = new Map<Node, Node>();
    const find = (n: Node): Node => { let r = n; while (parent.get(r) !== r) r = parent.get(r)!; parent.set(n, r); return r; };
    for (const n of keptRelevant) parent.set(n, n);
    for (const n of keptRelevant) {
      for (const v of n.inputs) {
        const p = v?.producer;
        if (p && keptRelevant.has(p)) parent.set(find(p), find(n));
      }
    }
    report.islands = new Set([...keptRelevant].map(find)).size;
    report.bytesAfter = constantBytes(graph);
    if (q.report) Object.assign(q.report, report);
    else q.report = { ...report };
    return changes;
  },
};
