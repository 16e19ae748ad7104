/**
 * Rules for sequence and optional ops. A sequence's type has one element type: when its elements
 * have different shapes, the dims that differ are relaxed to fresh symbols.
 *
 * Besides the type, the rules track what they know of a sequence value in `known`: its length, and
 * the type of each element when every position is known (SequenceConstruct, SequenceInsert at the
 * end or at a constant position, SplitToSequence with constant sizes). That makes SequenceAt with a
 * constant position, SequenceLength and ConcatFromSequence exact.
 */
import { DataType } from '../../ir/dtype.js';
import type { Graph, Value } from '../../ir/graph.js';
import type { ValueType } from '../../ir/types.js';
import type { InferContext, Rule, RuleTable } from '../infer.js';
import { Sym } from '../symbolic.js';
import { tensorInfo, type OutputInfo, type SymType } from '../types.js';
import { INT64, normAxis, withSym } from './common.js';
import { joinAll, joinTypes } from './control-flow.js';

interface SeqKnowledge {
  length?: number;
  /** element types by position, when all are known */
  elems?: SymType[];
}

/** What the sequence rules know of the sequences they produced (by value; rewritten on every run). */
const known = new WeakMap<Value, SeqKnowledge>();

function resolveType(ctx: InferContext, t: SymType): SymType {
  switch (t.kind) {
    case 'tensor': return t.shape ? tensorInfo(t.elemType, t.shape.map((d) => ctx.unify(d, d))) : t;
    case 'sequence': case 'optional': return t.elem ? { kind: t.kind, elem: resolveType(ctx, t.elem) } : t;
    default: return t;
  }
}

/** True if input i is a sequence known to be empty (its element type says nothing). */
export function isEmptySequence(ctx: InferContext, i: number): boolean {
  return knowledgeOf(ctx, i).length === 0;
}

function knowledgeOf(ctx: InferContext, i: number): SeqKnowledge {
  const v = ctx.node.inputs[i];
  const k = v ? known.get(v) : undefined;
  if (!k || ctx.type(i)?.kind !== 'sequence') return {};
  return k.elems ? { length: k.elems.length, elems: k.elems.map((t) => resolveType(ctx, t)) } : { ...(k.length !== undefined ? { length: k.length } : {}) };
}

/** Record what is known of output 0 and return its type. */
function produce(ctx: InferContext, elem: SymType | undefined, k: SeqKnowledge): OutputInfo {
  const v = ctx.node.outputs[0];
  if (v) {
    if (k.elems) known.set(v, { length: k.elems.length, elems: k.elems });
    else if (k.length !== undefined) known.set(v, { length: k.length });
    else known.delete(v);
  }
  return { type: elem ? { kind: 'sequence', elem } : { kind: 'sequence' } };
}

function seqElem(ctx: InferContext, i: number): SymType | undefined {
  const t = ctx.type(i);
  return t?.kind === 'sequence' ? t.elem : undefined;
}

/** A constant scalar position, normalized against a known length. */
function position(ctx: InferContext, i: number, length: number | undefined, insert: boolean): number | undefined {
  if (!ctx.has(i)) return undefined;
  const p = ctx.ints(i)?.[0];
  if (p === undefined || length === undefined) return undefined;
  const q = p < 0 ? p + length : p;
  if (q < 0 || q > (insert ? length : length - 1)) ctx.error(`position ${p} out of range for a sequence of length ${length}`);
  return q;
}

const sequenceConstruct: Rule = (ctx) => {
  const elems = Array.from({ length: ctx.inputCount }, (_, i) => ctx.type(i));
  const all = elems.every((t) => t) ? (elems as SymType[]) : undefined;
  return [produce(ctx, joinAll(ctx, elems), all ? { elems: all } : { length: elems.length })];
};

const sequenceEmpty: Rule = (ctx) => [produce(ctx, tensorInfo(ctx.attrInt('dtype', DataType.FLOAT)), { elems: [] })];

