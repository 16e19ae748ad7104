/**
 * propagate-transposes
 *
 * Before:  y = Transpose(x, perm=p); z = Relu(y); w = Add(z, C); out = Transpose(w, perm=inverse(p))
 * After:   z' = Relu(x); out = Add(z', C')          with C' = C (left-padded to rank r) transposed by inverse(p)
 *
 * Sinks Transposes towards the outputs through ops that commute with a permutation of the axes
 * (tract's change_axes idea), so that pairs meet and cancel:
 *   - unary elementwise ops (Relu, Sigmoid, Cast, Clip, LeakyRelu, ...): Op(T(x)) = T(Op(x))
 *   - broadcasting elementwise ops (Add, Mul, Where, Sum, PRelu, ...): every other operand is a
 *     Transpose with the same perm (it is bypassed), a constant (a NEW initializer, left-padded to
 *     rank r and permuted by inverse(p)), or a value with a single element (broadcasts either way)
 *   - Concat (axis -> p[axis]; every input transposed alike or constant), Split (axis),
 *     Slice (axes; attribute form before opset 10, inputs after), ArgMax/ArgMin,
 *     Reduce* (axes attribute or input, by opset; keepdims=0 composes the output perm),
 *     Squeeze/Unsqueeze (axes attribute before opset 13, input after; the output perm is composed),
 *     Pad (pads permuted; attribute before opset 11; the opset-18 axes input remapped),
 *     Resize (constant roi/scales/sizes permuted, or the opset-18 axes attribute remapped),
 *     Softmax/LogSoftmax/Hardmax from opset 13 (axis -> p[axis]; before 13 the op flattens to 2-D
 *     and does not commute: explained and skipped)
 *   - a Transpose user: the two perms compose (inverse pairs cancel: no node at all)
 *   - Transpose(constant) folds into a new constant (when the constant has no other use, or is small)
 *
 * Formula: y = Transpose(x, p) means y axis i is x axis p[i]; Transpose(Transpose(x, p), s) is
 *   Transpose(x, q) with q[i] = p[s[i]]. An attribute naming axis a of y names axis p[a] of x.
 *
 * Cost rule (when a move fires): count the Transpose nodes the move touches. Before: the moved
 *   Transpose, the same-perm Transposes on other operands that die with it, the Transpose users of
 *   the moved Transpose and the Transpose users of the moved ops' outputs. After: for each output
 *   of a moved op that needs a perm, one shared Transpose if it has any non-Transpose use (or is a
 *   graph output), plus one per Transpose user whose composed perm is not the identity. The move
 *   fires when after <= before. Every path from x then crosses at most as many Transposes as
 *   before, so the count never grows on any path; ties are allowed because sinking is what makes
 *   pairs meet (and a Transpose never moves up, so the pass terminates).
 * Conditions: a Transpose moves only when every use of its output is in the same graph, is not a
 *   graph output, and every user can absorb it (one use is the common case). Axes, pads, scales
 *   given as inputs must be constants. Ops with attributes referring to a function's are left.
 *   A Transpose whose perm is missing (reversal) needs the rank from shape inference.
 */
import { attrInt, attrInts, type Attribute, toAttribute } from '../../src/ir/attribute.js';
import { DataType } from '../../src/ir/dtype.js';
import type { Graph, Node, Value } from '../../src/ir/graph.js';
import { Tensor, transposeTensor } from '../../src/ir/tensor.js';
import type { Pass, PassContext } from '../../src/pass/pass.js';
import { UnsupportedOpError, type Patch } from '../../src/pass/patch.js';
import { constantValue } from '../../src/pass/pattern.js';
import { rankOf } from '../lib/query.js';

// ---------------------------------------------------------------------------------------------
// perms and constant tensors

const identityPerm = (r: number): number[] => Array.from({ length: r }, (_, i) => i);
const reversed = (r: number): number[] => Array.from({ length: r }, (_, i) => r - 1 - i);
const isIdentity = (p: readonly number[]): boolean => p.every((a, i) => a === i);
/** Transpose(Transpose(x, p), s) = Transpose(x, compose(p, s)) */
const compose = (p: readonly number[], s: readonly number[]): number[] => s.map((i) => p[i]!);
function invert(p: readonly number[]): number[] {
  const q = new Array<number>(p.length);
  p.forEach((a, i) => { q[a] = i; });
  return q;
}
function validPerm(p: readonly number[], r: number): boolean {
  if (p.length !== r) return false;
  const seen = new Set<number>();
  return p.every((a) => Number.isInteger(a) && a >= 0 && a < r && !seen.has(a) && (seen.add(a), true));
}

