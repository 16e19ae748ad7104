/**
 * Where to split a model between a device (edge) and the cloud.
 *
 * A cut is a partition of the main graph's computing nodes into an edge part that is closed under
 * "produced before" (every producer of an edge node's input is on the edge) and a cloud part. What
 * crosses the network per inference: the values the edge computes that the cloud reads, plus the
 * graph inputs the cloud still reads (an attention mask: the device has it and must send it).
 * Constants (initializers, and nodes computed from constants only) never cross: they are copied
 * to whichever side uses them.
 *
 * Candidates come from two walks over the graph's DAG:
 *   - per value v: edge = every node that does not (transitively) read v, cloud = the rest. When
 *     v is an articulation value (every input-to-output path goes through it) only v crosses;
 *   - per topological position i: edge = the first i computing nodes. Branched graphs (skip
 *     connections, residual + mask) give small sets of 2-3 values here.
 * Cuts with more than `maxValues` crossing values, or with a graph output on the edge, are dropped.
 *
 * Estimated latency = edge FLOPs / edge rate + RTT + crossing bytes * 8 / bandwidth + cloud FLOPs / cloud rate.
 */
import { evaluateNode } from '../analysis/evaluator.js';
import { inferShapes, type InferResult } from '../analysis/infer.js';
import { RULES } from '../analysis/ops/index.js';
import { modelCost } from '../analysis/cost.js';
import { Sym } from '../analysis/symbolic.js';
import { dataTypeBits, dataTypeName } from '../ir/dtype.js';
import type { Node, Value } from '../ir/graph.js';
import type { Model } from '../ir/model.js';

export class SplitError extends Error {}

export interface CrossingValue {
  name: string;
  /** element type name (float32, int64, ...) */
  dtype: string;
  /** shape with --dim pinned dims (symbols left as text) */
  shape: (number | string)[];
  /** bytes per inference (unpinned symbols counted as 1) */
  bytes: number;
  /** true when the value is a graph input the cloud reads directly (the device sends it as is) */
  graphInput: boolean;
}

export interface Cut {
  /** computing nodes on the edge (indices into SplitAnalysis.nodes) */
  edge: Uint8Array;
  crossing: CrossingValue[];
  bytes: number;
  /** bytes as an expression of the unpinned dims */
  bytesExpr: string;
  edgeFlops: number;
  cloudFlops: number;
  /** FLOPs by op type on each side */
  edgeFlopsByOp: Record<string, number>;
  cloudFlopsByOp: Record<string, number>;
  edgeNodes: number;
  cloudNodes: number;
  /** how the candidate was found */
  kind: 'value' | 'position' | 'manual';
}

export interface SplitAnalysis {
  model: Model;
  dims: Record<string, number>;
  /** main-graph nodes in topological order */
  nodes: Node[];
  /** nodes computed from constants only (folded on whichever side needs them) */
  isStatic: Uint8Array;
  flops: Float64Array;
  totalFlops: number;
  /** symbols of the dims left unpinned (counted as 1 in numbers) */
  unpinned: string[];
  infer: InferResult;
  /** consumers (node indices) of each value, subgraph uses counted at their owning node */
  consumers: Map<Value, number[]>;
}

/** The main-graph node that `n` belongs to (itself, or the node owning its subgraph). */
function mainNode(n: Node, main: Model['graph']): Node {
  let cur = n;
  while (cur.graph !== main && cur.graph.owner) cur = cur.graph.owner;
  return cur;
}

function symNumber(s: Sym, ones: ReadonlyMap<string, Sym>): number {
  const v = s.subst(ones).value;
  return v ?? NaN;
}