const sequenceAt: Rule = (ctx) => {
  const k = knowledgeOf(ctx, 0);
  const p = position(ctx, 1, k.length, false);
  if (k.elems && p !== undefined) return [{ type: k.elems[p] }];
  if (k.elems && k.elems.length) return [{ type: joinAll(ctx, k.elems) }];
  return [{ type: seqElem(ctx, 0) }];
};

const sequenceInsert: Rule = (ctx) => {
  const k = knowledgeOf(ctx, 0);
  const t = ctx.type(1);
  // inserting into a sequence known to be empty: the element type is the tensor's
  const elem = k.length === 0 ? t : joinTypes(ctx, seqElem(ctx, 0), t);
  const length = k.length === undefined ? undefined : k.length + 1;
  const p = ctx.has(2) ? position(ctx, 2, k.length, true) : k.length;
  if (k.elems && t && p !== undefined) {
    const elems = k.elems.slice();
    elems.splice(p, 0, t);
    return [produce(ctx, elem, { elems })];
  }
  return [produce(ctx, elem, length === undefined ? {} : { length })];
};

const sequenceErase: Rule = (ctx) => {
  const k = knowledgeOf(ctx, 0);
  const length = k.length === undefined ? undefined : k.length - 1;
  const p = ctx.has(1) ? position(ctx, 1, k.length, false) : length;
  if (k.elems && p !== undefined) {
    const elems = k.elems.slice();
    elems.splice(p, 1);
    return [produce(ctx, elems.length ? joinAll(ctx, elems) : seqElem(ctx, 0), { elems })];
  }
  return [produce(ctx, seqElem(ctx, 0), length === undefined ? {} : { length })];
};

const sequenceLength: Rule = (ctx) => {
  const n = knowledgeOf(ctx, 0).length;
  return [withSym(tensorInfo(INT64, []), n === undefined ? undefined : [Sym.const(n)], [])];
};

const splitToSequence: Rule = (ctx) => {
  const t = ctx.tensor(0);
  if (!t) return [produce(ctx, undefined, {})];
  if (!t.shape) return [produce(ctx, tensorInfo(t.elemType), {})];
  const rank = t.shape.length;
  const axis = normAxis(ctx, ctx.attrInt('axis', 0), rank);
  const d = t.shape[axis]!;
  const part = (len: Sym): SymType => {
    const s = t.shape!.slice();
    s[axis] = len;
    return tensorInfo(t.elemType, s);
  };
  if (!ctx.has(1)) {
    // pieces of size 1; keepdims=0 removes the axis
    const keep = ctx.attrInt('keepdims', 1) === 1;
    const elem = keep ? part(Sym.ONE) : tensorInfo(t.elemType, t.shape.filter((_, k) => k !== axis));
    const n = d.value;
    return [produce(ctx, elem, n === undefined ? {} : { elems: Array.from({ length: n }, () => elem) })];
  }
  const splitShape = ctx.shape(1);
  const sizes = ctx.sym(1)?.values;
  if (splitShape && splitShape.length === 0) {
    // a scalar: pieces of that size, the last one smaller when it does not divide
    const s = sizes?.[0]?.value;
    const n = d.value;
    if (s !== undefined && s > 0 && n !== undefined) {
      const elems = Array.from({ length: Math.ceil(n / s) }, (_, k) => part(Sym.const(Math.min(s, n - k * s))));
      return [produce(ctx, joinAll(ctx, elems) ?? part(Sym.ZERO), { elems })];
    }
    return [produce(ctx, part(ctx.fresh()), {})];
  }
  if (sizes) {
    const elems = sizes.map((len) => part(len));
    return [produce(ctx, joinAll(ctx, elems) ?? part(ctx.fresh()), { elems })];
  }
  const count = splitShape?.[0]?.value;
  return [produce(ctx, part(ctx.fresh()), count === undefined ? {} : { length: count })];
};