function intValues(t: Tensor | undefined): number[] | undefined {
  if (!t || (t.dataType !== DataType.INT64 && t.dataType !== DataType.INT32)) return undefined;
  if ('segment' in t.extra) return undefined;
  return Array.from(t.toTypedArray() as ArrayLike<number | bigint>, (v) => Number(v));
}

/** An int tensor like `like` (int64 unless it is int32) */
function intTensor(values: number[], like?: Tensor): Tensor {
  return like?.dataType === DataType.INT32 ? Tensor.int32(values) : Tensor.int64(values);
}

// ---------------------------------------------------------------------------------------------
// what a user of the transposed value turns into

interface Plan {
  /** build the op on untransposed inputs; returns one value per old output (undefined where absent) */
  build(patch: Patch): (Value | undefined)[];
  /** per old output: the perm that turns the new output into the old one (null: none needed) */
  outPerms: (number[] | null)[];
  /** same-perm Transposes on other operands that die with this move */
  alsoRemoved: Node[];
  /** the user is itself a Transpose (it disappears) */
  userIsTranspose: boolean;
}

type Maker = (u: Node, env: Env) => Plan | string;

interface Env {
  /** the transposed value and what it came from */
  y: Value;
  x: Value;
  p: number[];
  r: number;
  opset: number;
  ctx: PassContext;
  graph: Graph;
  /** the users of y that move together (an operand computed by one of them is untransposed too) */
  comoved: Set<Node>;
  /** operands that are outputs of comoved users (their perm is checked once every plan is known) */
  pendingUsed: Set<Value>;
  /** at build time: old output of a comoved user -> its untransposed replacement */
  built: Map<Value, Value>;
}

const UNARY = new Set([
  'Relu', 'Sigmoid', 'Tanh', 'Exp', 'Log', 'Abs', 'Neg', 'Sqrt', 'Erf', 'Cast', 'Clip', 'LeakyRelu',
  'Elu', 'Selu', 'Celu', 'HardSigmoid', 'HardSwish', 'Softplus', 'Softsign', 'ThresholdedRelu', 'Mish',
  'Gelu', 'Not', 'Sign', 'Ceil', 'Floor', 'Round', 'Reciprocal', 'Sin', 'Cos', 'Tan', 'Asin', 'Acos',
  'Atan', 'Sinh', 'Cosh', 'Asinh', 'Acosh', 'Atanh', 'IsNaN', 'IsInf', 'Identity', 'BitwiseNot',
]);
/** ops whose first input is the data and the others are scalars that do not broadcast */
const SCALAR_EXTRAS = new Set(['Clip']);
const BROADCASTING = new Set([
  'Add', 'Sub', 'Mul', 'Div', 'Pow', 'Max', 'Min', 'Mean', 'Sum', 'Mod', 'Equal', 'Less', 'Greater',
  'LessOrEqual', 'GreaterOrEqual', 'And', 'Or', 'Xor', 'Where', 'PRelu', 'BitShift', 'BitwiseAnd',
  'BitwiseOr', 'BitwiseXor',
]);
const REDUCE = new Set(['ReduceSum', 'ReduceMean', 'ReduceMax', 'ReduceMin', 'ReduceProd', 'ReduceL1', 'ReduceL2', 'ReduceLogSum', 'ReduceLogSumExp', 'ReduceSumSquare']);
const SOFTMAX = new Set(['Softmax', 'LogSoftmax', 'Hardmax']);

function withAttrs(u: Node, changes: Record<string, unknown>, drop: string[] = []): Attribute[] {
  const out: Attribute[] = [];
  const seen = new Set<string>();
  for (const a of u.attributes.values()) {
    if (drop.includes(a.name)) continue;
    if (a.name in changes) { out.push(toAttribute(a.name, changes[a.name])); seen.add(a.name); } else out.push(a);
  }
  for (const [k, v] of Object.entries(changes)) if (!seen.has(k)) out.push(toAttribute(k, v));
  return out;
}