export function analyzeSplit(model: Model, dims: Record<string, number> = {}): SplitAnalysis {
  const g = model.graph;
  const infer = inferShapes(model, RULES, { dims, evaluate: evaluateNode, apply: false });
  const cost = modelCost(model, infer, { dims });
  const nodes = g.topoOrder();
  const index = new Map<Node, number>(nodes.map((n, i) => [n, i]));
  const unpinnedSet = new Set<string>();
  for (const e of cost.nodes) for (const s of e.cost.flops.symbols()) unpinnedSet.add(s);
  for (const t of infer.types.values()) if (t.kind === 'tensor') for (const d of t.shape ?? []) for (const s of d.symbols()) unpinnedSet.add(s);
  const ones = new Map([...unpinnedSet].map((s) => [s, Sym.ONE]));
  const flops = new Float64Array(nodes.length);
  for (const e of cost.nodes) {
    const i = index.get(mainNode(e.node, g));
    if (i === undefined) continue;
    const f = symNumber(e.cost.flops, ones);
    if (Number.isFinite(f)) flops[i]! += f;
  }
  const isStatic = new Uint8Array(nodes.length);
  const staticValue = (v: Value): boolean => v.isConstant || (v.producer !== undefined && isStatic[index.get(v.producer) ?? -1] === 1);
  nodes.forEach((n, i) => {
    const ins = [...n.inputs.filter((v): v is Value => v !== undefined), ...n.capturedValues()];
    if (ins.every(staticValue) && !(n.domain === '' && /^Random/.test(n.opType))) isStatic[i] = 1;
  });
  const consumers = new Map<Value, number[]>();
  const addUses = (v: Value): void => {
    const out: number[] = [];
    for (const u of v.uses) {
      const i = index.get(mainNode(u.node, g));
      if (i !== undefined && !out.includes(i)) out.push(i);
    }
    consumers.set(v, out);
  };
  for (const v of g.inputs) if (!v.isConstant) addUses(v);
  for (const n of nodes) for (const v of n.outputs) if (v) addUses(v);
  let totalFlops = 0;
  for (const f of flops) totalFlops += f;
  return { model, dims, nodes, isStatic, flops, totalFlops, unpinned: [...unpinnedSet].sort(), infer, consumers };
}

function crossingOf(a: SplitAnalysis, v: Value, graphInput: boolean): CrossingValue & { expr: Sym } {
  const t = a.infer.types.get(v);
  const ones = new Map(a.unpinned.map((s) => [s, Sym.ONE]));
  if (t?.kind !== 'tensor' || !t.shape) {
    return { name: v.name, dtype: t?.kind === 'tensor' ? dataTypeName(t.elemType) : '?', shape: [], bytes: NaN, graphInput, expr: Sym.ZERO };
  }
  const bits = dataTypeBits(t.elemType) ?? 32;
  let count = Sym.ONE;
  for (const d of t.shape) count = count.mul(d);
  // bytes when whole (every type of 8 bits or more), else bits / 8 rounded up
  const expr = bits % 8 === 0 ? count.mul(bits / 8) : count.mul(bits);
  const n = symNumber(expr, ones);
  return { name: v.name, dtype: dataTypeName(t.elemType), shape: t.shape.map((d) => d.toDim()), bytes: bits % 8 === 0 ? n : Math.ceil(n / 8), graphInput, expr: bits % 8 === 0 ? expr.mul(8) : expr };
}

function bytesText(crossing: { expr: Sym }[]): string {
  let e = Sym.ZERO;
  for (const c of crossing) e = e.add(c.expr);
  const bytes = e.floorDiv(8);
  return bytes.toString();
}

