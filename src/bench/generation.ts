/**
 * Decoders with a KV cache, validated the way they are used: a short greedy generation with the
 * cache fed back (present.N.* in as past_key_values.N.*), original vs compiled. One step's logits
 * can agree while the cache a step writes is wrong, and only the next step shows it.
 *
 * A model is a decoder with past when it has an integer `input_ids`-like input, a float output of
 * rank 3 (the logits), and every output named like `present.N.key` has an input named like
 * `past_key_values.N.key` (or `past.N.key`, `past_key.N`...) of the same rank: the output replaces
 * the input at the next step. attention_mask (grown by one each step) and position_ids (counting
 * on) are fed when the model takes them.
 *
 * Browser-safe: models run through the Runtime interface.
 */
import { elemTypeOf } from '../analysis/query.js';
import { DataType } from '../ir/dtype.js';
import type { Model } from '../ir/model.js';
import { Tensor } from '../ir/tensor.js';
import type { Session } from '../runtime.js';
import { seededRandom } from '../inputs.js';

export interface DecoderSignature {
  ids: string;
  mask?: string;
  positions?: string;
  logits: string;
  /** cache outputs and the inputs they feed at the next step */
  cache: { input: string; output: string; dims: (number | string | null)[]; elemType: number }[];
  /** the cache inputs' axis that grows (past_sequence) */
  pastAxis: number;
}

/** The key that pairs a cache input with its output: `past_key_values.0.key` ~ `present.0.key`. */
function cacheKey(name: string, kind: 'past' | 'present'): string | undefined {
  const m = kind === 'past'
    ? /^(?:past_key_values|past_key_value|past)[._]?(.*)$/.exec(name)
    : /^(?:present_key_values|present_key_value|present)[._]?(.*)$/.exec(name);
  if (!m) return undefined;
  return m[1]!.replace(/[._]/g, '.');
}

export function decoderSignature(model: Model): DecoderSignature | undefined {
  const inputs = model.graph.inputs.filter((v) => !v.initializer && v.type?.kind === 'tensor');
  const outputs = model.graph.outputs.filter((v) => v.type?.kind === 'tensor');
  const byKey = new Map<string, (typeof inputs)[number]>();
  for (const v of inputs) {
    const k = cacheKey(v.name, 'past');
    if (k !== undefined) byKey.set(k, v);
  }
  const cache: DecoderSignature['cache'] = [];
  for (const o of outputs) {
    const k = cacheKey(o.name, 'present');
    const i = k !== undefined ? byKey.get(k) : undefined;
    if (!i || i.type?.kind !== 'tensor' || o.type?.kind !== 'tensor') continue;
    const dims = i.type.shape ?? [];
    if (dims.length !== (o.type.shape ?? []).length || dims.length < 3) continue;
    cache.push({ input: i.name, output: o.name, dims: [...dims], elemType: i.type.elemType });
  }
  if (cache.length === 0 || cache.length !== byKey.size) return undefined;
  const isInt = (v: (typeof inputs)[number]): boolean => v.type?.kind === 'tensor' && (v.type.elemType === DataType.INT64 || v.type.elemType === DataType.INT32);
  const ids = inputs.find((v) => isInt(v) && /input_ids|^ids$|tokens/i.test(v.name));
  const logits = outputs.find((v) => v.type?.kind === 'tensor' && (v.type.shape?.length ?? 0) === 3 && !cache.some((c) => c.output === v.name));
  if (!ids || !logits) return undefined;
  const mask = inputs.find((v) => isInt(v) && /attention_mask/i.test(v.name));
  const positions = inputs.find((v) => isInt(v) && /position_ids/i.test(v.name));
  const known = new Set([ids.name, mask?.name, positions?.name, ...cache.map((c) => c.input)]);
  if (inputs.some((v) => !known.has(v.name))) return undefined; // an input we would not know how to feed
  // the growing axis: the cache dim whose name the present output's dim extends (past -> past + seq), else rank-2
  const first = cache[0]!;
  const pastAxis = first.dims.findIndex((d) => typeof d === 'string' && /past/i.test(d));
  return {
    ids: ids.name, logits: logits.name, cache, pastAxis: pastAxis >= 0 ? pastAxis : first.dims.length - 2,
    ...(mask ? { mask: mask.name } : {}), ...(positions ? { positions: positions.name } : {}),
  };
}

function intTensor(elemType: number, values: number[], dims: number[]): Tensor {
  return elemType === DataType.INT32 ? Tensor.int32(values, dims) : Tensor.int64(values, dims);
}

/** The element type graph input `name` declares (int64 where it declares none): ids, mask and positions are int32 or int64. */
function inputIntType(model: Model, name: string): number {
  return elemTypeOf(undefined, model.graph.inputs.find((x) => x.name === name)) ?? DataType.INT64;
}