/** Rebuild `u` with new inputs and attributes (a copy: the op is in the graph already, so no target check). */
function rebuild(patch: Patch, u: Node, inputs: (Value | undefined)[], attrs: Attribute[]): (Value | undefined)[] {
  const outs = patch.copy(u, inputs, attrs);
  return u.outputs.map((o, i) => (o ? outs[i] : undefined));
}

const normAxis = (a: number, r: number): number => (a < 0 ? a + r : a);

/** A value with exactly one element (any rank): broadcasting makes its layout irrelevant. */
function singleElement(v: Value, ctx: PassContext, maxRank: number): boolean {
  const c = constantValue(v);
  if (c) return c.elementCount === 1 && c.dims.length <= maxRank;
  const t = ctx.shapesOrExplain()?.types.get(v);
  return t?.kind === 'tensor' && t.shape !== undefined && t.shape.length <= maxRank && t.shape.every((d) => d.value === 1);
}

/** The Transpose producing `v` with perm `p`, if any. */
function sameTranspose(v: Value, p: number[], ctx: PassContext): Node | undefined {
  const n = v.producer;
  if (!n || n.opType !== 'Transpose' || n.domain !== '' || !n.inputs[0]) return undefined;
  const perm = transposePerm(n, ctx);
  return perm && perm.length === p.length && perm.every((a, i) => a === p[i]) ? n : undefined;
}

function transposePerm(n: Node, ctx: PassContext): number[] | undefined {
  const x = n.inputs[0];
  if (!x || hasRefAttrs(n)) return undefined;
  const p = attrInts(n.attr('perm'));
  // the declared rank (or a constant's) first: no shape inference when the model says
  const r = p?.length ?? rankOf(undefined, x) ?? rankOf(ctx.shapesOrExplain(), x);
  if (r === undefined) return undefined;
  const perm = p ?? reversed(r);
  return validPerm(perm, r) ? perm : undefined;
}

const hasRefAttrs = (n: Node): boolean => [...n.attributes.values()].some((a) => a.refAttrName !== undefined || a.type === 'undefined');

/**
 * The untransposed form of one operand of a broadcasting op whose output has rank r:
 * x itself, another same-perm Transpose's input, a single-element value, or a new constant.
 */
function operand(v: Value, env: Env, removed: Node[], consts: Map<Value, Tensor | null>): string | undefined {
  if (v === env.y) return undefined;
  if (v.producer && env.comoved.has(v.producer)) { env.pendingUsed.add(v); return undefined; }
  if (singleElement(v, env.ctx, env.r)) return undefined;
  const t = sameTranspose(v, env.p, env.ctx);
  if (t) {
    if (!removed.includes(t)) removed.push(t);
    return undefined;
  }
  const c = constantValue(v);
  if (c) {
    if (c.dims.length > env.r) return `constant '${v.name}' has a higher rank than the transposed operand`;
    if (!consts.has(v)) {
      const padded = c.reshaped([...new Array<number>(env.r - c.dims.length).fill(1), ...c.dims]);
      const permuted = transposeTensor(padded, invert(env.p));
      if (!permuted) return `cannot permute constant '${v.name}'`;
      consts.set(v, permuted);
    }
    return undefined;
  }
  return `operand '${v.name}' is neither transposed the same way nor a constant (moving would add a Transpose on it)`;
}

/** Map an operand to its untransposed replacement (after operand() accepted it). */
function mapOperand(v: Value | undefined, env: Env, consts: Map<Value, Tensor | null>, made: Map<Value, Value>, patch: Patch): Value | undefined {
  if (!v) return v;
  if (v === env.y) return env.x;
  const b = env.built.get(v);
  if (b) return b;
  const t = sameTranspose(v, env.p, env.ctx);
  if (t && !singleElement(v, env.ctx, env.r)) return t.inputs[0]!;
  const c = consts.get(v);
  if (c) {
    let m = made.get(v);
    if (!m) { m = patch.constant(c, `${v.name}_perm`); made.set(v, m); }
    return m;
  }
  return v;
}

function simple(u: Node, env: Env, attrs: Attribute[], outPerms: (number[] | null)[], inputs?: (Value | undefined)[]): Plan {
  return {
    build: (patch) => rebuild(patch, u, inputs ?? u.inputs.map((v) => (v === env.y ? env.x : v)), attrs),
    outPerms,
    alsoRemoved: [],
    userIsTranspose: false,
  };
}

