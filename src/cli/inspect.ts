/** `retarget inspect`: what a model is, in numbers. */
import { modelCost } from '../analysis/cost.js';
import { evaluateNode } from '../analysis/evaluator.js';
import { formatSymType, inferShapes } from '../analysis/infer.js';
import { RULES } from '../analysis/ops/index.js';
import type { Int64 } from '../onnx/codec.js';
import type { ExternalFileUse } from '../onnx/external.js';
import { dataTypeName } from '../ir/dtype.js';
import type { Graph } from '../ir/graph.js';
import type { Model } from '../ir/model.js';
import { formatType, type ValueType } from '../ir/types.js';

export interface ValueSummary { name: string; type: string; elemType?: string; shape?: (number | string | null)[] | null }

export interface ModelSummary {
  file: string;
  fileSize: number;
  irVersion: number | string;
  producer: { name: string | null; version: string | null };
  domain: string | null;
  modelVersion: number | string | null;
  docString: string | null;
  opsets: { domain: string; version: number }[];
  inputs: ValueSummary[];
  outputs: ValueSummary[];
  /** nodes of the main graph */
  nodeCount: number;
  /** nodes in all graphs, subgraphs included (functions not included) */
  nodeCountTotal: number;
  opHistogram: Record<string, number>;
  parameters: {
    /** elements of all initializers */
    count: number;
    initializers: number;
    bytes: number;
    bytesByDtype: Record<string, number>;
    /** tensors held by Constant nodes (not counted above) */
    constantNodes: { count: number; elements: number; bytes: number };
  };
  /** every subgraph (nested ones too, `depth` 1 and deeper), in graph order */
  subgraphs: { node: string; op: string; attribute: string; nodes: number; depth: number }[];
  /** subgraphs by the op that holds them: how many such nodes, how many graphs, and the nodes directly in those graphs */
  subgraphsByOp: Record<string, { ops: number; graphs: number; nodes: number }>;
  functions: { name: string; domain: string; nodes: number }[];
  externalData: ExternalFileUse[];
  metadata: Record<string, string>;
}

function jsonInt(v: Int64): number | string {
  return typeof v === 'bigint' ? v.toString() : v;
}

function summarizeValue(name: string, t: ValueType | undefined): ValueSummary {
  const s: ValueSummary = { name, type: formatType(t) };
  if (t && (t.kind === 'tensor' || t.kind === 'sparse_tensor')) {
    s.elemType = dataTypeName(t.elemType);
    s.shape = t.shape ?? null;
  }
  return s;
}

