/**
 * Validation: run a reference and a candidate model on the same inputs and judge every output by a
 * tolerance that fits the transformation (an fp32 rewrite must be near exact; fp16, int8 and int4
 * are judged by cosine similarity and top-1 agreement). Inputs come from test data or are seeded and
 * synthetic, over more than one size of each symbolic dim. `bisect` finds the first intermediate
 * value (by name, present in both models) that diverges.
 *
 * Browser-safe: models run through the Runtime interface.
 */
import { cpuStandIn } from './stand-in.js';
import { feedsForLayouts } from '../layout.js';
import { evaluateNode } from '../analysis/evaluator.js';
import { inferShapes } from '../analysis/infer.js';
import { RULES } from '../analysis/ops/index.js';
import { cloneModel } from '../ir/clone.js';
import type { Model } from '../ir/model.js';
import { intInputRanges, syntheticInputs } from '../inputs.js';
import { concatChunks } from '../onnx/codec.js';
import { serializeModel } from '../io.js';
import type { Runtime, Session } from '../runtime.js';
import { outputMetrics, type OutputMetrics } from './metrics.js';
import { findValidationInputs, type InputSearchOptions, type InputSearchResult } from './validation-inputs.js';
import { ValidationError } from '../errors.js';
import { decoderSignature, generationPlan, greedyGenerate, syntheticPrompt, type DecoderSignature } from './generation.js';
import { DataType } from '../ir/dtype.js';
import { Tensor } from '../ir/tensor.js';

export interface Tolerance {
  name: string;
  /** |a-b| <= atol + rtol*|a| for every element (float outputs), unless only cosine/top-1 are judged */
  atol?: number;
  rtol?: number;
  /** max |a-b| <= maxScaledError * max |a| (the error relative to the output's scale) */
  maxScaledError?: number;
  /** lowest cosine similarity accepted (the budget of lower precisions; a figure only for fp32) */
  minCosine?: number;
  /** top-1 agreement over the last axis, where it applies */
  minTop1?: number;
}

/**
 * Tolerances per kind of transformation.
 *
 * fp32: per element like numpy's allclose, |a - b| <= atol + rtol*|a| with atol 1e-4, rtol 1e-3.
 * rtol is the 1e-3 of the usual export parity check (PyTorch's ONNX tutorial checks ONNX Runtime
 * against torch with assert_allclose(rtol=1e-3, atol=1e-5)); atol is ten times that check's, and
 * Polygraphy's default (1e-5), because fusions and folding change the order of float sums in
 * kernels of thousands of terms, so outputs near zero carry ~1e-5 absolute. No cosine floor: a correct fp32
 * rewrite of a map whose values are all near zero (a detector's sigmoid) can have cosine 0.99998
 * with a largest error of 2e-7; cosine is reported as a figure.
 */
export const TOLERANCES: Record<string, Tolerance> = {
  fp32: { name: 'fp32', atol: 1e-4, rtol: 1e-3 },
  // the accuracy budgets a quantized model must meet (top-1 agreement is reported, not judged: on
  // models with near-uniform outputs it says little). fp16: the max error relative to the output's
  // scale, not per element: float16 keeps ~3 significant digits of each activation, so a logit near
  // zero next to logits of 10 carries an absolute error of ~1e-2 that no per-element rtol allows
  // (a trained mobilenet_v2 failed atol 1e-3 + rtol 1e-2 on 1 value of 2560 with max error 5.5e-3).
  fp16: { name: 'fp16', maxScaledError: 1e-2, minCosine: 0.999 },
  int8: { name: 'int8', minCosine: 0.99 },
  int4: { name: 'int4', minCosine: 0.98 },
};

export interface OutputVerdict extends OutputMetrics { ok: boolean; problem?: string }