/** The perm for the output of an op that removes axes `gone` (y space) from y: see Squeeze/Reduce keepdims=0. */
function permAfterRemoving(p: number[], gone: number[]): number[] {
  const goneX = new Set(gone.map((a) => p[a]!));
  const keptX = identityPerm(p.length).filter((a) => !goneX.has(a));
  const keptY = identityPerm(p.length).filter((i) => !gone.includes(i));
  return keptY.map((i) => keptX.indexOf(p[i]!));
}

/** Axes from an attribute or a constant input; `undefined`: absent; string: a reason it is unknown. */
function readAxes(u: Node, asInput: boolean, slot: number, name = 'axes'): number[] | undefined | string {
  if (!asInput) return attrInts(u.attr(name));
  const v = u.inputs[slot];
  if (!v || v.name === '') return undefined;
  const vals = intValues(constantValue(v));
  return vals ?? `${name} of ${u} is not a constant`;
}

function axesInPlan(u: Node, env: Env, asInput: boolean, slot: number, axes: number[], changes: Record<string, unknown> = {}, outPerms?: (number[] | null)[]): Plan {
  const mapped = axes.map((a) => env.p[a]!);
  if (!asInput) return simple(u, env, withAttrs(u, { axes: mapped, ...changes }), outPerms ?? [env.p]);
  const like = constantValue(u.inputs[slot]) ?? constantValue(u.inputs[1]);
  const t1 = u.inputs[1]?.type;
  const dtype = like?.dataType ?? (t1?.kind === 'tensor' ? t1.elemType : DataType.INT64);
  return {
    build: (patch) => {
      const inputs = u.inputs.map((v) => (v === env.y ? env.x : v));
      while (inputs.length <= slot) inputs.push(undefined);
      inputs[slot] = patch.constant(dtype === DataType.INT32 ? Tensor.int32(mapped) : Tensor.int64(mapped), 'axes_perm');
      return rebuild(patch, u, inputs, withAttrs(u, changes));
    },
    outPerms: outPerms ?? [env.p],
    alsoRemoved: [],
    userIsTranspose: false,
  };
}

const makers: Record<string, Maker> = {};

for (const op of UNARY) {
  makers[op] = (u, env) => {
    if (u.inputs.slice(1).some((v) => v === env.y)) return `${u} uses the transposed value as a parameter`;
    if (SCALAR_EXTRAS.has(op) || u.inputs.length === 1) return simple(u, env, [...u.attributes.values()], [env.p]);
    return `${u} has extra inputs`;
  };
}

for (const op of BROADCASTING) {
  makers[op] = (u, env) => {
    const removed: Node[] = [];
    const consts = new Map<Value, Tensor | null>();
    for (const v of u.inputs) {
      if (!v) continue;
      const why = operand(v, env, removed, consts);
      if (why) return `${u}: ${why}`;
    }
    // a removed Transpose dies only if this node is its only user
    const alsoRemoved = removed.filter((t) => t.outputs[0]!.uses.every((use) => use.node === u) && !t.outputs[0]!.isReturned);
    return {
      build: (patch) => {
        const made = new Map<Value, Value>();
        return rebuild(patch, u, u.inputs.map((v) => mapOperand(v, env, consts, made, patch)), [...u.attributes.values()]);
      },
      outPerms: [env.p],
      alsoRemoved,
      userIsTranspose: false,
    };
  };
}

makers.Transpose = (u, env) => {
  const s = transposePerm(u, env.ctx);
  if (!s || s.length !== env.r) return `${u}: perm unknown`;
  return {
    build: () => [env.x],
    outPerms: [compose(env.p, s)],
    alsoRemoved: [],
    userIsTranspose: true,
  };
};

