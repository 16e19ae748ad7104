/**
 * The PassManager runs a pipeline: passes in order, and fixed-point groups repeated until nothing
 * changes (with an iteration cap, and a stop when the graph comes back to a state it was in: two
 * passes undoing each other). It times each pass, counts its changes, can verify the IR after every
 * pass, dump it after chosen passes, and stop after N rewrites to bisect a bad rewrite.
 */
import { evaluateNode } from '../analysis/evaluator.js';
import { inferShapes, type InferResult } from '../analysis/infer.js';
import { RULES } from '../analysis/ops/index.js';
import { evaluateWithRuntime, RuntimeEvalError } from '../analysis/runtime-eval.js';
import type { Graph, Node } from '../ir/graph.js';
import type { Model } from '../ir/model.js';
import { printModel } from '../ir/printer.js';
import type { Tensor } from '../ir/tensor.js';
import { verifyModel, VerifyError } from '../ir/verify.js';
import type { Pass, PassContext, PassOptions } from './pass.js';
import { Patch } from './patch.js';
import { targetRuns } from '../target.js';
import { InternalError, isBug, RetargetError, UsageError } from '../errors.js';

export interface FixedPoint {
  fixedPoint: Pass[];
  /** default 8 */
  maxIterations?: number;
}

export type PipelineStep = Pass | FixedPoint;

export interface ManagerOptions extends PassOptions {
  /** run verify() after every pass; a broken IR stops the pipeline with the pass named */
  verifyEach?: boolean;
  /** pass names after which the IR is dumped (text form) through onDump */
  dumpAfter?: string[];
  onDump?: (pass: string, text: string) => void;
  /** allow only this many rewrites in total, then stop (bisecting a bad rewrite) */
  stopAfterRewrites?: number;
  /** receives explanations of rewrites that did not fire */
  onExplain?: (pass: string, message: string) => void;
  /**
   * called as each pass starts: its 1-based position in the pipeline (fixed-point groups count each
   * pass once; a group that repeats goes back to its first position), the number of passes in the
   * pipeline, its name, and the milliseconds since run() began
   */
  onProgress?: (index: number, total: number, pass: string, elapsedMs: number) => void;
}

export interface PassStat {
  name: string;
  runs: number;
  changes: number;
  timeMs: number;
  /** why the pass did not run for this target */
  skipped?: string;
}

export interface RunReport {
  passes: PassStat[];
  rewrites: number;
  /** set when --stop-after-rewrites ended the run: the last rewrite allowed */
  stoppedAt?: string;
  warnings: string[];
}

/** A pass failed (threw, or left an IR that does not verify): stage 'pass', naming it (and the node, when known). */
export class PassError extends RetargetError {
  constructor(pass: string, message: string, cause?: unknown, node?: string) {
    super('pass', message, { pass, ...(node !== undefined ? { node } : {}) }, cause === undefined ? undefined : { cause });
  }
}

/**
 * What a pass threw, typed: a usage error stays one; an error that knows its stage keeps it (one
 * without a stage becomes the pass's, naming it); a bug becomes an InternalError of the pass; any
 * other error a PassError.
 */
export function passFailure(pass: string, e: unknown): Error {
  if (e instanceof UsageError) return e;
  if (e instanceof RetargetError) {
    if (e.stage === undefined || e.stage === 'pass') e.where = { pass, ...e.where };
    return e.atStage('pass');
  }
  const message = e instanceof Error ? e.message : String(e);
  const err = isBug(e) ? new InternalError('pass', message, { pass }, { cause: e }) : new PassError(pass, message, e);
  if (e instanceof Error && e.stack) err.stack = e.stack;
  return err;
}

class Context implements PassContext {
  private cachedShapes: InferResult | undefined;
  private shapesError: Error | undefined;
  private shapesErrorSaidTo: unknown;
  rewrites = 0;
  exhausted = false;
  lastRewrite: string | undefined;
  currentPass = '';

  constructor(readonly model: Model, readonly options: ManagerOptions) {}

  opset(domain = ''): number {
    return this.model.opsetVersion(domain) ?? 1;
  }

  requireOpset(domain: string, version: number): void {
    const norm = (d: string | undefined): string => (d === undefined || d === 'ai.onnx' ? '' : d);
    const existing = this.model.opsetImports.find((o) => norm(o.domain) === norm(domain));
    if (!existing) this.model.opsetImports.push({ domain, version });
    else if (existing.version < version) existing.version = version;
  }