/** The cut for an edge set (a mask over a.nodes; static nodes are ignored). undefined when not a valid cut. */
export function cutFromEdge(a: SplitAnalysis, edge: Uint8Array, kind: Cut['kind'], maxValues = Infinity): Cut | undefined {
  const g = a.model.graph;
  let edgeNodes = 0, cloudNodes = 0, edgeFlops = 0, cloudFlops = 0;
  const edgeFlopsByOp: Record<string, number> = {}, cloudFlopsByOp: Record<string, number> = {};
  for (let i = 0; i < a.nodes.length; i++) {
    if (a.isStatic[i]) continue;
    const f = a.flops[i]!, op = a.nodes[i]!.opType;
    if (edge[i]) { edgeNodes++; edgeFlops += f; if (f) edgeFlopsByOp[op] = (edgeFlopsByOp[op] ?? 0) + f; }
    else { cloudNodes++; cloudFlops += f; if (f) cloudFlopsByOp[op] = (cloudFlopsByOp[op] ?? 0) + f; }
  }
  // a side that computes nothing is no split: that is the all-cloud or all-device reference
  if (edgeNodes === 0 || cloudNodes === 0 || edgeFlops === 0 || cloudFlops === 0) return undefined;
  const onCloud = (i: number): boolean => !a.isStatic[i] && !edge[i];
  const crossing: (CrossingValue & { expr: Sym })[] = [];
  for (const v of g.inputs) {
    if (v.isConstant) continue;
    if ((a.consumers.get(v) ?? []).some(onCloud)) {
      crossing.push(crossingOf(a, v, true));
      if (crossing.length > maxValues) return undefined;
    }
  }
  for (let i = 0; i < a.nodes.length; i++) {
    if (a.isStatic[i] || !edge[i]) continue;
    for (const v of a.nodes[i]!.outputs) {
      if (!v) continue;
      if (v.isGraphOutput) return undefined; // outputs must come from the cloud
      if ((a.consumers.get(v) ?? []).some(onCloud)) {
        // a consumer on the cloud whose producer must precede: the edge set must be closed
        crossing.push(crossingOf(a, v, false));
        if (crossing.length > maxValues) return undefined;
      }
    }
  }
  // closed under producers: no edge node reads a value computed on the cloud
  for (let i = 0; i < a.nodes.length; i++) {
    if (a.isStatic[i] || edge[i]) continue;
    for (const v of a.nodes[i]!.outputs) if (v && (a.consumers.get(v) ?? []).some((j) => edge[j] && !a.isStatic[j])) return undefined;
  }
  let expr = Sym.ZERO;
  for (const c of crossing) expr = expr.add(c.expr);
  const bytes = crossing.reduce((s, c) => s + c.bytes, 0);
  return {
    edge, kind, edgeNodes, cloudNodes, edgeFlops, cloudFlops, edgeFlopsByOp, cloudFlopsByOp, bytes,
    bytesExpr: crossing.every((c) => c.expr.equals(Sym.ZERO) || Number.isFinite(c.bytes)) && expr.value !== undefined ? String(Math.ceil(expr.value / 8)) : bytesText(crossing),
    crossing: crossing.map(({ expr: _e, ...c }) => c),
  };
}

/** Edge = every computing node that does not (transitively) read any of `values`, plus the producers of the values and their ancestors. */
function edgeBefore(a: SplitAnalysis, values: Value[]): Uint8Array {
  const desc = new Uint8Array(a.nodes.length);
  const stack: number[] = [];
  for (const v of values) for (const j of a.consumers.get(v) ?? []) if (!desc[j]) { desc[j] = 1; stack.push(j); }
  while (stack.length) {
    const i = stack.pop()!;
    for (const out of a.nodes[i]!.outputs) if (out) for (const j of a.consumers.get(out) ?? []) if (!desc[j]) { desc[j] = 1; stack.push(j); }
  }
  // the producers of the values, and what they need, stay on the edge (one value may feed another)
  const index = new Map<Node, number>(a.nodes.map((n, i) => [n, i]));
  const anc = new Uint8Array(a.nodes.length);
  for (const v of values) { const i = v.producer ? index.get(v.producer) : undefined; if (i !== undefined && !anc[i]) { anc[i] = 1; stack.push(i); } }
  while (stack.length) {
    const n = a.nodes[stack.pop()!]!;
    for (const v of [...n.inputs, ...n.capturedValues()]) {
      const j = v?.producer ? index.get(v.producer) : undefined;
      if (j !== undefined && !anc[j]) { anc[j] = 1; stack.push(j); }
    }
  }
  const edge = new Uint8Array(a.nodes.length);
  for (let i = 0; i < a.nodes.length; i++) edge[i] = (desc[i] && !anc[i]) || a.isStatic[i] ? 0 : 1;
  return edge;
}

export interface CandidateOptions {
  /** most values crossing (default 3) */
  maxValues?: number;
}

