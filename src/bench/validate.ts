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
import type { Tensor } from '../ir/tensor.js';
import { intInputRanges, syntheticInputs } from '../inputs.js';
import { concatChunks } from '../onnx/codec.js';
import { serializeModel } from '../io.js';
import type { Runtime } from '../runtime.js';
import { outputMetrics, type OutputMetrics } from './metrics.js';

export interface Tolerance {
  name: string;
  /** |a-b| <= atol + rtol*|a| for every element (float outputs), unless only cosine/top-1 are judged */
  atol?: number;
  rtol?: number;
  /** max |a-b| <= maxScaledError * max |a| (the error relative to the output's scale) */
  maxScaledError?: number;
  minCosine: number;
  /** top-1 agreement over the last axis, where it applies */
  minTop1?: number;
}

/** Tolerances per kind of transformation. */
export const TOLERANCES: Record<string, Tolerance> = {
  fp32: { name: 'fp32', atol: 1e-4, rtol: 1e-3, minCosine: 0.99999 },
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
  /** where the inputs came from: a test data folder, or `synthetic` with the dims used */
  source: string;
  dims: Record<string, number>;
  outputs: OutputVerdict[];
  ok: boolean;
}

export interface ValidationResult {
  tolerance: Tolerance;
  ok: boolean;
  cases: ValidationCase[];
  /** the worst output over all cases (lowest cosine) */
  worst?: { source: string; output: string; maxAbsError: number; cosine: number; problem?: string };
  /** ops the validating runtime lacks, run as their standard-op composition (see stand-in.ts), with counts */
  standIns?: Record<string, number>;
}

export class ValidationError extends Error {}

function elementwise(tol: Tolerance): { atol: number; rtol: number } | undefined {
  return tol.atol === undefined ? undefined : { atol: tol.atol, rtol: tol.rtol ?? 0 };
}

export function judge(m: OutputMetrics, tol: Tolerance): OutputVerdict {
  const problems: string[] = [];
  if (m.exactMatch !== undefined) {
    if (m.exactMatch < 1) problems.push(`${((1 - m.exactMatch) * 100).toFixed(2)}% of elements differ`);
  } else {
    if (m.violations) problems.push(`${m.violations} values beyond ${tol.atol} + ${tol.rtol ?? 0}*|ref| (max abs error ${m.maxAbsError.toExponential(2)})`);
    if (tol.maxScaledError !== undefined && !((m.maxScaledError ?? Infinity) <= tol.maxScaledError)) {
      problems.push(`max error ${m.maxAbsError.toExponential(2)} is ${((m.maxScaledError ?? Infinity) * 100).toPrecision(3)}% of the output's largest magnitude (budget ${tol.maxScaledError * 100}%)`);
    }
    if (!(m.cosine >= tol.minCosine)) problems.push(`cosine ${m.cosine.toFixed(6)} < ${tol.minCosine}`);
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
  /** sizes for symbolic dims, one entry per run (default: defaultSweep) */
  sweep?: Record<string, number>[];
  /** dims pinned in every sweep entry */
  dims?: Record<string, number>;
  seed?: number;
  tolerance?: Tolerance | keyof typeof TOLERANCES;
}

export async function validate(ref: Model, cand: Model, runtime: Runtime, opts: ValidateOptions = {}): Promise<ValidationResult> {
  const tol = typeof opts.tolerance === 'string' ? TOLERANCES[opts.tolerance]! : opts.tolerance ?? TOLERANCES.fp32!;
  const sets = opts.inputs ?? (opts.sweep ?? defaultSweep(ref, opts.dims)).map((dims) => ({
    source: `synthetic ${Object.entries(dims).map(([k, v]) => `${k}=${v}`).join(',') || '(static)'}`,
    dims,
    feeds: syntheticInputs(ref, { seed: opts.seed ?? 0, dims, intRanges: intInputRanges(ref) }),
  }));
  const cases: ValidationCase[] = [];
  const { model: runnable, replaced } = cpuStandIn(cand);
  for (const set of sets) {
    const want = await run(runtime, ref, set.feeds);
    // a candidate compiled with --input-layout NHWC takes the same data channels-last
    const got = await run(runtime, runnable, feedsForLayouts(cand, set.feeds));
    const outputs: OutputVerdict[] = [];
    for (const v of ref.graph.outputs) {
      const a = want[v.name];
      const b = got[v.name];
      if (!a) continue;
      if (!b) {
        outputs.push({ name: v.name, shape: [...a.dims], maxAbsError: Infinity, maxRelError: Infinity, meanAbsError: Infinity, cosine: 0, snrDb: -Infinity, ok: false, problem: 'missing in the candidate' });
        continue;
      }
      try {
        outputs.push(judge(outputMetrics(v.name, a, b, elementwise(tol)), tol));
      } catch (e) {
        outputs.push({ name: v.name, shape: [...a.dims], maxAbsError: Infinity, maxRelError: Infinity, meanAbsError: Infinity, cosine: 0, snrDb: -Infinity, ok: false, problem: (e as Error).message });
      }
    }
    cases.push({ source: set.source, dims: 'dims' in set ? (set as { dims: Record<string, number> }).dims : {}, outputs, ok: outputs.every((o) => o.ok) });
  }
  // the worst output: a failing one before any that passes, then the lowest cosine
  let worst: ValidationResult['worst'];
  let worstOk = true;
  for (const c of cases) {
    for (const o of c.outputs) {
      if (!worst || (worstOk && !o.ok) || (worstOk === o.ok && o.cosine < worst.cosine)) {
        worst = { source: c.source, output: o.name, maxAbsError: o.maxAbsError, cosine: o.cosine, ...(o.problem ? { problem: o.problem } : {}) };
        worstOk = o.ok;
      }
    }
  }
  return { tolerance: tol, ok: cases.every((c) => c.ok), cases, ...(worst ? { worst } : {}), ...(Object.keys(replaced).length ? { standIns: replaced } : {}) };
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
    let verdict: OutputVerdict;
    try {
      verdict = judge(outputMetrics(name, a, b, elementwise(tol)), tol);
    } catch (e) {
      verdict = { name, shape: [...a.dims], maxAbsError: Infinity, maxRelError: Infinity, meanAbsError: Infinity, cosine: 0, snrDb: -Infinity, ok: false, problem: (e as Error).message };
    }
    if (!verdict.ok) {
      return { value: name, refNode: `${r.graph.local(name)!.producer}`, candNode: `${c.graph.local(name)!.producer}`, metrics: verdict, compared: shared.length };
    }
  }
  return undefined;
}
