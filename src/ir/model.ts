/** A model: the main graph, opset imports, model-local functions and metadata. */
import type { Int64 } from '../onnx/codec.js';
import type { OperatorSetIdProto, StringStringEntryProto } from '../onnx/proto.js';
import type { Attribute } from './attribute.js';
import { Graph } from './graph.js';

export interface OpsetImport {
  /** '' or absent: the default domain (ai.onnx). Absent and '' are kept apart so a round trip is exact. */
  domain?: string;
  version: number;
  /** OperatorSetIdProto fields the IR does not interpret */
  extra?: Record<string, unknown>;
}

export interface MetadataEntry { key: string; value: string; extra?: Record<string, unknown> }

/** A model-local function (FunctionProto). Its body is a graph whose inputs are the formal parameters. */
export class Func {
  name: string;
  domain: string;
  overload: string | undefined;
  readonly body: Graph;
  /** names of the attributes the function takes (FunctionProto.attribute) */
  attributeNames: string[] = [];
  /** attributes with default values (FunctionProto.attribute_proto) */
  attributeDefaults: Attribute[] = [];
  opsetImports: OpsetImport[] = [];
  /** FunctionProto fields the IR does not interpret (doc_string, metadata_props, unknown fields) */
  extra: Record<string, unknown> = {};

  constructor(name: string, domain: string, overload?: string) {
    this.name = name;
    this.domain = domain;
    this.overload = overload;
    this.body = new Graph(name);
  }

  /** How nodes call it: `domain::name` (and `:overload`). */
  get qualifiedName(): string { return `${this.domain}::${this.name}${this.overload ? `:${this.overload}` : ''}`; }
}

export class Model {
  irVersion: Int64 = 10;
  opsetImports: OpsetImport[] = [];
  producerName: string | undefined = 'retarget';
  producerVersion: string | undefined;
  domain: string | undefined;
  modelVersion: Int64 | undefined;
  docString: string | undefined;
  metadataProps: MetadataEntry[] = [];
  functions: Func[] = [];
  /** ModelProto fields the IR does not interpret (training_info, configuration, unknown fields) */
  extra: Record<string, unknown> = {};

  constructor(readonly graph: Graph = new Graph('main')) {}

  /** The imported version of an operator set ('' and 'ai.onnx' are the default domain). */
  opsetVersion(domain = ''): number | undefined {
    const norm = (d: string | undefined): string => (d === undefined || d === 'ai.onnx' ? '' : d);
    return this.opsetImports.find((o) => norm(o.domain) === norm(domain))?.version;
  }

  metadata(key: string): string | undefined {
    return this.metadataProps.find((m) => m.key === key)?.value;
  }

  setMetadata(key: string, value: string): void {
    const existing = this.metadataProps.find((m) => m.key === key);
    if (existing) existing.value = value;
    else this.metadataProps.push({ key, value });
  }

  /** Every graph of the model: the main graph, subgraphs, and function bodies with theirs. */
  *allGraphs(): Generator<Graph> {
    yield* this.graph.allGraphs();
    for (const f of this.functions) yield* f.body.allGraphs();
  }
}

export function opsetFromProto(p: OperatorSetIdProto): OpsetImport {
  const { domain, version, ...extra } = p;
  const v = typeof version === 'bigint' ? Number(version) : version ?? 0;
  const o: OpsetImport = domain === undefined ? { version: v } : { domain, version: v };
  if (Object.keys(extra).length) o.extra = extra;
  return o;
}

export function opsetToProto(o: OpsetImport): OperatorSetIdProto {
  return o.domain === undefined ? { ...o.extra, version: o.version } : { ...o.extra, domain: o.domain, version: o.version };
}

export function metadataFromProto(p: StringStringEntryProto): MetadataEntry {
  const { key, value, ...extra } = p;
  return Object.keys(extra).length ? { key: key ?? '', value: value ?? '', extra } : { key: key ?? '', value: value ?? '' };
}

export function metadataToProto(m: MetadataEntry): StringStringEntryProto {
  return { ...m.extra, key: m.key, value: m.value };
}