  shapes(): InferResult {
    // dims are not pinned here: fix-dims writes them into the model, and a pipeline without it
    // must not specialize the model behind the inputs' backs
    this.cachedShapes ??= inferShapes(this.model, RULES, { evaluate: evaluateNode });
    return this.cachedShapes;
  }

  shapesOrExplain(): InferResult | undefined {
    if (!this.shapesError) {
      try {
        return this.shapes();
      } catch (e) {
        // one failure per graph state: not recomputed on every ask
        this.shapesError = e as Error;
      }
    }
    // said once to each pass that asks
    if (this.shapesErrorSaidTo !== this.currentPass) {
      this.shapesErrorSaidTo = this.currentPass;
      this.explain(`shape inference failed: ${this.shapesError.message}`);
    }
    return undefined;
  }

  async evaluate(node: Node, inputs: (Tensor | undefined)[]): Promise<Tensor[] | undefined> {
    const opset = this.opset(node.domain);
    const ts = evaluateNode(node, inputs, opset);
    if (ts) return ts;
    const runtime = this.options.runtime;
    if (!runtime) return undefined;
    try {
      const domains = Object.fromEntries(this.model.opsetImports.map((o) => [o.domain ?? '', o.version]));
      return await evaluateWithRuntime(runtime, node, inputs, opset, domains);
    } catch (e) {
      // the runtime refusing a node (no kernel, bad inputs) means it is not folded, nothing worse
      if (!(e instanceof RuntimeEvalError)) throw e;
      this.explain(`${node}: not evaluated by the runtime (${(e as Error).message.split('\n')[0]})`);
      return undefined;
    }
  }

  allowRewrite(what: string): boolean {
    const limit = this.options.stopAfterRewrites;
    if (limit !== undefined && this.rewrites >= limit) {
      this.exhausted = true;
      return false;
    }
    this.rewrites++;
    this.lastRewrite = what;
    return true;
  }

  explain(message: string): void {
    this.options.onExplain?.(this.currentPass, message);
  }

  supports(domain: string, op: string): boolean {
    // the kernel at the opset the model imports for the domain (none imported yet: the newest), as the final check judges it
    return targetRuns(this.options.target, op, domain, this.model.opsetVersion(domain), this.opset(''));
  }

  patch(graph: Graph): Patch {
    const maxInputs = this.options.target?.capabilities?.maxInputs;
    return new Patch(graph, {
      supports: (d, op) => this.supports(d, op),
      ...(maxInputs ? { maxInputs: (d: string, op: string) => maxInputs[`${d === '' ? 'ai.onnx' : d}::${op}`] } : {}),
      ...(this.options.target ? { target: this.options.target.name } : {}),
    });
  }

  invalidate(): void {
    this.cachedShapes = undefined;
    this.shapesError = undefined;
    this.shapesErrorSaidTo = undefined;
  }
}

/** A cheap structural fingerprint of the model, to notice a fixed-point group going in circles. */
function fingerprint(model: Model): string {
  const parts: string[] = [];
  for (const g of model.allGraphs()) {
    for (const n of g.nodes) parts.push(`${n.domain}:${n.opType}(${n.inputs.map((v) => v?.name ?? '').join(',')})>${n.outputs.map((v) => v?.name ?? '').join(',')}`);
    parts.push(`|${g.initializers.length}`);
  }
  let h = 0x811c9dc5;
  const s = parts.join(';');
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return `${s.length}:${h >>> 0}`;
}

export class PassManager {
  constructor(readonly steps: PipelineStep[], readonly options: ManagerOptions = {}) {}

  async run(model: Model): Promise<RunReport> {
    return new PipelineRun(model, this.steps, this.options).run();
  }
}

/** One run of a pipeline on a model: the context the passes share, the position, the stats and warnings so far. */
class PipelineRun {
  private readonly ctx: Context;
  private readonly started = performance.now();
  private readonly totalPasses: number;
  /** the 1-based position in the pipeline of the pass running now (for onProgress) */
  private position = 0;
  private readonly stats = new Map<string, PassStat>();
  private readonly warnings: string[] = [];

