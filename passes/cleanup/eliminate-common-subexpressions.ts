/**
 * eliminate-common-subexpressions
 *
 * Before:  a = f(x, y; attrs); b = f(x, y; attrs); z = g(a, b)
 * After:   a = f(x, y; attrs); z = g(a, a)
 * Conditions: same op and domain, the same input values (trailing missing inputs ignored), the same
 *   outputs present, and equal attributes (compared deeply: tensors by type, dims and bytes). Also
 *   Constant nodes with equal tensors. Never merged: nodes holding a subgraph (If/Loop/Scan), random
 *   ops (RandomUniform*, RandomNormal*, Bernoulli, Multinomial, Dropout unless known to be in
 *   inference mode, contrib dropouts), and ops of domains whose ops we do not know to be
 *   deterministic (only ai.onnx, ai.onnx.ml and com.microsoft are merged). One graph at a time; the
 *   first node in graph order stays, so a chain of duplicates goes in one sweep.
 */
import type { Attribute } from '../../src/ir/attribute.js';
import type { Node, Value } from '../../src/ir/graph.js';
import type { Tensor } from '../../src/ir/tensor.js';
import type { Pass } from '../../src/pass/pass.js';
import { typesConflict } from '../../src/pass/patch.js';
import { dropoutIsInference } from './eliminate-dropout.js';

const DOMAINS = new Set(['', 'ai.onnx', 'ai.onnx.ml', 'com.microsoft']);

const RANDOM = new Set([
  'RandomUniform', 'RandomUniformLike', 'RandomNormal', 'RandomNormalLike', 'Bernoulli', 'Multinomial',
  // com.microsoft
  'BiasDropout', 'BitmaskDropout', 'BitmaskBiasDropout', 'TrainableDropout',
]);

function fnv(h: number, bytes: Uint8Array): number {
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i]!, 0x01000193);
  return h >>> 0;
}

function tensorBytes(t: Tensor): Uint8Array[] {
  return t.data.kind === 'stringData' ? t.data.values : [t.rawBytes()];
}

function tensorKey(t: Tensor): string {
  let h = 0x811c9dc5;
  const parts = tensorBytes(t);
  for (const p of parts) h = fnv(fnv(h, p), new Uint8Array([0xff]));
  return `T${t.dataType}[${t.dims.join(',')}]#${parts.length}:${h.toString(16)}`;
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function tensorsEqual(a: Tensor, b: Tensor): boolean {
  if (a === b) return true;
  if (a.dataType !== b.dataType || a.dims.length !== b.dims.length || a.dims.some((d, i) => d !== b.dims[i])) return false;
  const x = tensorBytes(a), y = tensorBytes(b);
  return x.length === y.length && x.every((p, i) => bytesEqual(p, y[i]!));
}

/** A number as it must compare: -0 and 0 apart, every NaN alike. */
function num(x: number | bigint): string {
  return typeof x === 'bigint' ? x.toString() : Object.is(x, -0) ? '-0' : String(x);
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));
/** Bytes as hex text (browser-safe: no Buffer). */
const hex = (b: Uint8Array): string => {
  let s = '';
  for (let i = 0; i < b.length; i++) s += HEX[b[i]!];
  return s;
};

/** A canonical text for an attribute's value (tensors by hash: compare with attrsEqual as well), or undefined when it cannot be compared. */
function attrKey(a: Attribute): string | undefined {
  const head = `${a.name}:${a.type}${a.refAttrName !== undefined ? `@${a.refAttrName}` : ''}=`;
  switch (a.type) {
    case 'float': case 'int': return head + num(a.value);
    case 'floats': return head + Array.from(a.value, num).join(',');
    case 'ints': return head + a.value.map(num).join(',');
    case 'string': return head + hex(a.value);
    case 'strings': return head + a.value.map(hex).join(',');
    case 'tensor': return head + tensorKey(a.value);
    case 'tensors': return head + a.value.map(tensorKey).join(',');
    case 'type_proto': case 'type_protos': return head + JSON.stringify(a.value);
    case 'undefined': return head;
    default: return undefined; // graphs, sparse tensors
  }
}

function attrsEqual(a: Node, b: Node): boolean {
  if (a.attributes.size !== b.attributes.size) return false;
  for (const [name, x] of a.attributes) {
    const y = b.attributes.get(name);
    if (!y || attrKey(x) !== attrKey(y)) return false;
    if (x.type === 'tensor' && y.type === 'tensor' && !tensorsEqual(x.value, y.value)) return false;
    if (x.type === 'tensors' && y.type === 'tensors' && !x.value.every((t, i) => tensorsEqual(t, y.value[i]!))) return false;
  }
  return true;
}

function mergeable(n: Node, opset: number): boolean {
  if (!DOMAINS.has(n.domain) || RANDOM.has(n.opType)) return false;
  if (n.opType === 'Dropout' && (n.domain !== '' || !dropoutIsInference(n, opset))) return false;
  if (n.subgraphs().length > 0) return false;
  for (const a of n.attributes.values()) if (a.type === 'sparse_tensor' || a.type === 'sparse_tensors' || a.type === 'graph' || a.type === 'graphs') return false;
  return n.outputs.some((v) => v !== undefined);
}

export const eliminateCommonSubexpressions: Pass = {
  name: 'eliminate-common-subexpressions',
  description: 'merge nodes that compute the same thing from the same inputs (and equal Constant nodes)',
  level: 1,
  subgraphs: 'recurse',
  run(graph, ctx) {
    const opset = ctx.opset('');
    const ids = new Map<Value, number>();
    const id = (v: Value | undefined): string => {
      if (!v) return '-';
      let i = ids.get(v);
      if (i === undefined) ids.set(v, (i = ids.size));
      return String(i);
    };
    const buckets = new Map<string, Node[]>();
    let changes = 0;
    for (const node of graph.nodes) {
      if (node.removed || !mergeable(node, opset)) continue;
      const inputs = [...node.inputs];
      while (inputs.length && inputs[inputs.length - 1] === undefined) inputs.pop();
      const attrs = [...node.attributes.values()].map(attrKey).sort().join('|');
      const key = `${node.domain}::${node.opType}(${inputs.map(id).join(',')})>${node.outputs.map((v) => (v ? 'o' : '-')).join('')}{${attrs}}`;
      const bucket = buckets.get(key);
      const same = bucket?.find((k) => !k.removed && attrsEqual(k, node));
      if (!same) {
        if (bucket) bucket.push(node);
        else buckets.set(key, [node]);
        continue;
      }
      if (node.outputs.some((v, i) => v && typesConflict(v.type, same.outputs[i]!.type))) {
        ctx.explain(`${node}: same computation as ${same} but the declared types differ`);
        continue;
      }
      if (!ctx.allowRewrite(`eliminate-common-subexpressions: ${node} -> ${same}`)) return changes;
      const patch = ctx.patch(graph);
      node.outputs.forEach((v, i) => { if (v) patch.replace(v, same.outputs[i]!); });
      changes += patch.commit();
    }
    return changes;
  },
};
