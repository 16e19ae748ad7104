/**
 * A readable text form of the IR, for dumps (--dump-after), test failures and debugging:
 *
 *   graph main(%x: float32[batch,3]) {
 *     %w = const float32[3,4]
 *     %y: float32[batch,4] = MatMul(%x, %w)  # node 'mm'
 *     return %y
 *   }
 */
import type { Attribute } from './attribute.js';
import type { Graph, Node, Value } from './graph.js';
import type { Model } from './model.js';
import type { Tensor } from './tensor.js';
import { dataTypeName } from './dtype.js';
import { formatShape, formatType } from './types.js';

const utf8 = new TextDecoder();

function ref(v: Value | undefined): string {
  return v ? `%${v.name}` : '_';
}

function typed(v: Value): string {
  return v.type ? `${ref(v)}: ${formatType(v.type)}` : ref(v);
}

function tensorSummary(t: Tensor): string {
  const base = `${dataTypeName(t.dataType)}${formatShape([...t.dims])}`;
  if (t.elementCount > 8 || t.dataType === 8) return base;
  try {
    const values = Array.from(t.toTypedArray() as ArrayLike<number | bigint>, (x) => String(x));
    return `${base} [${values.join(', ')}]`;
  } catch {
    return base;
  }
}

function formatAttr(a: Attribute, indent: string): string {
  const v = ((): string => {
    switch (a.type) {
      case 'float': return String(a.value);
      case 'int': return String(a.value);
      case 'string': return JSON.stringify(utf8.decode(a.value));
      case 'floats': return `[${Array.from(a.value).join(', ')}]`;
      case 'ints': return `[${a.value.join(', ')}]`;
      case 'strings': return `[${a.value.map((s) => JSON.stringify(utf8.decode(s))).join(', ')}]`;
      case 'tensor': return tensorSummary(a.value);
      case 'tensors': return `[${a.value.map(tensorSummary).join(', ')}]`;
      case 'graph': return printGraph(a.value, indent + '  ').trimStart();
      case 'graphs': return `[${a.value.map((g) => printGraph(g, indent + '  ').trimStart()).join(', ')}]`;
      case 'type_proto': return formatType(a.value);
      case 'type_protos': return `[${a.value.map(formatType).join(', ')}]`;
      case 'sparse_tensor': case 'sparse_tensors': return '<sparse>';
      case 'undefined': return '?';
    }
  })();
  return a.refAttrName !== undefined ? `${a.name}=@${a.refAttrName}` : `${a.name}=${v}`;
}

export function printNode(n: Node, indent = ''): string {
  const outs = n.outputs.map((v) => (v ? typed(v) : '_')).join(', ');
  const op = n.domain ? `${n.domain}::${n.opType}` : n.opType;
  const attrs = n.attributes.size ? ` {${[...n.attributes.values()].map((a) => formatAttr(a, indent)).join(', ')}}` : '';
  const name = n.name ? `  # ${n.name}` : '';
  return `${indent}${outs} = ${op}(${n.inputs.map(ref).join(', ')})${attrs}${name}`;
}

export function printGraph(g: Graph, indent = ''): string {
  const lines: string[] = [];
  lines.push(`${indent}graph ${g.name || '_'}(${g.inputs.map(typed).join(', ')}) {`);
  for (const v of g.initializers) {
    if (g.inputs.includes(v)) continue;
    lines.push(`${indent}  ${ref(v)} = const ${v.initializer ? tensorSummary(v.initializer) : 'sparse'}`);
  }
  for (const n of g.nodes) lines.push(printNode(n, indent + '  '));
  lines.push(`${indent}  return ${g.outputs.map(ref).join(', ')}`);
  lines.push(`${indent}}`);
  return lines.join('\n');
}

export function printModel(m: Model): string {
  const opsets = m.opsetImports.map((o) => `${o.domain || 'ai.onnx'}:${o.version}`).join(', ');
  const header = `# ir_version ${m.irVersion}, opsets ${opsets}${m.producerName ? `, producer ${m.producerName} ${m.producerVersion ?? ''}`.trimEnd() : ''}`;
  const funcs = m.functions.map((f) => `function ${f.qualifiedName}\n${printGraph(f.body)}`);
  return [header, printGraph(m.graph), ...funcs].join('\n');
}