/** Every candidate cut, deduplicated by what crosses (the one with fewer edge FLOPs kept). */
export function candidateCuts(a: SplitAnalysis, opts: CandidateOptions = {}): Cut[] {
  const maxValues = opts.maxValues ?? 3;
  const found = new Map<string, Cut>();
  const add = (c: Cut | undefined): void => {
    if (!c || !Number.isFinite(c.bytes)) return;
    const key = c.crossing.map((x) => x.name).sort().join('\u0000');
    const prev = found.get(key);
    if (!prev || c.edgeFlops > prev.edgeFlops || (c.edgeFlops === prev.edgeFlops && c.kind === 'value' && prev.kind !== 'value')) found.set(key, c);
  };
  // single values: articulation values give a cut where only they cross
  for (let i = 0; i < a.nodes.length; i++) {
    if (a.isStatic[i]) continue;
    for (const v of a.nodes[i]!.outputs) {
      if (!v || v.isGraphOutput || !(a.consumers.get(v) ?? []).length) continue;
      add(cutFromEdge(a, edgeBefore(a, [v]), 'value', maxValues));
    }
  }
  // topological positions: small sets for branched graphs
  const live = new Map<Value, number>();
  const remaining = new Map<Value, number>();
  for (const [v, cs] of a.consumers) remaining.set(v, cs.filter((j) => !a.isStatic[j]).length);
  for (const v of a.model.graph.inputs) if (!v.isConstant && remaining.get(v)) live.set(v, 1);
  const edge = new Uint8Array(a.nodes.length);
  let outputsOnEdge = 0;
  for (let i = 0; i < a.nodes.length; i++) {
    if (a.isStatic[i]) continue;
    const n = a.nodes[i]!;
    edge[i] = 1;
    const ins = new Set([...n.inputs.filter((v): v is Value => v !== undefined), ...n.capturedValues()]);
    for (const v of ins) {
      const r = remaining.get(v);
      if (r === undefined) continue;
      remaining.set(v, r - 1);
      if (r - 1 === 0) live.delete(v);
    }
    for (const v of n.outputs) {
      if (!v) continue;
      if (v.isGraphOutput) outputsOnEdge++;
      if (remaining.get(v)) live.set(v, 1);
    }
    if (outputsOnEdge === 0 && live.size > 0 && live.size <= maxValues) add(cutFromEdge(a, edge.slice(), 'position', maxValues));
  }
  return [...found.values()];
}

/** An integer tensor of a few elements: shape arithmetic, not data. */
export function isShapeValue(x: CrossingValue): boolean {
  return (x.dtype === 'int64' || x.dtype === 'int32') && x.bytes <= 64;
}

/** The cut where exactly `names` (and any graph inputs the cloud reads) cross. */
export function cutAt(a: SplitAnalysis, names: string[]): Cut {
  const g = a.model.graph;
  const values = names.map((name) => {
    const v = g.local(name);
    if (!v) throw new SplitError(`--at: no value '${name}' in the main graph`);
    if (v.isConstant) throw new SplitError(`--at: '${name}' is a constant; constants never cross`);
    return v;
  });
  const c = cutFromEdge(a, edgeBefore(a, values), 'manual');
  if (!c) throw new SplitError(`--at ${names.join(',')}: not a cut (nothing left on one side, or a graph output would be on the edge)`);
  // small integer shape values (a Reshape's target shape) may cross along: they cost a few bytes
  const extra = c.crossing.filter((x) => !x.graphInput && !names.includes(x.name) && !isShapeValue(x));
  if (extra.length) throw new SplitError(`--at ${names.join(',')}: does not separate inputs from outputs; ${extra.map((x) => `'${x.name}'`).join(', ')} would cross too`);
  return c;
}

// ---------------------------------------------------------------- latency

export interface Hardware {
  edgeGflops: number;
  cloudGflops: number;
  /** bits per second */
  bandwidth: number;
  rttMs: number;
}

export const DEFAULT_HARDWARE: Hardware = { edgeGflops: 50, cloudGflops: 2000, bandwidth: 20e6, rttMs: 30 };

export interface Estimate {
  edgeMs: number;
  networkMs: number;
  cloudMs: number;
  totalMs: number;
}

export function estimate(edgeFlops: number, bytes: number, cloudFlops: number, hw: Hardware): Estimate {
  const edgeMs = (edgeFlops / (hw.edgeGflops * 1e9)) * 1e3;
  const cloudMs = (cloudFlops / (hw.cloudGflops * 1e9)) * 1e3;
  const networkMs = hw.rttMs + ((bytes * 8) / hw.bandwidth) * 1e3;
  return { edgeMs, networkMs, cloudMs, totalMs: edgeMs + networkMs + cloudMs };
}

export function estimateCut(c: Cut, hw: Hardware): Estimate {
  return estimate(c.edgeFlops, c.bytes, c.cloudFlops, hw);
}