export function summarize(model: Model, file: string, fileSize: number, externalData: ExternalFileUse[]): ModelSummary {
  const hist = new Map<string, number>();
  const byDtype = new Map<string, number>();
  let params = 0, initCount = 0, paramBytes = 0;
  const constants = { count: 0, elements: 0, bytes: 0 };
  const subgraphs: ModelSummary['subgraphs'] = [];
  const byOp = new Map<string, { ops: number; graphs: number; nodes: number }>();
  let total = 0;
  const visit = (g: Graph, depth: number): void => {
    for (const v of g.initializers) {
      const t = v.initializer;
      if (!t) continue;
      initCount++;
      params += t.elementCount;
      const bytes = t.byteLength ?? 0;
      paramBytes += bytes;
      const k = dataTypeName(t.dataType);
      byDtype.set(k, (byDtype.get(k) ?? 0) + bytes);
    }
    for (const n of g.nodes) {
      total++;
      hist.set(n.qualifiedOp, (hist.get(n.qualifiedOp) ?? 0) + 1);
      const value = n.attr('value');
      if (n.opType === 'Constant' && n.domain === '' && value?.type === 'tensor') {
        constants.count++;
        constants.elements += value.value.elementCount;
        constants.bytes += value.value.byteLength ?? 0;
      }
      let holds = false;
      for (const a of n.attributes.values()) {
        const gs = a.type === 'graph' ? [a.value] : a.type === 'graphs' ? a.value : [];
        for (const s of gs) {
          subgraphs.push({ node: n.name, op: n.opType, attribute: a.name, nodes: s.nodeCount, depth });
          const e = byOp.get(n.opType) ?? { ops: 0, graphs: 0, nodes: 0 };
          byOp.set(n.opType, e);
          if (!holds) e.ops++;
          holds = true;
          e.graphs++;
          e.nodes += s.nodeCount;
          visit(s, depth + 1);
        }
      }
    }
  };
  visit(model.graph, 0);
  const sorted = [...hist.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  return {
    file,
    fileSize,
    irVersion: jsonInt(model.irVersion),
    producer: { name: model.producerName ?? null, version: model.producerVersion ?? null },
    domain: model.domain ?? null,
    modelVersion: model.modelVersion === undefined ? null : jsonInt(model.modelVersion),
    docString: model.docString ?? null,
    opsets: model.opsetImports.map((o) => ({ domain: o.domain || 'ai.onnx', version: o.version })),
    inputs: model.graph.inputs.filter((v) => !v.isConstant).map((v) => summarizeValue(v.name, v.type)),
    outputs: model.graph.outputs.map((v) => summarizeValue(v.name, v.type)),
    nodeCount: model.graph.nodeCount,
    nodeCountTotal: total,
    opHistogram: Object.fromEntries(sorted),
    parameters: { count: params, initializers: initCount, bytes: paramBytes, bytesByDtype: Object.fromEntries(byDtype), constantNodes: constants },
    subgraphs,
    subgraphsByOp: Object.fromEntries([...byOp].sort((a, b) => b[1].graphs - a[1].graphs || a[0].localeCompare(b[0]))),
    functions: model.functions.map((f) => ({ name: f.name, domain: f.domain, nodes: f.body.nodeCount })),
    externalData,
    metadata: Object.fromEntries(model.metadataProps.map((m) => [m.key, m.value])),
  };
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
}

const GRAPH_NOUN: Record<string, [string, string]> = { If: ['branch', 'branches'], Loop: ['body', 'bodies'], Scan: ['body', 'bodies'] };

/** "9 If (18 branches, 248 nodes), 1 Loop (1 body, 12 nodes)" */
export function formatSubgraphCounts(byOp: ModelSummary['subgraphsByOp']): string {
  return Object.entries(byOp).map(([op, e]) => {
    const [one, many] = GRAPH_NOUN[op] ?? ['graph', 'graphs'];
    return `${e.ops} ${op} (${e.graphs} ${e.graphs === 1 ? one : many}, ${e.nodes} node${e.nodes === 1 ? '' : 's'})`;
  }).join(', ');
}

/** The text summary; `verbose` lists every subgraph (one a line) under their counts. */
export function formatSummary(s: ModelSummary, opts: { verbose?: boolean } = {}): string {
  const out: string[] = [];
  const row = (k: string, v: string): void => { out.push(`  ${k.padEnd(14)}${v}`); };
  out.push(`${s.file} (${formatBytes(s.fileSize)})`);
  row('ir_version', String(s.irVersion));
  if (s.producer.name !== null) row('producer', `${s.producer.name} ${s.producer.version ?? ''}`.trimEnd());
  row('opsets', s.opsets.map((o) => `${o.domain} ${o.version}`).join(', ') || '(none)');
  const io = (v: ValueSummary): string => `${v.name}: ${v.type}`;
  s.inputs.forEach((v, i) => row(i === 0 ? 'inputs' : '', io(v)));
  if (s.inputs.length === 0) row('inputs', '(none)');
  s.outputs.forEach((v, i) => row(i === 0 ? 'outputs' : '', io(v)));
  row('nodes', `${s.nodeCount}${s.nodeCountTotal !== s.nodeCount ? ` (${s.nodeCountTotal} with subgraphs)` : ''}`);
  row('parameters', `${s.parameters.count.toLocaleString('en-US')} in ${s.parameters.initializers} initializers, ${formatBytes(s.parameters.bytes)}`);
  const dt = Object.entries(s.parameters.bytesByDtype).map(([k, v]) => `${k} ${formatBytes(v)}`).join(', ');
  if (dt) row('by dtype', dt);
  if (s.parameters.constantNodes.count) {
    const c = s.parameters.constantNodes;
    row('constants', `${c.count} Constant nodes, ${c.elements.toLocaleString('en-US')} elements, ${formatBytes(c.bytes)}`);
  }
  if (s.subgraphs.length) {
    row('subgraphs', `${formatSubgraphCounts(s.subgraphsByOp)}${opts.verbose ? '' : '; --verbose lists them'}`);
    if (opts.verbose) for (const g of s.subgraphs) row('', `${'  '.repeat(g.depth)}${g.op} '${g.node}'.${g.attribute} (${g.nodes} node${g.nodes === 1 ? '' : 's'})`);
  }
  if (s.functions.length) row('functions', s.functions.map((f) => `${f.domain}::${f.name} (${f.nodes} nodes)`).join(', '));
  if (s.externalData.length) row('external data', s.externalData.map((f) => `${f.location} (${f.tensors} tensors, ${formatBytes(f.bytes)})`).join(', '));
  for (const [k, v] of Object.entries(s.metadata)) row(`meta ${k}`, v.length > 60 ? `${v.slice(0, 57)}...` : v);
  out.push('  op histogram');
  for (const [op, n] of Object.entries(s.opHistogram)) out.push(`    ${String(n).padStart(6)}  ${op}`);
  return out.join('\n');
}

export interface ShapeListing {
  dims: Record<string, number>;
  /** symbols that inference found equal to something else: name -> expression */
  unified: Record<string, string>;
  /** ops without a shape rule (their outputs have unknown types), with counts */
  unknownOps: Record<string, number>;
  /** inference time in milliseconds */
  inferMs: number;
  /** per inference, for the pinned dims: numbers when every dim is known, else symbolic expressions */
  cost: {
    gflops: number | string;
    gmacs: number | string;
    bytesRead: number | string;
    bytesWritten: number | string;
    parameters: number;
    parameterBytes: number;
    /** ops without a cost rule (counted as 0 FLOPs) */
    uncounted: Record<string, number>;
    notes: string[];
  };
  values: { name: string; op: string | null; node: string | null; graph: string; type: string }[];
}

/** Infer shapes (with pinned dims) and list every value's type, in graph order. */
export function inferForInspect(model: Model, dims: Record<string, number>): ShapeListing {
  const t0 = performance.now();
  const result = inferShapes(model, RULES, { dims, evaluate: evaluateNode });
  const inferMs = performance.now() - t0;
  const values: ShapeListing['values'] = [];
  const visit = (g: Graph, label: string): void => {
    for (const v of g.inputs) values.push({ name: v.name, op: null, node: null, graph: label, type: formatSymType(result.types.get(v)) });
    for (const n of g.nodes) {
      for (const v of n.outputs) if (v) values.push({ name: v.name, op: n.opType, node: n.name, graph: label, type: formatSymType(result.types.get(v)) });
      for (const a of n.attributes.values()) {
        const gs = a.type === 'graph' ? [a.value] : a.type === 'graphs' ? a.value : [];
        gs.forEach((s, i) => visit(s, `${label}/${n.name || n.opType}.${a.name}${gs.length > 1 ? `[${i}]` : ''}`));
      }
    }
  };
  visit(model.graph, 'main');
  const c = modelCost(model, result, { dims });
  const giga = (n: number | undefined, sym: { toString(): string }): number | string => (n === undefined ? `(${sym.toString()})/1e9` : Math.round(n / 1e6) / 1e3);
  const cost: ShapeListing['cost'] = {
    gflops: giga(c.numbers?.flops, c.total.flops),
    gmacs: giga(c.numbers?.macs, c.total.macs),
    bytesRead: c.numbers?.bytesRead ?? c.total.bytesRead.toString(),
    bytesWritten: c.numbers?.bytesWritten ?? c.total.bytesWritten.toString(),
    parameters: c.params,
    parameterBytes: c.paramBytes,
    uncounted: c.uncounted,
    notes: c.notes,
  };
  return {
    dims,
    cost,
    unified: Object.fromEntries([...result.unified].filter(([k]) => !(k in dims) && !k.startsWith('unk__')).map(([k, v]) => [k, v.toString()])),
    unknownOps: Object.fromEntries(result.unknownOps),
    inferMs: Math.round(inferMs * 10) / 10,
    values,
  };
}

export function formatShapes(s: ShapeListing): string {
  const out: string[] = [];
  const pinned = Object.entries(s.dims).map(([k, v]) => `${k}=${v}`).join(', ');
  out.push(`  shapes (inferred in ${s.inferMs} ms${pinned ? `, ${pinned}` : ''})`);
  const width = Math.min(60, Math.max(...s.values.map((v) => v.name.length)));
  let graph = 'main';
  for (const v of s.values) {
    if (v.graph !== graph) { graph = v.graph; out.push(`    -- ${graph}`); }
    out.push(`    ${v.name.padEnd(width)}  ${v.type.padEnd(28)}  ${v.op ?? 'input'}`);
  }
  const c = s.cost;
  out.push(`  cost per inference: ${c.gflops} GFLOPs (${c.gmacs} GMACs), ${c.parameters.toLocaleString('en-US')} parameters in ${formatBytes(c.parameterBytes)}`);
  const uncounted = Object.entries(c.uncounted).map(([k, n]) => `${k} (${n})`);
  if (uncounted.length) out.push(`  no cost rule (0 FLOPs counted): ${uncounted.join(', ')}`);
  for (const n of c.notes) out.push(`  note: ${n}`);
  const unified = Object.entries(s.unified).map(([k, v]) => `${k} = ${v}`);
  if (unified.length) out.push(`  unified dims: ${unified.join(', ')}`);
  const unknown = Object.entries(s.unknownOps).map(([k, n]) => `${k} (${n})`);
  if (unknown.length) out.push(`  no shape rule (outputs unknown): ${unknown.join(', ')}`);
  return out.join('\n');
}