makers.Concat = (u, env) => {
  const axis = normAxis(attrInt(u.attr('axis'), 0), env.r);
  const removed: Node[] = [];
  const consts = new Map<Value, Tensor | null>();
  for (const v of u.inputs) {
    if (!v || v === env.y) continue;
    if (v.producer && env.comoved.has(v.producer)) { env.pendingUsed.add(v); continue; }
    const t = sameTranspose(v, env.p, env.ctx);
    if (t) { if (!removed.includes(t)) removed.push(t); continue; }
    const c = constantValue(v);
    if (c && c.dims.length === env.r) {
      const permuted = transposeTensor(c, invert(env.p));
      if (!permuted) return `${u}: cannot permute constant '${v.name}'`;
      consts.set(v, permuted);
      continue;
    }
    return `${u}: input '${v.name}' is not transposed the same way (moving would add a Transpose on it)`;
  }
  const alsoRemoved = removed.filter((t) => t.outputs[0]!.uses.every((use) => use.node === u) && !t.outputs[0]!.isReturned);
  return {
    build: (patch) => {
      const made = new Map<Value, Value>();
      const inputs = u.inputs.map((v) => {
        if (!v || v === env.y) return v === env.y ? env.x : v;
        const b = env.built.get(v);
        if (b) return b;
        const t = sameTranspose(v, env.p, env.ctx);
        return t ? t.inputs[0]! : mapOperand(v, env, consts, made, patch);
      });
      return rebuild(patch, u, inputs, withAttrs(u, { axis: env.p[axis]! }));
    },
    outPerms: [env.p],
    alsoRemoved,
    userIsTranspose: false,
  };
};

makers.Split = (u, env) => {
  if (u.inputs.slice(1).includes(env.y)) return `${u} uses the transposed value as split sizes`;
  const axis = normAxis(attrInt(u.attr('axis'), 0), env.r);
  return simple(u, env, withAttrs(u, { axis: env.p[axis]! }), u.outputs.map(() => env.p));
};

for (const op of ['ArgMax', 'ArgMin']) {
  makers[op] = (u, env) => {
    const axis = normAxis(attrInt(u.attr('axis'), 0), env.r);
    const keep = attrInt(u.attr('keepdims'), 1) !== 0;
    return simple(u, env, withAttrs(u, { axis: env.p[axis]! }), [keep ? env.p : permAfterRemoving(env.p, [axis])]);
  };
}

for (const op of SOFTMAX) {
  makers[op] = (u, env) => {
    if (env.opset < 13) return `${u}: before opset 13 ${op} flattens to 2-D around its axis and does not commute with a Transpose`;
    const axis = normAxis(attrInt(u.attr('axis'), -1), env.r);
    return simple(u, env, withAttrs(u, { axis: env.p[axis]! }), [env.p]);
  };
}

for (const op of REDUCE) {
  makers[op] = (u, env) => {
    if (u.inputs.slice(1).includes(env.y)) return `${u} uses the transposed value as axes`;
    const asInput = op === 'ReduceSum' ? env.opset >= 13 : env.opset >= 18;
    const read = readAxes(u, asInput, 1);
    if (typeof read === 'string') return read;
    const keep = attrInt(u.attr('keepdims'), 1) !== 0;
    const axes = (read ?? []).map((a) => normAxis(a, env.r));
    if (axes.some((a) => a < 0 || a >= env.r)) return `${u}: axes out of range`;
    if (axes.length === 0) {
      const noop = asInput && attrInt(u.attr('noop_with_empty_axes'), 0) !== 0;
      // no-op: the layout passes through; reduce over everything: the result has no layout
      return simple(u, env, [...u.attributes.values()], [noop ? env.p : null]);
    }
    return axesInPlan(u, env, asInput, 1, axes, {}, [keep ? env.p : permAfterRemoving(env.p, axes)]);
  };
}

makers.Squeeze = (u, env) => {
  const asInput = env.opset >= 13;
  const read = readAxes(u, asInput, 1);
  if (typeof read === 'string') return read;
  if (read === undefined) return `${u}: squeeze without axes (which dims are 1 is not looked up)`;
  const axes = read.map((a) => normAxis(a, env.r));
  return axesInPlan(u, env, asInput, 1, axes, {}, [permAfterRemoving(env.p, axes)]);
};

makers.Unsqueeze = (u, env) => {
  const asInput = env.opset >= 13;
  const read = readAxes(u, asInput, 1);
  if (typeof read === 'string') return read;
  if (read === undefined) return `${u}: no axes`;
  const out = env.r + read.length;
  const axes = read.map((a) => normAxis(a, out));
  const kept = identityPerm(out).filter((i) => !axes.includes(i));
  const q = identityPerm(out);
  kept.forEach((pos, k) => { q[pos] = kept[env.p[k]!]!; });
  // the axes keep their positions: the new node uses the same axes (attribute or input) as before
  return simple(u, env, [...u.attributes.values()], [q]);
};