export interface ValidationCase {
  /** where the inputs came from: a test data folder, `synthetic` with the dims used, or a greedy generation */
  source: string;
  /** a decoder's generation case: the original's tokens, the share of steps whose argmax the candidate agrees on, and the share whose token is in the candidate's top 5 */
  generated?: { tokens: number[]; agreement: number; top5: number };
  /**
   * false: reported, not judged. A quantized decoder's budget is judged on its generation (the
   * logits of every step, stacked), not on single steps: one step's logits are one vector, whose
   * cosine varies from step to step by more than the budget's margin.
   */
  judged?: false;
  dims: Record<string, number>;
  outputs: OutputVerdict[];
  ok: boolean;
}

export interface ValidationResult {
  tolerance: Tolerance;
  ok: boolean;
  cases: ValidationCase[];
  /** the worst output over all cases (a failing one first, then the lowest cosine), and its worst element */
  worst?: { source: string; output: string; maxAbsError: number; cosine: number; element?: OutputMetrics['worstElement']; problem?: string };
  /** where the inputs came from: given (test data) or synthetic, which sets were used, and the candidates the search ran */
  inputs?: { origin: 'given' | 'synthetic'; used: string[]; tried?: InputSearchResult['tried']; varied?: InputSearchResult['varied'] };
  /** ops the validating runtime lacks, run as their standard-op composition (see stand-in.ts), with counts */
  standIns?: Record<string, number>;
}

export { ValidationError };

function elementwise(tol: Tolerance): { atol: number; rtol: number } | undefined {
  return tol.atol === undefined ? undefined : { atol: tol.atol, rtol: tol.rtol ?? 0 };
}

export function judge(m: OutputMetrics, tol: Tolerance): OutputVerdict {
  const problems: string[] = [];
  if (m.exactMatch !== undefined) {
    if (m.exactMatch < 1) problems.push(`${((1 - m.exactMatch) * 100).toFixed(2)}% of elements differ`);
  } else {
    if (m.violations) {
      const w = m.worstElement;
      const at = w ? `; worst at [${w.index.join(',')}]: ${w.got.toPrecision(6)} vs ${w.ref.toPrecision(6)}, abs ${w.absError.toExponential(2)}, rel ${w.relError.toExponential(2)}` : '';
      problems.push(`${m.violations} value${m.violations === 1 ? '' : 's'} beyond ${tol.atol} + ${tol.rtol ?? 0}*|ref|${at}`);
    }
    if (tol.maxScaledError !== undefined && !((m.maxScaledError ?? Infinity) <= tol.maxScaledError)) {
      problems.push(`max error ${m.maxAbsError.toExponential(2)} is ${((m.maxScaledError ?? Infinity) * 100).toPrecision(3)}% of the output's largest magnitude (budget ${tol.maxScaledError * 100}%)`);
    }
    if (tol.minCosine !== undefined && !(m.cosine >= tol.minCosine)) problems.push(`cosine ${m.cosine.toFixed(6)} < ${tol.minCosine}`);
    if (tol.minTop1 !== undefined && m.top1 !== undefined && m.top1 < tol.minTop1) problems.push(`top-1 agreement ${(m.top1 * 100).toFixed(1)}% < ${tol.minTop1 * 100}%`);
  }
  return { ...m, ok: problems.length === 0, ...(problems.length ? { problem: problems.join('; ') } : {}) };
}

/** Symbolic dims of the model's inputs, in order of appearance. */
export function symbolicDims(model: Model): string[] {
  const out: string[] = [];
  for (const v of model.graph.inputs) {
    if (v.initializer || v.type?.kind !== 'tensor') continue;
    for (const d of v.type.shape ?? []) if (typeof d === 'string' && !out.includes(d)) out.push(d);
  }
  return out;
}

/**
 * Default sizes to try for symbolic dims: two configurations (batch 1 / others 8, then batch 2 /
 * others 5), each with the user's pinned dims on top. One configuration when nothing is symbolic.
 */
export function defaultSweep(model: Model, pinned: Record<string, number> = {}): Record<string, number>[] {
  const free = symbolicDims(model).filter((d) => !(d in pinned));
  if (free.length === 0) return [{ ...pinned }];
  const isBatch = (d: string): boolean => /batch|^n$|^N$/i.test(d);
  return [
    { ...Object.fromEntries(free.map((d) => [d, isBatch(d) ? 1 : 8])), ...pinned },
    { ...Object.fromEntries(free.map((d) => [d, isBatch(d) ? 2 : 5])), ...pinned },
  ];
}