  constructor(private readonly model: Model, private readonly steps: PipelineStep[], private readonly options: ManagerOptions) {
    this.ctx = new Context(model, options);
    this.totalPasses = steps.reduce((n, s) => n + ('fixedPoint' in s ? s.fixedPoint.length : 1), 0);
  }

  async run(): Promise<RunReport> {
    const ctx = this.ctx;
    let stepBase = 0;
    for (const step of this.steps) {
      if (ctx.exhausted) break;
      const base = stepBase;
      stepBase += 'fixedPoint' in step ? step.fixedPoint.length : 1;
      if ('fixedPoint' in step) {
        await this.runFixedPoint(step, base);
      } else {
        this.position = base + 1;
        await this.runPass(step);
      }
    }
    return {
      passes: [...this.stats.values()].map((s) => ({ ...s, timeMs: Math.round(s.timeMs * 100) / 100 })),
      rewrites: ctx.rewrites,
      ...(ctx.exhausted && ctx.lastRewrite ? { stoppedAt: ctx.lastRewrite } : {}),
      warnings: this.warnings,
    };
  }

  /** The group's passes, repeated until nothing changes, the graph comes back to an earlier state, or the cap. */
  private async runFixedPoint(step: FixedPoint, base: number): Promise<void> {
    const ctx = this.ctx;
    const seen = new Set<string>([fingerprint(this.model)]);
    const max = step.maxIterations ?? 8;
    const names = (): string => step.fixedPoint.map((p) => p.name).join(', ');
    for (let i = 0; i < max && !ctx.exhausted; i++) {
      let changes = 0;
      for (const [j, p] of step.fixedPoint.entries()) {
        this.position = base + j + 1;
        changes += await this.runPass(p);
        if (ctx.exhausted) break;
      }
      if (changes === 0) break;
      const fp = fingerprint(this.model);
      if (seen.has(fp)) {
        this.warnings.push(`passes ${names()} undo each other (the graph came back to an earlier state); stopped after ${i + 1} iterations`);
        break;
      }
      seen.add(fp);
      if (i === max - 1) this.warnings.push(`passes ${names()} still changing after ${max} iterations`);
    }
  }

  /** One pass (skipped when the target cannot run an op it emits), timed and counted, then verified and dumped as asked. */
  private async runPass(pass: Pass): Promise<number> {
    const { ctx, options } = this;
    options.onProgress?.(this.position, this.totalPasses, pass.name, performance.now() - this.started);
    const stat: PassStat = this.stats.get(pass.name) ?? { name: pass.name, runs: 0, changes: 0, timeMs: 0 };
    this.stats.set(pass.name, stat);
    const missing = (pass.emits ?? []).filter((k) => { const [d, op] = k.split('::') as [string, string]; return !ctx.supports(d === 'ai.onnx' ? '' : d, op); });
    if (missing.length) {
      stat.skipped = `target '${options.target?.name}' cannot run ${missing.join(', ')}`;
      return 0;
    }
    ctx.currentPass = pass.name;
    const graphs: Graph[] = pass.subgraphs === 'recurse' ? [...this.model.allGraphs()] : [this.model.graph];
    const t0 = performance.now();
    const changes = await this.runOnGraphs(pass, graphs);
    for (const g of graphs) g.compact();
    stat.runs++;
    stat.changes += changes;
    stat.timeMs += performance.now() - t0;
    if (options.verifyEach) {
      const problems = verifyModel(this.model);
      if (problems.length) throw new PassError(pass.name, `the IR does not verify after it: ${new VerifyError(problems).message}`);
    }
    if (options.dumpAfter?.includes(pass.name)) options.onDump?.(pass.name, printModel(this.model));
    return changes;
  }

  /** `pass` on each graph (not those of a removed node), in order, until the rewrites run out: its changes. */
  private async runOnGraphs(pass: Pass, graphs: Graph[]): Promise<number> {
    const ctx = this.ctx;
    let changes = 0;
    for (const g of graphs) {
      if (g.owner?.removed) continue;
      let n: number;
      try {
        n = await pass.run(g, ctx);
      } catch (e) {
        throw passFailure(pass.name, e);
      }
      if (n > 0) {
        changes += n;
        ctx.invalidate();
        // rewrites append their nodes at the end: restore topological order (stable)
        g.toposort();
      }
      if (ctx.exhausted) break;
    }
    return changes;
  }
}