/** The references: everything on the device (nothing crosses) and everything in the cloud (the inputs cross). */
export function referenceEstimates(a: SplitAnalysis, hw: Hardware): { edgeOnly: Estimate; cloudOnly: Estimate & { bytes: number } } {
  const inputBytes = a.model.graph.inputs.filter((v) => !v.isConstant).reduce((s, v) => s + crossingOf(a, v, true).bytes, 0);
  const e = estimate(a.totalFlops, 0, 0, hw);
  return { edgeOnly: { ...e, networkMs: 0, totalMs: e.edgeMs }, cloudOnly: { ...estimate(0, inputBytes, a.totalFlops, hw), bytes: inputBytes } };
}

/** Bandwidth: `20Mbit/s`, `1Gbit/s`, `100Mbps`, `10MB/s` (bytes), `5e6` (bits/s). Returns bits per second. */
export function parseBandwidth(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?(?:e[+-]?\d+)?)\s*([kmgt]?)(i?)(bit|bps|b|byte)?(\/s|ps)?\s*$/i.exec(text);
  if (!m) throw new SplitError(`bandwidth '${text}' is not a rate like 20Mbit/s, 1Gbit/s or 10MB/s`);
  const prefix = m[2]!.toLowerCase();
  const base = m[3] ? 1024 : 1000;
  const mult = prefix === '' ? 1 : base ** ('kmgt'.indexOf(prefix) + 1);
  const unit = m[4] ?? '';
  const bytes = unit === 'byte' || unit === 'B';
  const v = Number(m[1]) * mult * (bytes ? 8 : 1);
  if (!(v > 0)) throw new SplitError(`bandwidth '${text}' must be positive`);
  return v;
}

export function formatBandwidth(bits: number): string {
  for (const [u, f] of [['Gbit/s', 1e9], ['Mbit/s', 1e6], ['kbit/s', 1e3]] as const) if (bits >= f) return `${+(bits / f).toPrecision(4)}${u}`;
  return `${bits}bit/s`;
}

export function formatBytes(n: number): string {
  if (!Number.isFinite(n)) return '?';
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(2)} MiB`;
}

/** Bytes of the crossing values once put on the wire in this format (floats shrink; other types go as they are). */
export function wireBytes(c: Cut, wire: 'fp32' | 'fp16' | 'int8'): number {
  if (wire === 'fp32') return c.bytes;
  return c.crossing.reduce((s, x) => s + (x.dtype === 'float32' && !x.graphInput ? x.bytes / (wire === 'fp16' ? 2 : 4) : x.bytes), 0);
}

/** A table of cuts with the estimated latency at each bandwidth. */
export function formatCutTable(a: SplitAnalysis, cuts: Cut[], hw: Hardware, bandwidths: number[]): string {
  const rows: string[][] = [['#', 'crossing values', 'bytes', 'edge GFLOPs', 'cloud GFLOPs', ...bandwidths.map((b) => `ms @${formatBandwidth(b)}`)]];
  const name = (x: CrossingValue): string => {
    const n = x.name.length > 40 ? `${x.name.slice(0, 18)}...${x.name.slice(-19)}` : x.name;
    return `${n}${x.graphInput ? ' (input)' : ''} ${x.dtype}[${x.shape.join(',')}]`;
  };
  const gf = (f: number): string => (f / 1e9).toFixed(3);
  cuts.forEach((c, i) => rows.push([String(i + 1), c.crossing.map(name).join(' + '), formatBytes(c.bytes), gf(c.edgeFlops), gf(c.cloudFlops), ...bandwidths.map((b) => estimateCut(c, { ...hw, bandwidth: b }).totalMs.toFixed(1))]));
  const ref = bandwidths.map((b) => referenceEstimates(a, { ...hw, bandwidth: b }));
  rows.push(['-', 'all in the cloud (inputs cross)', formatBytes(ref[0]!.cloudOnly.bytes), gf(0), gf(a.totalFlops), ...ref.map((r) => r.cloudOnly.totalMs.toFixed(1))]);
  rows.push(['-', 'all on the device', '0 B', gf(a.totalFlops), gf(0), ...ref.map((r) => r.edgeOnly.totalMs.toFixed(1))]);
  const widths = rows[0]!.map((_, j) => Math.max(...rows.map((r) => r[j]!.length)));
  const line = (r: string[]): string => r.map((cell, j) => (j === 1 ? cell.padEnd(widths[j]!) : cell.padStart(widths[j]!))).join('  ').trimEnd();
  return [line(rows[0]!), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)].join('\n');
}