async function run(runtime: Runtime, model: Model, feeds: Record<string, Tensor>, outputs?: string[]): Promise<Record<string, Tensor>> {
  const session = await runtime.createSession(concatChunks(serializeModel(model).chunks));
  try {
    return await session.run(feeds, outputs ? { outputs } : {});
  } finally {
    await session.release();
  }
}

export interface ValidateOptions {
  /** explicit input sets (e.g. from test_data_set_* folders), with a label each */
  inputs?: { source: string; feeds: Record<string, Tensor> }[];
  /** sizes for symbolic dims, one entry per run (default: inputs the original accepts, searched for) */
  sweep?: Record<string, number>[];
  /** dims pinned in every sweep entry */
  dims?: Record<string, number>;
  /** inputs filled with one value in every synthetic set (a sample rate: `{ sr: 16000 }`) */
  values?: Record<string, number>;
  seed?: number;
  tolerance?: Tolerance | keyof typeof TOLERANCES;
  /** bounds of the search for synthetic inputs the original accepts */
  search?: Pick<InputSearchOptions, 'maxTries' | 'budgetMs'>;
  /** input sets already chosen (and run on the original) by validationInputs() */
  prepared?: PreparedInputs;
  /** decoders with a KV cache: tokens of greedy generation compared (default 16; 0 for none) */
  generate?: number;
}

/** An input set; `outputs` are the original's, when they were computed while choosing the set. */
export interface InputSet { source: string; dims?: Record<string, number>; feeds: Record<string, Tensor>; outputs?: Record<string, Tensor> }

/** Input sets chosen before compiling (see validationInputs), to hand to validate() afterwards. */
export interface PreparedInputs { sets: InputSet[]; search?: InputSearchResult }

/** Run a model on every set through one session; errors become ValidationErrors of `stage` naming the set. */
type ValidateStage = 'validate-original' | 'validate-compiled';

/**
 * One session per model for all of validate(), opened when first needed (sets whose outputs the
 * input search already has need none); a model the runtime cannot load is a ValidationError of `stage`.
 */
class LazySession {
  private session: Promise<Session> | undefined;
  constructor(private readonly runtime: Runtime, readonly model: Model, readonly stage: ValidateStage) {}

  get(): Promise<Session> {
    this.session ??= this.runtime.createSession(concatChunks(serializeModel(this.model).chunks)).catch((e: unknown) => {
      throw new ValidationError(this.stage, `the runtime cannot load it: ${(e as Error).message.split('\n')[0]}`, {}, { cause: e });
    });
    return this.session;
  }

  async release(): Promise<void> {
    const s = this.session;
    this.session = undefined;
    if (s) await s.then((x) => x.release(), () => undefined);
  }
}

async function runAll(session: LazySession, sets: InputSet[]): Promise<Record<string, Tensor>[]> {
  const out: Record<string, Tensor>[] = [];
  for (const set of sets) {
    if (set.outputs) { out.push(set.outputs); continue; }
    const s = await session.get();
    try {
      out.push(await s.run(set.feeds));
    } catch (e) {
      throw new ValidationError(session.stage, `on ${set.source}: ${(e as Error).message.split('\n')[0]}`, {}, { cause: e });
    }
  }
  return out;
}

/** Judge one output of one case. */
function verdict(name: string, a: Tensor, b: Tensor | undefined, tol: Tolerance): OutputVerdict {
  const failed = (problem: string): OutputVerdict => ({ name, shape: [...a.dims], maxAbsError: Infinity, maxRelError: Infinity, meanAbsError: Infinity, cosine: 0, snrDb: -Infinity, ok: false, problem });
  if (!b) return failed('missing in the candidate');
  try {
    return judge(outputMetrics(name, a, b, elementwise(tol)), tol);
  } catch (e) {
    return failed((e as Error).message);
  }
}

