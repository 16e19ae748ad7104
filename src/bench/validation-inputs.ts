/**
 * Validation inputs the model accepts. Synthetic inputs are derived from the graph (dims that are
 * expressions of others or that shape inference unifies, mask inputs all ones, ids inside their
 * table, integer inputs set to the constants they are compared with so that each If branch is
 * taken) and then the original model is the oracle: a candidate it fails on is dropped and the next
 * is tried (larger sizes, multiples of 8 and 32, other selector values), within a budget. Two
 * accepted candidates are kept when there are two (two sizes of each symbolic dim, batch 1 and 2).
 *
 * Browser-safe: the model runs through the Runtime interface.
 */
import { evaluateNode } from '../analysis/evaluator.js';
import { inferShapes } from '../analysis/infer.js';
import { RULES } from '../analysis/ops/index.js';
import type { Sym } from '../analysis/symbolic.js';
import { ValidationError } from '../errors.js';
import { freeSymbols, intInputRanges, selectorValues, syntheticInputs } from '../inputs.js';
import type { Model } from '../ir/model.js';
import type { Tensor } from '../ir/tensor.js';
import type { Runtime, Session } from '../runtime.js';

/** Sizes tried for the non-batch symbolic dims, in order: today's defaults first, then multiples of 8 and 32, then audio-like lengths. */
export const SIZE_LADDER = [8, 5, 16, 12, 32, 64, 96, 128, 160, 256, 320, 512, 640, 1024, 1536, 2048, 4096, 8000, 16000];

export interface InputSearchOptions {
  /** symbolic dims the user fixed (--dim): every candidate uses them */
  dims?: Record<string, number>;
  /** inputs the user gave a value (--input-value): every candidate uses it */
  values?: Record<string, number>;
  seed?: number;
  /** most candidates run on the original (default 16) */
  maxTries?: number;
  /** stop trying after this long, in ms (default 60 s) */
  budgetMs?: number;
  /** how many accepted candidates to find (default 2) */
  want?: number;
}

export interface Candidate {
  dims: Record<string, number>;
  values: Record<string, number>;
}

export interface FoundInputs {
  source: string;
  dims: Record<string, number>;
  values: Record<string, number>;
  feeds: Record<string, Tensor>;
  /** the original's outputs on these feeds */
  outputs: Record<string, Tensor>;
}

export interface InputSearchResult {
  sets: FoundInputs[];
  /** every candidate run, in order, with the original's error where it failed */
  tried: { candidate: string; error?: string }[];
  /** what the candidates varied: free symbols and selector inputs */
  varied: { symbols: string[]; selectors: Record<string, number[]> };
}

const isBatch = (d: string): boolean => /batch|^n$|^N$/i.test(d);

export function describeCandidate(c: Candidate): string {
  const parts = [...Object.entries(c.dims).map(([k, v]) => `${k}=${v}`), ...Object.entries(c.values).map(([k, v]) => `${k}:=${v}`)];
  return `synthetic ${parts.join(',') || '(static)'}`;
}

/** Symbols shape inference unified with expressions of others (best effort: none when it fails). */
function unification(model: Model, dims: Record<string, number>): ReadonlyMap<string, Sym> {
  try {
    return inferShapes(model, RULES, { apply: false, dims, evaluate: evaluateNode }).unified;
  } catch {
    return new Map();
  }
}

/** Candidates in the order they are tried: for each size of the ladder, each selector combination. */
export function candidates(symbols: string[], selectors: Record<string, number[]>, pinned: Candidate, batch: number): Candidate[] {
  const free = symbols.filter((s) => !(s in pinned.dims));
  const selNames = Object.keys(selectors).filter((n) => !(n in pinned.values));
  const combos: Record<string, number>[] = [{}];
  for (const n of selNames) {
    const next: Record<string, number>[] = [];
    for (const c of combos) for (const x of selectors[n]!) next.push({ ...c, [n]: x });
    combos.splice(0, combos.length, ...next.slice(0, 8));
  }
  const sizes = free.some((s) => !isBatch(s)) ? SIZE_LADDER : [0];
  const out: Candidate[] = [];
  for (const size of sizes) {
    for (const combo of combos) {
      const dims = Object.fromEntries(free.map((s) => [s, isBatch(s) ? batch : size]));
      out.push({ dims: { ...dims, ...pinned.dims }, values: { ...combo, ...pinned.values } });
    }
  }
  return out;
}

function firstLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split('\n')[0]!.slice(0, 400);
}

/**
 * Find inputs the original model runs on. Throws a ValidationError (stage validate-original) naming
 * the dims and inputs it varied, and the flags that supply them, when no candidate works.
 */