makers.Slice = (u, env) => {
  if (u.inputs.slice(1).includes(env.y)) return `${u} uses the transposed value as a parameter`;
  if (env.opset < 10) {
    const starts = attrInts(u.attr('starts'));
    if (!starts) return `${u}: no starts`;
    const axes = (attrInts(u.attr('axes')) ?? identityPerm(starts.length)).map((a) => normAxis(a, env.r));
    return simple(u, env, withAttrs(u, { axes: axes.map((a) => env.p[a]!) }), [env.p]);
  }
  const read = readAxes(u, true, 3);
  if (typeof read === 'string') return read;
  let axes = read;
  if (axes === undefined) {
    const starts = u.inputs[1];
    const n = starts ? (constantValue(starts)?.dims[0] ?? undefined) : undefined;
    const t = starts?.type;
    const len = n ?? (t?.kind === 'tensor' && typeof t.shape?.[0] === 'number' ? t.shape[0] : undefined);
    if (len === undefined) return `${u}: no axes and the number of starts is unknown`;
    axes = identityPerm(len);
  }
  return axesInPlan(u, env, true, 3, axes.map((a) => normAxis(a, env.r)));
};

/** pads [b0..b(r-1), e0..e(r-1)] for y -> for x */
function permutePads(pads: number[], p: number[]): number[] {
  const r = p.length;
  const out = new Array<number>(2 * r).fill(0);
  for (let i = 0; i < r; i++) { out[p[i]!] = pads[i]!; out[r + p[i]!] = pads[r + i]!; }
  return out;
}

makers.Pad = (u, env) => {
  if (u.inputs.slice(1).includes(env.y)) return `${u} uses the transposed value as a parameter`;
  if (env.opset < 11) {
    const pads = attrInts(u.attr('pads')) ?? attrInts(u.attr('paddings'));
    if (!pads || pads.length !== 2 * env.r) return `${u}: pads unknown`;
    const key = u.attr('pads') ? 'pads' : 'paddings';
    return simple(u, env, withAttrs(u, { [key]: permutePads(pads, env.p) }), [env.p]);
  }
  const axesRead = readAxes(u, true, 3);
  if (typeof axesRead === 'string') return axesRead;
  if (axesRead !== undefined) return axesInPlan(u, env, true, 3, axesRead.map((a) => normAxis(a, env.r)));
  const padsT = constantValue(u.inputs[1]);
  const pads = intValues(padsT);
  if (!pads || pads.length !== 2 * env.r) return `${u}: pads are not a constant`;
  return {
    build: (patch) => {
      const inputs = u.inputs.map((v) => (v === env.y ? env.x : v));
      inputs[1] = patch.constant(Tensor.int64(permutePads(pads, env.p)), 'pads_perm');
      return rebuild(patch, u, inputs, [...u.attributes.values()]);
    },
    outPerms: [env.p],
    alsoRemoved: [],
    userIsTranspose: false,
  };
};

makers.Resize = (u, env) => {
  if (u.inputs.slice(1).includes(env.y)) return `${u} uses the transposed value as a parameter`;
  if (env.opset >= 18 && u.attr('axes')) {
    const axes = attrInts(u.attr('axes'))!.map((a) => normAxis(a, env.r));
    return simple(u, env, withAttrs(u, { axes: axes.map((a) => env.p[a]!) }), [env.p]);
  }
  const inv = invert(env.p);
  // the new value at x axis j is the old one at y axis inv[j]
  const perVec = (vals: Float32Array | number[], n: number): number[] | undefined => {
    if (vals.length !== n * env.r) return undefined;
    const out: number[] = [];
    for (let h = 0; h < n; h++) for (let j = 0; j < env.r; j++) out.push(Number(vals[h * env.r + inv[j]!]));
    return out;
  };
  const slots: [number, number][] = env.opset < 11 ? [[1, 1]] : [[1, 2], [2, 1], [3, 1]]; // [slot, halves]
  const newConsts = new Map<number, Tensor>();
  for (const [slot, halves] of slots) {
    const v = u.inputs[slot];
    if (!v || v.name === '') continue;
    const c = constantValue(v);
    if (!c) return `${u}: input ${slot} is not a constant`;
    if (c.elementCount === 0) continue;
    const vals = c.dataType === DataType.FLOAT ? (c.toTypedArray() as Float32Array) : intValues(c);
    if (!vals) return `${u}: input ${slot} has an unexpected type`;
    const pv = perVec(vals, halves);
    if (!pv) return `${u}: input ${slot} does not have ${halves * env.r} values`;
    newConsts.set(slot, c.dataType === DataType.FLOAT ? Tensor.float32(pv) : intTensor(pv, c));
  }
  return {
    build: (patch) => {
      const inputs = u.inputs.map((v) => (v === env.y ? env.x : v));
      for (const [slot, t] of newConsts) inputs[slot] = patch.constant(t, `${u.inputs[slot]!.name}_perm`);
      return rebuild(patch, u, inputs, [...u.attributes.values()]);
    },
    outPerms: [env.p],
    alsoRemoved: [],
    userIsTranspose: false,
  };
};