/**
 * The input sets to validate on: the ones given, synthetic ones at the sizes asked for, or (by
 * default) synthetic ones the original is found to accept (see validation-inputs.ts).
 */
export async function validationInputs(ref: Model, runtime: Runtime, opts: ValidateOptions): Promise<PreparedInputs> {
  if (opts.prepared) return opts.prepared;
  if (opts.inputs) {
    // the original must run on them: say so now, naming the set, rather than as a failed comparison
    const session = new LazySession(runtime, ref, 'validate-original');
    let outputs;
    try {
      outputs = await runAll(session, opts.inputs);
    } finally {
      await session.release();
    }
    return { sets: opts.inputs.map((s, i) => ({ ...s, outputs: outputs[i]! })) };
  }
  if (opts.sweep) {
    return {
      sets: opts.sweep.map((dims) => ({
        source: `synthetic ${Object.entries(dims).map(([k, v]) => `${k}=${v}`).join(',') || '(static)'}`,
        dims,
        feeds: syntheticInputs(ref, { seed: opts.seed ?? 0, dims, intRanges: intInputRanges(ref), ...(opts.values ? { values: opts.values } : {}) }),
      })),
    };
  }
  const search = await findValidationInputs(ref, concatChunks(serializeModel(ref).chunks), runtime, {
    ...(opts.dims ? { dims: opts.dims } : {}),
    ...(opts.values ? { values: opts.values } : {}),
    ...(opts.seed !== undefined ? { seed: opts.seed } : {}),
    ...opts.search,
  });
  return { sets: search.sets, search };
}

export async function validate(ref: Model, cand: Model, runtime: Runtime, opts: ValidateOptions = {}): Promise<ValidationResult> {
  const tol = typeof opts.tolerance === 'string' ? TOLERANCES[opts.tolerance]! : opts.tolerance ?? TOLERANCES.fp32!;
  const { sets, search } = await validationInputs(ref, runtime, opts);
  const { model: runnable, replaced } = cpuStandIn(cand);
  const refSession = new LazySession(runtime, ref, 'validate-original');
  const candSession = new LazySession(runtime, runnable, 'validate-compiled');
  const cases: ValidationCase[] = [];
  const steps = opts.generate ?? 16;
  const sig = steps > 0 ? decoderSignature(ref) : undefined;
  const plan = sig ? generationPlan(ref, sig, opts.dims ?? {}) : undefined;
  // the compiled model keeps the names of inputs and outputs: the original's signature feeds both
  const tokenByToken = plan && !('skip' in plan) ? plan.tokenByToken : undefined;
  // one session open at a time: the original's results first, then the candidate's (a large
  // model's two sessions never coexist; in the browser, wasm memory holds the larger, not the sum)
  let wants: Record<string, Tensor>[], want: Generation | undefined;
  try {
    wants = await runAll(refSession, sets);
    if (sig && tokenByToken !== undefined) want = await generateOn(ref, refSession, sig, steps, tokenByToken);
  } finally {
    await refSession.release();
  }
  try {
    // a candidate compiled with --input-layout NHWC takes the same data channels-last
    const gots = await runAll(candSession, sets.map((s) => ({ source: s.source, feeds: feedsForLayouts(cand, s.feeds) })));
    sets.forEach((set, i) => {
      const w = wants[i]!, got = gots[i]!;
      const outputs = ref.graph.outputs.filter((v) => w[v.name]).map((v) => verdict(v.name, w[v.name]!, got[v.name], tol));
      cases.push({ source: set.source, dims: set.dims ?? {}, outputs, ok: outputs.every((o) => o.ok) });
    });
    if (want && sig) {
      const got = await generateOn(ref, candSession, sig, steps, tokenByToken!, want.tokens);
      if (!elementwise(tol)) for (const c of cases) c.judged = false;
      cases.push(generationCase(want, got, sig.logits, tol));
    }
  } finally {
    await candSession.release();
  }
  // the worst output: a failing one before any that passes, then the lowest cosine
  let worst: ValidationResult['worst'];
  let worstOk = true;
  const judged = cases.filter((c) => c.judged !== false);
  for (const c of judged) {
    for (const o of c.outputs) {
      if (!worst || (worstOk && !o.ok) || (worstOk === o.ok && o.cosine < worst.cosine)) {
        worst = { source: c.source, output: o.name, maxAbsError: o.maxAbsError, cosine: o.cosine, ...(o.worstElement ? { element: o.worstElement } : {}), ...(o.problem ? { problem: o.problem } : {}) };
        worstOk = o.ok;
      }
    }
  }
  const inputs: ValidationResult['inputs'] = search
    ? { origin: 'synthetic', used: search.sets.map((s) => s.source), tried: search.tried, varied: search.varied }
    : { origin: opts.inputs || (opts.prepared && !opts.prepared.search) ? 'given' : 'synthetic', used: sets.map((s) => s.source) };
  return { tolerance: tol, ok: judged.every((c) => c.ok), cases, inputs, ...(worst ? { worst } : {}), ...(Object.keys(replaced).length ? { standIns: replaced } : {}) };
}

