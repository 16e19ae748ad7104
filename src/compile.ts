/**
 * compile(): run a target's pipeline (or exactly the passes asked for) on a model, and report what
 * each pass did and what the model looked like before and after.
 */
import { inferShapes } from './analysis/infer.js';
import { RefusedError, UsageError } from './errors.js';
import { RULES } from './analysis/ops/index.js';
import { evaluateNode } from './analysis/evaluator.js';
import { dataTypeName } from './ir/dtype.js';
import type { Model } from './ir/model.js';
import { PassManager, type ManagerOptions, type PassStat, type PipelineStep } from './pass/manager.js';
import type { Pass, QuantizeMode } from './pass/pass.js';
import { checkPlacement, type CpuPlaced, type Violation, type WithCasts } from '../targets/capabilities/check.js';
import type { PipelineSpec, Target } from './target.js';
import { findPass, PASSES } from '../passes/index.js';
import { quantizedOps } from '../passes/lib/model-precision.js';
import { QUANTIZE_STAGES } from '../targets/lib/pipelines.js';
import { withCalibration } from './calibrate.js';

/** An option compile() cannot honour (unknown pass, level above the target's, quantize mode): a usage error. */
export class CompileError extends UsageError {}

export interface ModelStats {
  nodes: number;
  opHistogram: Record<string, number>;
  initializers: number;
  /** elements of all constant data: initializers and Constant nodes' tensors */
  parameters: number;
  parameterBytes: number;
  bytesByDtype: Record<string, number>;
}

/** The pass that lowers precision for each --quantize mode (see QUANTIZE_STAGES in targets/lib/pipelines.ts). */
export const QUANTIZE_PASSES: Record<QuantizeMode, string> = Object.fromEntries(Object.entries(QUANTIZE_STAGES).map(([m, s]) => [m, s.pass])) as Record<QuantizeMode, string>;

export interface CompileOptions extends ManagerOptions {
  /** passes to run before the pipeline (e.g. apply-input-layout from --input-layout) */
  before?: Pass[];
  /** run exactly these passes, in this order, instead of the target's pipeline */
  passes?: string[];
  /** remove these passes from the pipeline */
  disablePasses?: string[];
  /** passes from plugins: they can be named in `passes`; otherwise they run after the pipeline */
  plugins?: Pass[];
}

export interface CompileReport {
  target: string;
  /** the session options the target recommends (also in the model's metadata) */
  sessionOptions?: Record<string, string | number | boolean>;
  /** what the quantization pass did, when --quantize was given */
  quantization?: Record<string, unknown>;
  /** nodes the target cannot run (empty when legal) */
  violations: Violation[];
  /** nodes the target's EP lacks that its runtime's CPU fallback runs (a warning; empty without a fallback) */
  cpuPlaced: CpuPlaced[];
  /** nodes the runtime runs only through Casts it inserts (e.g. float16 -> float32 on ORT's CPU EP; a warning) */
  withCasts: WithCasts[];
  pipeline: string[];
  passes: PassStat[];
  rewrites: number;
  stoppedAt?: string;
  warnings: string[];
  before: ModelStats;
  after: ModelStats;
  timeMs: number;
}

export function modelStats(model: Model): ModelStats {
  const hist: Record<string, number> = {};
  let nodes = 0, initializers = 0, parameters = 0, parameterBytes = 0;
  const byDtype: Record<string, number> = {};
  const count = (t: { elementCount: number; byteLength: number | undefined; dataType: number }): void => {
    parameters += t.elementCount;
    const bytes = t.byteLength ?? 0;
    parameterBytes += bytes;
    const k = dataTypeName(t.dataType);
    byDtype[k] = (byDtype[k] ?? 0) + bytes;
  };
  for (const g of model.allGraphs()) {
    for (const n of g.nodes) {
      nodes++;
      hist[n.qualifiedOp] = (hist[n.qualifiedOp] ?? 0) + 1;
      // a Constant node's tensor is model data like an initializer (folding turns one into the other)
      const value = n.opType === 'Constant' && n.domain === '' ? n.attr('value') : undefined;
      if (value?.type === 'tensor') count(value.value);
    }
    for (const v of g.initializers) {
      const t = v.initializer;
      if (!t) continue;
      initializers++;
      count(t);
    }
  }
  const opHistogram = Object.fromEntries(Object.entries(hist).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])));
  return { nodes, opHistogram, initializers, parameters, parameterBytes, bytesByDtype: byDtype };
}

/** A pass by name (built-in or plugin); unknown names are a usage error. */
function known(name: string, plugins: readonly Pass[]): Pass {
  const pass = findPass(name, plugins);
  if (!pass) throw new CompileError(`unknown pass '${name}' (known: ${[...plugins, ...PASSES].map((p) => p.name).sort().join(', ')})`);
  return pass;
}

/** A pass for the target's pipeline: known, and within the target's level. */
function lookup(name: string, target: Target, plugins: readonly Pass[]): Pass {
  const pass = known(name, plugins);
  if (pass.level > target.maxLevel) throw new CompileError(`pass '${name}' is level ${pass.level}; target '${target.name}' allows level ${target.maxLevel} at most`);
  return pass;
}

