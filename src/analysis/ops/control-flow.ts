/**
 * Rules for If, Loop and Scan: their subgraphs are inferred with ctx.inferSubgraph.
 *
 * Loop-carried values (Loop, Scan states) may change shape from one iteration to the next, so the
 * body is inferred with each carried dim relaxed to a fresh symbol; a dim the body passes through
 * unchanged (or sets to its initial value) is then known to be invariant, and is unified with the
 * initial dim, which makes the body's types exact again. Other dims of the final values are fresh.
 */
import type { Graph, Value } from '../../ir/graph.js';
import type { InferContext, Rule, RuleTable } from '../infer.js';
import { Sym } from '../symbolic.js';
import { tensorInfo, type OutputInfo, type SymType } from '../types.js';
import { BOOL, INT64, normAxis } from './common.js';
import { isEmptySequence } from './sequence.js';

/**
 * The type of a value that is either `a` or `b` (If branches, sequence elements, a loop's first and
 * later iterations): dims that agree are kept, dims that differ become fresh, different ranks
 * make the rank unknown.
 */
export function joinTypes(ctx: InferContext, a: SymType | undefined, b: SymType | undefined): SymType | undefined {
  if (!a || !b) return undefined;
  if (a.kind === 'tensor' && b.kind === 'tensor') {
    const elemType = a.elemType || b.elemType;
    if (!a.shape || !b.shape || a.shape.length !== b.shape.length) return tensorInfo(elemType);
    return tensorInfo(elemType, a.shape.map((d, k) => (d.equals(b.shape![k]!) ? d : ctx.fresh())));
  }
  if ((a.kind === 'sequence' || a.kind === 'optional') && a.kind === b.kind) {
    const elem = a.elem && b.elem ? joinTypes(ctx, a.elem, b.elem) : undefined;
    return elem ? { kind: a.kind, elem } : { kind: a.kind };
  }
  return a.kind === b.kind ? a : undefined;
}

/** Join of several types (undefined if the list is empty or any is unknown). */
export function joinAll(ctx: InferContext, ts: (SymType | undefined)[]): SymType | undefined {
  if (ts.length === 0) return undefined;
  return ts.slice(1).reduce((acc, t) => joinTypes(ctx, acc, t), ts[0]);
}

/** The same type with every dim a fresh symbol (rank and element types kept). */
function relax(ctx: InferContext, t: SymType | undefined): SymType | undefined {
  if (!t) return undefined;
  switch (t.kind) {
    case 'tensor': return t.shape ? tensorInfo(t.elemType, t.shape.map(() => ctx.fresh())) : t;
    case 'sequence': case 'optional': return t.elem ? { kind: t.kind, elem: relax(ctx, t.elem)! } : t;
    default: return t;
  }
}

/** Symbols of a type's dims. */
function symbolsOf(t: SymType | undefined, out = new Set<string>()): Set<string> {
  if (!t) return out;
  if (t.kind === 'tensor') for (const d of t.shape ?? []) for (const s of d.symbols()) out.add(s);
  else if (t.kind === 'sequence' || t.kind === 'optional') symbolsOf(t.elem, out);
  return out;
}

/**
 * The final type of a loop-carried value: `init` on entry, `relaxed` what the body was inferred with,
 * `out` what the body produces. A dim that the body keeps (out = relaxed input dim), or sets to a
 * value that does not depend on the carried values and equals the initial dim, is invariant.
 */
function carried(ctx: InferContext, init: SymType | undefined, relaxed: SymType | undefined, out: SymType | undefined, carriedSyms: Set<string>): SymType | undefined {
  if (!init) return out ? relax(ctx, out) : undefined;
  if (!out || !relaxed) return relax(ctx, init);
  if (init.kind === 'tensor' && relaxed.kind === 'tensor' && out.kind === 'tensor') {
    const elemType = init.elemType || out.elemType;
    if (!init.shape || !out.shape || !relaxed.shape || init.shape.length !== out.shape.length) return tensorInfo(elemType);
    const shape = init.shape.map((d0, k) => {
      const r = ctx.unify(relaxed.shape![k]!, relaxed.shape![k]!); // resolved
      const o = ctx.unify(out.shape![k]!, out.shape![k]!);
      const invariant = o.equals(r) || (o.equals(d0) && ![...o.symbols()].some((s) => carriedSyms.has(s)));
      return invariant ? ctx.unify(relaxed.shape![k]!, d0) : ctx.fresh();
    });
    return tensorInfo(elemType, shape);
  }
  if ((init.kind === 'sequence' || init.kind === 'optional') && relaxed.kind === init.kind && out.kind === init.kind) {
    const elem = carried(ctx, init.elem, relaxed.elem, out.elem, carriedSyms);
    return elem ? { kind: init.kind, elem } : { kind: init.kind };
  }
  // kinds differ (an optional initial value, a sequence from the body): the body's type, relaxed
  return joinTypes(ctx, init, out) ?? relax(ctx, out);
}