/** An empty cache tensor (past 0) for a cache input; other symbolic dims (batch) are 1. */
function emptyCache(c: DecoderSignature['cache'][number], pastAxis: number): Tensor {
  const dims = c.dims.map((d, i) => (i === pastAxis ? 0 : typeof d === 'number' ? d : 1));
  return Tensor.fromTypedArray(c.elemType, dims, c.elemType === DataType.FLOAT16 ? new Uint16Array(0) : new Float32Array(0));
}

export interface GenerationRun {
  tokens: number[];
  /** the logits of the last position at each step */
  logits: Float32Array[];
}

/**
 * Greedy generation from `prompt` (batch 1): prefill with an empty cache, then `steps - 1` decode
 * steps. With `forced`, those tokens are fed instead of the model's own choices (teacher forcing:
 * a candidate sees the reference's prefix, so its logits compare step by step).
 */
export async function greedyGenerate(model: Model, session: Session, sig: DecoderSignature, prompt: number[], steps: number, forced?: number[], opts: { tokenByToken?: boolean } = {}): Promise<GenerationRun> {
  const idsType = inputIntType(model, sig.ids);
  let cache: Record<string, Tensor> = Object.fromEntries(sig.cache.map((c) => [c.input, emptyCache(c, sig.pastAxis)]));
  let past = 0;
  const tokens: number[] = [];
  const logits: Float32Array[] = [];
  // a model fixed to one new token per run (--dim sequence=1) takes its prompt one token at a time
  let next = prompt;
  if (opts.tokenByToken) {
    for (const t of prompt.slice(0, -1)) {
      const out = await session.run(stepFeeds(model, sig, cache, [t], past, idsType));
      cache = Object.fromEntries(sig.cache.map((c) => [c.input, out[c.output]!]));
      past += 1;
    }
    next = prompt.slice(-1);
  }
  for (let step = 0; step < steps; step++) {
    const n = next.length;
    const out = await session.run(stepFeeds(model, sig, cache, next, past, idsType));
    const l = out[sig.logits];
    if (!l) throw new Error(`no '${sig.logits}' output`);
    const vocab = l.dims[l.dims.length - 1]!;
    const all = l.toTypedArray() as ArrayLike<number>;
    const row = Float32Array.from({ length: vocab }, (_, i) => Number(all[(n - 1) * vocab + i]));
    let best = 0;
    for (let i = 1; i < vocab; i++) if (row[i]! > row[best]!) best = i;
    tokens.push(best);
    logits.push(row);
    cache = Object.fromEntries(sig.cache.map((c) => [c.input, out[c.output]!]));
    past += n;
    next = [forced?.[step] ?? best];
  }
  return { tokens, logits };
}

/** One step's feeds: the cache so far, the new ids, the mask over past + new, the positions counting on. */
function stepFeeds(model: Model, sig: DecoderSignature, cache: Record<string, Tensor>, next: number[], past: number, idsType: number): Record<string, Tensor> {
  const n = next.length;
  const feeds: Record<string, Tensor> = { ...cache, [sig.ids]: intTensor(idsType, next, [1, n]) };
  if (sig.mask) feeds[sig.mask] = intTensor(inputIntType(model, sig.mask), new Array<number>(past + n).fill(1), [1, past + n]);
  if (sig.positions) feeds[sig.positions] = intTensor(inputIntType(model, sig.positions), Array.from({ length: n }, (_, i) => past + i), [1, n]);
  return feeds;
}

/**
 * How a decoder can be run for a generation given the dims the user fixed: token by token when
 * the new-token dim is fixed to 1; not at all (a reason) when batch is fixed above 1, the new-token
 * dim to another size, or the past.
 */
export function generationPlan(model: Model, sig: DecoderSignature, dims: Record<string, number>): { tokenByToken: boolean } | { skip: string } {
  const ids = model.graph.inputs.find((v) => v.name === sig.ids);
  const shape = ids?.type?.kind === 'tensor' ? ids.type.shape ?? [] : [];
  const fixed = (d: number | string | null | undefined): number | undefined => (typeof d === 'number' ? d : typeof d === 'string' ? dims[d] : undefined);
  const batch = fixed(shape[0]), seq = fixed(shape[1]);
  if (batch !== undefined && batch !== 1) return { skip: `batch is fixed to ${batch}` };
  const pastDim = sig.cache[0]!.dims[sig.pastAxis];
  if (fixed(pastDim) !== undefined) return { skip: `the past length is fixed to ${fixed(pastDim)}` };
  if (seq !== undefined && seq !== 1) return { skip: `the new-token dim is fixed to ${seq}` };
  return { tokenByToken: seq === 1 };
}

/** A seeded prompt of token ids below `vocab` (or the id table's size). */
export function syntheticPrompt(length: number, vocab: number, seed = 7): number[] {
  const rand = seededRandom(seed);
  return Array.from({ length }, () => Math.floor(rand() * vocab));
}