// ---------------------------------------------------------------------------------------------
// the pass

/** Transpose users of `o` (default domain, known perm), and whether `o` has other uses. */
function splitUses(o: Value, graph: Graph, ctx: PassContext, skip: Set<Node>): { tus: [Node, number[]][]; other: boolean } {
  const tus: [Node, number[]][] = [];
  let other = o.isReturned;
  for (const use of o.uses) {
    const n = use.node;
    if (skip.has(n)) continue; // a user moving along: it takes the untransposed value
    const s = n.opType === 'Transpose' && n.domain === '' && n.graph === graph ? transposePerm(n, ctx) : undefined;
    if (!s) other = true;
    else if (!tus.some(([t]) => t === n)) tus.push([n, s]);
  }
  return { tus, other };
}

function tryFoldConstant(t: Node, graph: Graph, ctx: PassContext): number {
  const x = t.inputs[0]!;
  const c = constantValue(x);
  if (!c) return 0;
  const perm = transposePerm(t, ctx);
  if (!perm || perm.length !== c.dims.length) return 0;
  const alone = x.uses.length === 1 && !x.isReturned;
  if (!alone && c.elementCount > 4096) {
    ctx.explain(`${t}: constant '${x.name}' has other uses and ${c.elementCount} elements: not duplicated`);
    return 0;
  }
  const folded = transposeTensor(c, perm);
  if (!folded) {
    ctx.explain(`${t}: cannot transpose constant '${x.name}' of this element type`);
    return 0;
  }
  if (!ctx.allowRewrite(`propagate-transposes: fold ${t} into constant '${x.name}'`)) return -1;
  const patch = ctx.patch(graph);
  patch.replace(t.outputs[0]!, patch.constant(folded, `${x.name}_t`));
  return patch.commit();
}