/** One line for the CLI: what was judged, the worst output, and what was reported without judging. */
export function describeValidation(v: ValidationResult): string {
  const judged = v.cases.filter((c) => c.judged !== false);
  const reported = v.cases.filter((c) => c.judged === false);
  const gen = v.cases.find((c) => c.generated)?.generated;
  const w = v.worst;
  const standIns = v.standIns ? ` (on the CPU, with ${Object.entries(v.standIns).map(([op, n]) => `${n} ${op}`).join(', ')} run as standard ops)` : '';
  let line = `validated (${v.tolerance.name}) on ${judged.length} input set(s) (${judged.map((c) => c.source).join('; ')}): worst output '${w?.output}' max abs error ${w?.maxAbsError.toExponential(2)}, cosine ${w?.cosine.toFixed(7)}${standIns}`;
  if (gen) line += `; greedy tokens: ${(gen.agreement * 100).toFixed(0)}% the same, ${(gen.top5 * 100).toFixed(0)}% in the compiled model's top 5`;
  if (reported.length) {
    const lowest = Math.min(...reported.flatMap((c) => c.outputs.map((o) => o.cosine)));
    line += `; reported, not judged (single steps): ${reported.length} set(s), lowest cosine ${lowest.toFixed(7)}`;
  }
  return line;
}

/**
 * A decoder's greedy generation, original vs candidate: the original generates `steps` tokens from
 * a seeded prompt with an empty cache, feeding its cache back; the candidate is fed the same tokens
 * (teacher forcing), and the logits of every step are judged like an output of shape [steps, vocab]
 * (fp32: per element, and every step's argmax must be the original's token; lower precisions: their
 * budget, with top-1 agreement reported).
 */
/** A decoder's greedy generation, as one model ran it: the prompt, its tokens and every step's logits. */
interface Generation { source: string; tokens: number[]; logits: Float32Array[] }

/**
 * Run `steps` greedy tokens from a seeded prompt with an empty cache on `session`, feeding its cache
 * back; with `forced`, the candidate is fed the original's tokens instead of its own (teacher forcing).
 */
async function generateOn(ref: Model, session: LazySession, sig: DecoderSignature, steps: number, tokenByToken: boolean, forced?: number[]): Promise<Generation> {
  const vocab = intInputRanges(ref)[sig.ids] ?? 10;
  const prompt = syntheticPrompt(5, vocab);
  const source = `greedy generation of ${steps} tokens from a ${prompt.length}-token prompt${tokenByToken ? ' fed token by token' : ''}, empty cache`;
  const run = await session.get();
  // the candidate's own element types where it changed them (--fp16-io), the original's names
  const own = session.model === ref ? sig : decoderSignature(session.model) ?? sig;
  try {
    return { source, ...(await greedyGenerate(session.model, run, own, prompt, steps, forced, { tokenByToken })) };
  } catch (e) {
    throw new ValidationError(session.stage, `on ${source}: ${(e as Error).message.split('\n')[0]}`, {}, { cause: e });
  }
}