/** The pipeline to run: the target's (minus disabled passes, plus plugin passes), or exactly `passes`. */
export function resolvePipeline(target: Target, opts: Pick<CompileOptions, 'passes' | 'disablePasses' | 'plugins'> = {}): PipelineStep[] {
  const plugins = opts.plugins ?? [];
  const disabled = new Set(opts.disablePasses ?? []);
  // --disable-pass names a pass that exists (the target may not run it: disabling it is then a no-op)
  for (const d of disabled) known(d, plugins);
  if (opts.passes) return opts.passes.filter((n) => !disabled.has(n)).map((n) => lookup(n, target, plugins));
  const steps: PipelineStep[] = [];
  const keep = (n: string): boolean => !disabled.has(n);
  for (const spec of target.pipeline as PipelineSpec[]) {
    if (typeof spec === 'string') {
      if (keep(spec)) steps.push(lookup(spec, target, plugins));
    } else {
      const group = spec.fixedPoint.filter(keep).map((n) => lookup(n, target, plugins));
      if (group.length) steps.push({ fixedPoint: group, ...(spec.maxIterations ? { maxIterations: spec.maxIterations } : {}) });
    }
  }
  for (const p of plugins) if (keep(p.name)) steps.push(lookup(p.name, target, plugins));
  return steps;
}

function stepNames(steps: PipelineStep[]): string[] {
  return steps.map((s) => ('fixedPoint' in s ? `(${s.fixedPoint.map((p) => p.name).join(' ')})*` : s.name));
}

/** Quantization modes a target accepts (`--quantize`), from its preset and pass levels. */
export function quantizeModes(target: Target): QuantizeMode[] {
  return target.quantizeModes ?? [];
}

/**
 * Compile `model` in place for `target`. Throws CompileError for options it cannot honour, and a
 * PassError (stage 'pass', naming it) when a pass fails, a RefusedError for a model it will not compile
 * (already quantized, with --quantize); ops the target cannot run are in `violations`.
 */
export async function compile(model: Model, target: Target, opts: CompileOptions = {}): Promise<CompileReport> {
  const t0 = performance.now();
  const mode = opts.quantize?.mode;
  // --quantize adds a stage to the pipeline and leaves out the passes that would hide its inputs (pipeline data)
  const stage = mode ? QUANTIZE_STAGES[mode] : undefined;
  const steps = [...(opts.before ?? []), ...resolvePipeline(target, { ...opts, disablePasses: [...(opts.disablePasses ?? []), ...(stage?.disables ?? [])] })];
  if (mode) {
    if (!quantizeModes(target).includes(mode)) {
      throw new CompileError(`target '${target.name}' cannot run --quantize ${mode} (it takes: ${quantizeModes(target).join(', ') || 'none'})`);
    }
    // quantizing a quantized model would compound the first quantization's error with a second one
    // (and the passes would quantize its dequantized float islands, not its integer weights): refused
    const found = Object.entries(quantizedOps(model));
    if (found.length) {
      const what = found.map(([op, n]) => `${n} ${op}`).join(', ');
      throw new RefusedError('pass', `the model is already quantized (${what}); --quantize ${mode} would quantize it twice: compile it without --quantize`, { pass: QUANTIZE_PASSES[mode] });
    }
    // the quantization stage is a property of the mode, not of the target's pipeline: it runs whatever
    // the target's level, because the target's quantizeModes admitted the mode (checked above)
    const quantizer = known(stage!.pass, opts.plugins ?? []);
    // static: the calibration stage runs the model just before the pass and hands it the statistics
    steps.push(mode === 'static' ? withCalibration(quantizer) : quantizer);
    // the fusions it disabled run after it only where the target's pipeline has them
    const own = new Set((target.pipeline as PipelineSpec[]).flatMap((s) => (typeof s === 'string' ? [s] : s.fixedPoint)));
    for (const name of stage!.after) if (!stage!.disables.includes(name) || own.has(name)) steps.push(lookup(name, target, []));
  }
  const before = modelStats(model);
  const run = await new PassManager(steps, { ...opts, target }).run(model);
  // leave every value's type in the model (saved as value_info) for the runtime and later tools
  try {
    inferShapes(model, RULES, { ...(opts.dims ? { dims: opts.dims } : {}), evaluate: evaluateNode });
  } catch (e) {
    run.warnings.push(`shape inference after compiling: ${(e as Error).message}`);
  }
  const { violations, cpuPlaced, withCasts } = target.capabilities ? checkPlacement(model, target.capabilities) : { violations: [], cpuPlaced: [], withCasts: [] };
  model.setMetadata('retarget.target', target.name);
  if (target.sessionOptions) model.setMetadata('retarget.session_options', JSON.stringify(target.sessionOptions));
  return {
    target: target.name,
    ...(target.sessionOptions ? { sessionOptions: target.sessionOptions } : {}),
    ...(opts.quantize?.report ? { quantization: opts.quantize.report } : {}),
    violations,
    cpuPlaced,
    withCasts,
    pipeline: stepNames(steps),
    passes: run.passes,
    rewrites: run.rewrites,
    ...(run.stoppedAt ? { stoppedAt: run.stoppedAt } : {}),
    warnings: run.warnings,
    before,
    after: modelStats(model),
    timeMs: Math.round((performance.now() - t0) * 10) / 10,
  };
}