const concatFromSequence: Rule = (ctx) => {
  const k = knowledgeOf(ctx, 0);
  const elem = seqElem(ctx, 0);
  if (elem?.kind !== 'tensor') return [];
  const newAxis = ctx.attrInt('new_axis', 0) === 1;
  const axisAttr = ctx.attrInt('axis') ?? ctx.error('missing axis attribute');
  const elems = k.elems?.filter((t) => t.kind === 'tensor');
  if (!elem.shape) return [{ type: tensorInfo(elem.elemType) }];
  const rank = elem.shape.length;
  if (newAxis) {
    const axis = normAxis(ctx, axisAttr, rank + 1);
    const n = k.length === undefined ? ctx.fresh() : Sym.const(k.length);
    return [{ type: tensorInfo(elem.elemType, [...elem.shape.slice(0, axis), n, ...elem.shape.slice(axis)]) }];
  }
  const axis = normAxis(ctx, axisAttr, rank);
  const out = elem.shape.slice();
  const shapes = elems?.map((t) => (t.kind === 'tensor' ? t.shape : undefined));
  out[axis] = shapes && shapes.length && shapes.every((s) => s?.length === rank) ? shapes.reduce((a, s) => a.add(s![axis]!), Sym.ZERO) : ctx.fresh();
  return [{ type: tensorInfo(elem.elemType, out) }];
};

const sequenceMap: Rule = (ctx) => {
  const a = ctx.attr('body');
  const body: Graph = a?.type === 'graph' ? a.value : ctx.error("missing graph attribute 'body'");
  const length = knowledgeOf(ctx, 0).length;
  const inputs = Array.from({ length: ctx.inputCount }, (_, i) => {
    const t = ctx.type(i);
    return t?.kind === 'sequence' ? t.elem : t;
  });
  const outs = ctx.inferSubgraph(body, inputs);
  return Array.from({ length: ctx.outputCount }, (_, k): OutputInfo => {
    const v = ctx.node.outputs[k];
    if (v) {
      if (length === undefined) known.delete(v);
      else known.set(v, { length });
    }
    const t = outs[k];
    return { type: t ? { kind: 'sequence', elem: t } : { kind: 'sequence' } };
  });
};

/** An IR type (the Optional op's `type` attribute) as a SymType; unknown dims are fresh. */
function fromIr(ctx: InferContext, t: ValueType): SymType {
  switch (t.kind) {
    case 'tensor': return tensorInfo(t.elemType, t.shape?.map((d) => (d === null ? ctx.fresh() : Sym.from(d))));
    case 'sequence': return t.elem ? { kind: 'sequence', elem: fromIr(ctx, t.elem) } : { kind: 'sequence' };
    case 'optional': return t.elem ? { kind: 'optional', elem: fromIr(ctx, t.elem) } : { kind: 'optional' };
    default: return { kind: 'other', type: t };
  }
}

const optional: Rule = (ctx) => {
  const a = ctx.attr('type');
  const elem = ctx.has(0) ? ctx.type(0) : a?.type === 'type_proto' ? fromIr(ctx, a.value) : undefined;
  return [{ type: elem ? { kind: 'optional', elem } : { kind: 'optional' } }];
};

const optionalGetElement: Rule = (ctx) => {
  const t = ctx.type(0);
  // opset 18 also accepts a plain tensor or sequence, returned as is
  return [{ type: t?.kind === 'optional' ? t.elem : t }];
};

const optionalHasElement: Rule = () => [{ type: tensorInfo(DataType.BOOL, []) }];

export const sequenceOps: RuleTable = {
  ':SequenceConstruct': sequenceConstruct,
  ':SequenceEmpty': sequenceEmpty,
  ':SequenceAt': sequenceAt,
  ':SequenceInsert': sequenceInsert,
  ':SequenceErase': sequenceErase,
  ':SequenceLength': sequenceLength,
  ':SplitToSequence': splitToSequence,
  ':ConcatFromSequence': concatFromSequence,
  ':SequenceMap': sequenceMap,
  ':Optional': optional,
  ':OptionalGetElement': optionalGetElement,
  ':OptionalHasElement': optionalHasElement,
};