/**
 * The generation case: the original's generation and the candidate's (fed the original's tokens);
 * the logits of every step are judged like an output of shape [steps, vocab] (fp32: per element,
 * and every step's argmax must be the original's token; lower precisions: their budget, with top-1
 * and top-5 agreement reported).
 */
function generationCase(want: Generation, got: Generation, logits: string, tol: Tolerance): ValidationCase {
  const steps = want.tokens.length;
  const stack = (rows: Float32Array[]): Tensor => {
    const vocabSize = rows[0]?.length ?? 0;
    const all = new Float32Array(rows.length * vocabSize);
    rows.forEach((r, i) => all.set(r, i * vocabSize));
    return Tensor.fromTypedArray(DataType.FLOAT, [rows.length, vocabSize], all);
  };
  const v = verdict(`${logits} (per step)`, stack(want.logits), stack(got.logits), tol);
  const differ = got.tokens.findIndex((t, i) => t !== want.tokens[i]);
  const out: OutputVerdict = tol.atol !== undefined && differ >= 0
    ? { ...v, ok: false, problem: `${v.problem ? `${v.problem}; ` : ''}the compiled model picks token ${got.tokens[differ]} at step ${differ + 1} where the original picks ${want.tokens[differ]}` }
    : v;
  const top5 = want.tokens.filter((t, i) => inTopK(got.logits[i]!, t, 5)).length / steps;
  return { source: want.source, dims: {}, outputs: [out], ok: out.ok, generated: { tokens: want.tokens, agreement: got.tokens.filter((t, i) => t === want.tokens[i]).length / steps, top5 } };
}

/** Whether `token`'s logit is among the k largest of `row` (ties count for the token). */
function inTopK(row: Float32Array, token: number, k: number): boolean {
  const x = row[token]!;
  let above = 0;
  for (const v of row) if (v > x && ++above >= k) return false;
  return true;
}

export interface BisectResult {
  /** the first value (in the reference's order) whose candidate differs beyond tolerance */
  value: string;
  refNode: string;
  candNode: string;
  metrics: OutputVerdict;
  /** how many values both models share and were compared */
  compared: number;
}

/**
 * Find the first intermediate value that diverges: every value both models compute under the same
 * name becomes an output of both, they run on `feeds`, and values are compared in the reference's
 * topological order. Undefined when none diverges.
 */
export async function bisect(ref: Model, cand: Model, runtime: Runtime, feeds: Record<string, Tensor>, tolerance: Tolerance | keyof typeof TOLERANCES = 'fp32'): Promise<BisectResult | undefined> {
  const tol = typeof tolerance === 'string' ? TOLERANCES[tolerance]! : tolerance;
  const r = cloneModel(ref);
  const c = cloneModel(cpuStandIn(cand).model);
  // graph outputs need types: infer them where the models do not say (best effort)
  for (const m of [r, c]) {
    try {
      inferShapes(m, RULES, { evaluate: evaluateNode });
    } catch {
      // values without a type are skipped below
    }
  }
  const order = r.graph.topoOrder();
  const shared: string[] = [];
  for (const n of order) {
    for (const v of n.outputs) {
      if (!v || v.type?.kind !== 'tensor') continue;
      const other = c.graph.local(v.name);
      if (other?.producer) shared.push(v.name);
    }
  }
  for (const name of shared) {
    const a = r.graph.local(name)!, b = c.graph.local(name)!;
    if (!a.isGraphOutput) r.graph.addOutput(a);
    if (!b.isGraphOutput) c.graph.addOutput(b);
  }
  const want = await run(runtime, r, feeds);
  const got = await run(runtime, c, feeds);
  for (const name of shared) {
    const a = want[name], b = got[name];
    if (!a || !b) continue;
    const v = verdict(name, a, b, tol);
    if (!v.ok) {
      return { value: name, refNode: `${r.graph.local(name)!.producer}`, candNode: `${c.graph.local(name)!.producer}`, metrics: v, compared: shared.length };
    }
  }
  return undefined;
}