function graphAttr(ctx: InferContext, name: string): Graph {
  const a = ctx.attr(name);
  if (a?.type !== 'graph') return ctx.error(`missing graph attribute '${name}'`);
  return a.value;
}

/** The boolean value of a constant input, if known. */
function constBool(ctx: InferContext, i: number): boolean | undefined {
  const c = ctx.constant(i);
  if (!c || c.elementCount !== 1) return undefined;
  return Number((c.toTypedArray() as ArrayLike<number | bigint>)[0]) !== 0;
}

const ifRule: Rule = (ctx) => {
  const cond = constBool(ctx, 0);
  // a known condition (a constant, or a graph input whose value inference was given, like a sample
  // rate): the branch taken gives the types; the other may not even be valid for that value, and
  // its values get types only where it is consistent (see inferDeadSubgraph)
  if (cond !== undefined) {
    const taken = ctx.inferSubgraph(graphAttr(ctx, cond ? 'then_branch' : 'else_branch'), []);
    ctx.inferDeadSubgraph(graphAttr(ctx, cond ? 'else_branch' : 'then_branch'));
    return Array.from({ length: ctx.outputCount }, (_, k): OutputInfo => ({ type: taken[k] }));
  }
  const thenTypes = ctx.inferSubgraph(graphAttr(ctx, 'then_branch'), []);
  const elseTypes = ctx.inferSubgraph(graphAttr(ctx, 'else_branch'), []);
  if (thenTypes.length !== elseTypes.length) ctx.error(`branches have ${thenTypes.length} and ${elseTypes.length} outputs`);
  return Array.from({ length: ctx.outputCount }, (_, k): OutputInfo => ({ type: joinTypes(ctx, thenTypes[k], elseTypes[k]) }));
};

/** True if `v` is the body's cond input passed through (Identity chains) or a constant true. */
function keepsGoing(body: Graph, v: Value | undefined): boolean {
  for (let i = 0; v && i < 16; i++) {
    if (v === body.inputs[1]) return true;
    if (v.initializer) return v.initializer.elementCount === 1 && Number((v.initializer.toTypedArray() as ArrayLike<number | bigint>)[0]) !== 0;
    const p = v.producer;
    if (!p) return false;
    if (p.opType === 'Identity') { v = p.inputs[0]; continue; }
    if (p.opType === 'Constant') {
      const a = p.attr('value');
      return a?.type === 'tensor' && a.value.elementCount === 1 && Number((a.value.toTypedArray() as ArrayLike<number | bigint>)[0]) !== 0;
    }
    return false;
  }
  return false;
}

const loop: Rule = (ctx) => {
  const body = graphAttr(ctx, 'body');
  const nCarried = Math.max(0, ctx.inputCount - 2);
  // an initial empty sequence says nothing of its elements' shapes: the body's output decides
  const empty = Array.from({ length: nCarried }, (_, k) => isEmptySequence(ctx, k + 2));
  const init = Array.from({ length: nCarried }, (_, k) => ctx.type(k + 2));
  const relaxed = init.map((t) => relax(ctx, t));
  const carriedSyms = new Set<string>();
  for (const t of relaxed) symbolsOf(t, carriedSyms);
  const outs = ctx.inferSubgraph(body, [tensorInfo(INT64, []), tensorInfo(BOOL, []), ...relaxed]);
  // the trip count: M, when the loop cannot stop early (cond absent or true, and passed through by the body)
  const m = ctx.has(0) ? ctx.sym(0)?.values[0] : undefined;
  const condOk = !ctx.has(1) || constBool(ctx, 1) === true;
  const trips = m && condOk && keepsGoing(body, body.outputs[0]) ? m : undefined;
  const result: OutputInfo[] = [];
  for (let k = 0; k < nCarried; k++) {
    const out = outs[k + 1];
    if (empty[k] && out?.kind === 'sequence') result.push({ type: out.elem ? { kind: 'sequence', elem: relax(ctx, out.elem)! } : out });
    else result.push({ type: carried(ctx, init[k], relaxed[k], out, carriedSyms) });
  }
  for (let k = 1 + nCarried; k < outs.length; k++) {
    const t = outs[k];
    if (t?.kind !== 'tensor') { result.push({}); continue; }
    const n = trips ?? ctx.fresh();
    result.push({ type: tensorInfo(t.elemType, t.shape ? [n, ...t.shape] : undefined) });
  }
  return result;
};