/** Try to sink Transpose `t` past all of its users. 1 if it moved, 0 if not, -1 when rewrites are used up. */
function trySink(t: Node, graph: Graph, ctx: PassContext): number {
  const x = t.inputs[0];
  const y = t.outputs[0];
  if (!x || !y || hasRefAttrs(t)) return 0;
  const p = transposePerm(t, ctx);
  if (!p) return 0;
  if (constantValue(x)) return tryFoldConstant(t, graph, ctx);
  if (y.uses.length === 0) return 0;
  if (y.isReturned) {
    ctx.explain(`${t}: its output '${y.name}' is a graph output`);
    return 0;
  }
  if (isIdentity(p)) return 0; // eliminate-noop-transpose's job
  const users: Node[] = [];
  for (const use of y.uses) if (!users.includes(use.node)) users.push(use.node);
  const env: Env = { y, x, p, r: p.length, opset: ctx.opset(''), ctx, graph, comoved: new Set(users), pendingUsed: new Set(), built: new Map() };
  const plans: [Node, Plan][] = [];
  for (const u of users) {
    if (u.graph !== graph) { ctx.explain(`${t}: '${y.name}' is used inside a subgraph`); return 0; }
    if (u.domain !== '' || hasRefAttrs(u)) { ctx.explain(`${t}: ${u} cannot absorb a Transpose`); return 0; }
    const maker = makers[u.opType];
    if (!maker) { ctx.explain(`${t}: ${u} does not commute with a Transpose; it stays before it`); return 0; }
    const plan = maker(u, env);
    if (typeof plan === 'string') { ctx.explain(`${t}: ${plan}`); return 0; }
    plans.push([u, plan]);
  }
  // an operand computed by another moving user must come out of it with the same perm
  for (const v of env.pendingUsed) {
    const plan = plans.find(([u]) => u === v.producer)![1];
    const q = plan.outPerms[v.producerSlot] ?? null;
    if (!q || q.length !== p.length || q.some((a, i) => a !== p[i])) {
      ctx.explain(`${t}: '${v.name}' would come out of ${v.producer} with another layout`);
      return 0;
    }
  }
  // build producers first
  const order: [Node, Plan][] = [];
  const pending = [...plans];
  while (pending.length) {
    const i = pending.findIndex(([u]) => u.inputs.every((v) => !v?.producer || !env.comoved.has(v.producer) || order.some(([w]) => w === v.producer)));
    if (i < 0) return 0; // cannot happen in a DAG
    order.push(pending.splice(i, 1)[0]!);
  }
  // cost: Transpose nodes touched, before and after (see the header)
  const removed = new Set<Node>([t]);
  let before = 1;
  let after = 0;
  for (const [u, plan] of plans) {
    if (plan.userIsTranspose) before++;
    for (const r of plan.alsoRemoved) if (!removed.has(r)) { removed.add(r); before++; }
    u.outputs.forEach((o, i) => {
      const q = plan.outPerms[i] ?? null;
      if (!o || q === null || isIdentity(q)) return;
      const { tus, other } = splitUses(o, graph, ctx, env.comoved);
      before += tus.length;
      after += (other ? 1 : 0) + tus.filter(([, s]) => !isIdentity(compose(q, s))).length;
    });
  }
  if (after > before) {
    ctx.explain(`${t}: moving it past ${plans.map(([u]) => u.opType).join(', ')} would make ${after} Transposes out of ${before}`);
    return 0;
  }
  if (!ctx.allowRewrite(`propagate-transposes: sink ${t} past ${plans.map(([u]) => String(u)).join(', ')}`)) return -1;
  const patch = ctx.patch(graph);
  try {
    buildSunk(patch, t, order, env);
  } catch (e) {
    if (!(e instanceof UnsupportedOpError)) throw e;
    ctx.explain(`${t}: ${e.message}`);
    return 0;
  }
  return patch.commit();
}

/** Build the moved users (producers first) and route their results, through Transposes where a layout differs. */
function buildSunk(patch: Patch, t: Node, order: [Node, Plan][], env: Env): void {
  const { graph, ctx } = env;
  for (const [u, plan] of order) {
    const outs = plan.build(patch);
    u.outputs.forEach((o, i) => {
      const n = outs[i];
      if (!o || !n) return;
      env.built.set(o, n);
      const q = plan.outPerms[i] ?? null;
      if (q === null || isIdentity(q)) { patch.replace(o, n); return; }
      const { tus, other } = splitUses(o, graph, ctx, env.comoved);
      for (const [tu, s] of tus) {
        const c = compose(q, s);
        patch.replace(tu.outputs[0]!, isIdentity(c) ? n : patch.add('Transpose', [n], { perm: c }, { name: tu.name || 'Transpose' }));
      }
      if (other) patch.replace(o, patch.add('Transpose', [n], { perm: q }, { name: t.name || 'Transpose' }));
    });
    // u dies with the replacements of its outputs (or of its outputs' Transpose users)
  }
}

export const propagateTransposes: Pass = {
  name: 'propagate-transposes',
  description: 'sink Transposes through ops that commute with a permutation, so that inverse pairs meet and cancel',
  level: 1,
  subgraphs: 'recurse',
  run(graph, ctx) {
    let changes = 0;
    // a Transpose never moves up, so this ends; the cap is a guard
    for (let round = 0; round < 64; round++) {
      let moved = 0;
      for (const node of graph.nodes) {
        if (node.removed || node.opType !== 'Transpose' || node.domain !== '') continue;
        const n = trySink(node, graph, ctx);
        if (n < 0) return changes + moved;
        if (n > 0) { moved += n; ctx.invalidate(); }
      }
      changes += moved;
      if (moved === 0) break;
      graph.toposort();
    }
    return changes;
  },
};