export async function findValidationInputs(model: Model, modelBytes: Uint8Array, runtime: Runtime, opts: InputSearchOptions = {}): Promise<InputSearchResult> {
  const pinned: Candidate = { dims: { ...(opts.dims ?? {}) }, values: { ...(opts.values ?? {}) } };
  const unified = unification(model, pinned.dims);
  const symbols = freeSymbols(model, unified);
  const selectors = selectorValues(model);
  const intRanges = intInputRanges(model);
  const maxTries = opts.maxTries ?? 16;
  const budget = opts.budgetMs ?? 60_000;
  const want = opts.want ?? 2;
  const t0 = Date.now();
  const tried: InputSearchResult['tried'] = [];
  const sets: FoundInputs[] = [];
  let session: Session;
  try {
    session = await runtime.createSession(modelBytes);
  } catch (e) {
    throw new ValidationError('validate-original', `the runtime cannot load it: ${firstLine(e)}`, {}, { cause: e });
  }
  const attempt = async (c: Candidate): Promise<FoundInputs | undefined> => {
    const source = describeCandidate(c);
    let feeds: Record<string, Tensor>;
    try {
      feeds = syntheticInputs(model, { seed: opts.seed ?? 0, dims: c.dims, values: c.values, intRanges, unified, defaultDim: 8 });
      const outputs = await session.run(feeds);
      tried.push({ candidate: source });
      return { source, dims: c.dims, values: c.values, feeds, outputs };
    } catch (e) {
      tried.push({ candidate: source, error: firstLine(e) });
      return undefined;
    }
  };
  const key = (c: Candidate): string => JSON.stringify([c.dims, c.values]);
  const done = new Set<string>();
  try {
    // the first set: batch 1; the second: batch 2 where the model takes it, another size and the next selector values
    const firstList = candidates(symbols, selectors, pinned, 1);
    for (const c of firstList) {
      if (tried.length >= maxTries || Date.now() - t0 > budget) break;
      done.add(key(c));
      const found = await attempt(c);
      if (found) { sets.push(found); break; }
    }
    if (sets.length && want > 1) {
      const first = sets[0]!;
      const differs = (c: Candidate): boolean => Object.keys(c.dims).some((k) => c.dims[k] !== first.dims[k]) || Object.keys(c.values).some((k) => c.values[k] !== first.values[k]);
      // every dim at another size (the ladder from the accepted size on, then the smaller ones),
      // and a selector value not used yet first
      const sizeOf = (c: Candidate): number => Math.max(0, ...symbols.filter((x) => !isBatch(x) && !(x in pinned.dims)).map((x) => c.dims[x] ?? 0));
      const at = SIZE_LADDER.indexOf(sizeOf(first));
      const order = (c: Candidate): number => {
        const i = SIZE_LADDER.indexOf(sizeOf(c));
        return i > at ? i - at : i + SIZE_LADDER.length;
      };
      const rest = [...candidates(symbols, selectors, pinned, 2), ...firstList]
        .filter((c) => !done.has(key(c)) && differs(c))
        .map((c, i) => ({ c, i, o: order(c), s: newSelectors(c, first) }))
        .sort((a, b) => b.s - a.s || batchOrder(a.c, b.c, first) || a.o - b.o || a.i - b.i)
        .map((x) => x.c);
      for (const c of rest) {
        if (sets.length >= want || tried.length >= maxTries + want || Date.now() - t0 > budget) break;
        if (done.has(key(c))) continue;
        done.add(key(c));
        const found = await attempt(c);
        if (found) sets.push(found);
      }
    }
  } finally {
    await session.release();
  }
  const varied = { symbols: symbols.filter((s) => !(s in pinned.dims)), selectors: Object.fromEntries(Object.entries(selectors).filter(([n]) => !(n in pinned.values))) };
  if (sets.length === 0) throw noInputsError(model, tried, varied);
  return { sets, tried, varied };
}

/** Candidates that change the batch too come first. */
function batchOrder(a: Candidate, b: Candidate, first: FoundInputs): number {
  const changes = (c: Candidate): number => Object.keys(c.dims).filter((k) => isBatch(k) && c.dims[k] !== first.dims[k]).length;
  return changes(b) - changes(a);
}

function newSelectors(c: Candidate, first: FoundInputs): number {
  return Object.keys(c.values).filter((k) => c.values[k] !== first.values[k]).length;
}

function noInputsError(model: Model, tried: InputSearchResult['tried'], varied: InputSearchResult['varied']): ValidationError {
  const last = tried[tried.length - 1];
  const dimsOf = (sym: string): string[] => {
    const out: string[] = [];
    for (const v of model.graph.inputs) {
      if (v.initializer || v.type?.kind !== 'tensor') continue;
      if ((v.type.shape ?? []).some((d) => typeof d === 'string' && d.includes(sym))) out.push(v.name);
    }
    return out;
  };
  const what = [
    ...varied.symbols.map((s) => `dim '${s}' of input ${dimsOf(s).map((n) => `'${n}'`).join(', ')}`),
    ...Object.keys(varied.selectors).map((n) => `value of input '${n}'`),
  ];
  const scalarInts = model.graph.inputs.filter((v) => !v.initializer && v.type?.kind === 'tensor' && (v.type.shape?.length ?? 1) === 0).map((v) => v.name);
  const flags = [
    varied.symbols.length ? `--dim ${varied.symbols.map((s) => `${s}=N`).join(',')}` : undefined,
    scalarInts.length ? `--input-value ${scalarInts[0]}=V` : undefined,
    '--validate-inputs DIR',
  ].filter(Boolean).join(', ');
  const dim = varied.symbols[0];
  const input = dim ? dimsOf(dim)[0] : Object.keys(varied.selectors)[0] ?? scalarInts[0];
  return new ValidationError(
    'validate-original',
    `no synthetic inputs it accepts (${tried.length} candidate(s) tried${what.length ? `, varying ${what.join('; ')}` : ''}); the last, ${last?.candidate ?? 'none'}, failed: ${last?.error ?? 'budget exhausted'}; supply them with ${flags}`,
    { ...(input ? { input } : {}), ...(dim ? { dim } : {}) },
  );
}