/** Scan (opset 9+): states, then scan inputs sliced along their scan axes. */
const scan: Rule = (ctx) => {
  if (ctx.opset < 9) return scan8(ctx);
  const body = graphAttr(ctx, 'body');
  const m = ctx.attrInt('num_scan_inputs') ?? ctx.error('missing num_scan_inputs');
  const n = ctx.inputCount - m;
  const inAxes = ctx.attrInts('scan_input_axes') ?? Array.from({ length: m }, () => 0);
  const outAxes = ctx.attrInts('scan_output_axes');
  const init = Array.from({ length: n }, (_, k) => ctx.type(k));
  const relaxed = init.map((t) => relax(ctx, t));
  const carriedSyms = new Set<string>();
  for (const t of relaxed) symbolsOf(t, carriedSyms);
  let len: Sym | undefined;
  const elems = Array.from({ length: m }, (_, j): SymType | undefined => {
    const t = ctx.tensor(n + j);
    if (!t) return undefined;
    if (!t.shape) return tensorInfo(t.elemType);
    const axis = normAxis(ctx, inAxes[j] ?? 0, t.shape.length);
    const d = t.shape[axis]!;
    len = len ? ctx.unify(len, d) : d;
    return tensorInfo(t.elemType, t.shape.filter((_, k) => k !== axis));
  });
  const outs = ctx.inferSubgraph(body, [...relaxed, ...elems]);
  const result: OutputInfo[] = [];
  for (let k = 0; k < n; k++) result.push({ type: carried(ctx, init[k], relaxed[k], outs[k], carriedSyms) });
  const seqLen = len ?? ctx.fresh();
  for (let k = n; k < outs.length; k++) {
    const t = outs[k];
    if (t?.kind !== 'tensor') { result.push({}); continue; }
    if (!t.shape) { result.push({ type: tensorInfo(t.elemType) }); continue; }
    const axis = normAxis(ctx, outAxes?.[k - n] ?? 0, t.shape.length + 1);
    result.push({ type: tensorInfo(t.elemType, [...t.shape.slice(0, axis), seqLen, ...t.shape.slice(axis)]) });
  }
  return result;
};

/** Scan opset 8: inputs have a leading batch dim, scan inputs then a sequence dim. */
function scan8(ctx: InferContext): OutputInfo[] {
  const body = graphAttr(ctx, 'body');
  const m = ctx.attrInt('num_scan_inputs') ?? ctx.error('missing num_scan_inputs');
  const n = ctx.inputCount - 1 - m;
  let batch: Sym | undefined;
  let len: Sym | undefined;
  const init = Array.from({ length: n }, (_, k): SymType | undefined => {
    const t = ctx.tensor(1 + k);
    if (t?.shape?.length) batch = batch ? ctx.unify(batch, t.shape[0]!) : t.shape[0]!;
    return t && tensorInfo(t.elemType, t.shape?.slice(1));
  });
  const relaxed = init.map((t) => relax(ctx, t));
  const carriedSyms = new Set<string>();
  for (const t of relaxed) symbolsOf(t, carriedSyms);
  const elems = Array.from({ length: m }, (_, j): SymType | undefined => {
    const t = ctx.tensor(1 + n + j);
    if (!t) return undefined;
    if (!t.shape || t.shape.length < 2) return tensorInfo(t.elemType);
    batch = batch ? ctx.unify(batch, t.shape[0]!) : t.shape[0]!;
    len = len ? ctx.unify(len, t.shape[1]!) : t.shape[1]!;
    return tensorInfo(t.elemType, t.shape.slice(2));
  });
  const outs = ctx.inferSubgraph(body, [...relaxed, ...elems]);
  const b = batch ?? ctx.fresh();
  const result: OutputInfo[] = [];
  for (let k = 0; k < n; k++) {
    const t = carried(ctx, init[k], relaxed[k], outs[k], carriedSyms);
    result.push({ type: t?.kind === 'tensor' ? tensorInfo(t.elemType, t.shape ? [b, ...t.shape] : undefined) : t });
  }
  // sequence_lens can make sequences shorter than the scan inputs' dim 1 (outputs are padded to it)
  const seqLen = len ?? ctx.fresh();
  for (let k = n; k < outs.length; k++) {
    const t = outs[k];
    result.push(t?.kind === 'tensor' ? { type: tensorInfo(t.elemType, t.shape ? [b, seqLen, ...t.shape] : undefined) } : {});
  }
  return result;
}

export const controlFlowOps: RuleTable = {
  ':If': ifRule,
  ':Loop': loop,
  ':Scan': scan,
};
