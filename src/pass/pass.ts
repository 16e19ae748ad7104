/**
 * Passes and rewrite rules: the interfaces our own passes and users' plugins implement alike.
 *
 *   const eliminateIdentity: Pass = {
 *     name: 'eliminate-identity', description: '...', level: 1, subgraphs: 'recurse',
 *     run(graph, ctx) { ...; return changes; },
 *   };
 *
 * Small local rewrites are Rules (match a node, rewrite through a Patch), turned into a pass by
 * rulePass(); see patch.ts and pattern.ts.
 */
import type { InferResult } from '../analysis/infer.js';
import type { Graph, Node } from '../ir/graph.js';
import type { Model } from '../ir/model.js';
import type { Tensor } from '../ir/tensor.js';
import type { Runtime } from '../runtime.js';
import { UnsupportedOpError, type Patch } from './patch.js';
import type { Target } from '../target.js';

/**
 * 1: standard ONNX ops only (portable); 2: fusions into ops only some runtimes have (com.microsoft);
 * 3: layout and precision changes.
 */
export type PassLevel = 1 | 2 | 3;

export interface Pass {
  /** verb-first, kebab-case: `eliminate-identity`, `fold-constants` */
  readonly name: string;
  readonly description: string;
  readonly level: PassLevel;
  /**
   * 'recurse': the manager runs the pass on every graph (subgraphs of If/Loop/Scan and function
   * bodies included); 'skip': main graph only, on purpose (say why in the pass's comment);
   * 'self': the pass handles subgraphs itself.
   */
  readonly subgraphs: 'recurse' | 'skip' | 'self';
  /** Transform `graph`; return how many changes were made (0 = nothing to do). */
  run(graph: Graph, ctx: PassContext): number | Promise<number>;
  /**
   * Ops this pass may create, as `domain::Op` ('ai.onnx' for the default domain). A target whose
   * capability table lacks one of them skips the pass (and the report says why).
   */
  readonly emits?: readonly string[];
}

/** Captures of a rule match: named values and nodes. */
export type Captures = Record<string, unknown>;

export interface Rule<C extends object = Captures> {
  readonly name: string;
  /** op types this rule looks at (default domain unless `domain` says otherwise) */
  readonly ops: readonly string[];
  readonly domain?: string;
  /** null when the node does not match */
  match(node: Node, ctx: PassContext): C | null;
  rewrite(captures: C, patch: Patch, ctx: PassContext): void;
  /**
   * The rewrite leaves every other value's type and contents as they were (it only replaces values
   * by equivalent ones), so the shape analysis stays valid and is not recomputed after it. Values
   * the rewrite creates are then unknown to it until the next pass.
   */
  readonly preservesTypes?: boolean;
}

export interface PassOptions {
  /** pinned symbolic dims, e.g. { batch: 1 } */
  dims?: Record<string, number>;
  /** constants larger than this (bytes) are not created by folding */
  foldSizeLimit?: number;
  /** evaluates ops the TypeScript evaluator does not have (onnxruntime-node in Node) */
  runtime?: Runtime;
  /** the target being compiled for: passes may ask ctx.supports() before creating an op */
  target?: Target;
  /** what precision lowering was asked for (--quantize); quantization passes read it with the target's preset */
  quantize?: QuantizeOptions;
  /**
   * --io-type: when a precision pass changes the element type the model computes in (float16 -> float32),
   * 'keep' (default) keeps the inputs' and outputs' types with a Cast at the boundary, 'float32' changes them too
   */
  ioType?: 'keep' | 'float32';
}

export type QuantizeMode = 'dynamic' | 'static' | 'int4' | 'fp16';

export interface QuantizeOptions {
  mode: QuantizeMode;
  /** static: calibration input sets (test data or .npy), read by the caller; synthetic when absent */
  calibration?: Record<string, Tensor>[];
  /** static: how ranges are chosen from the observed values */
  method?: 'minmax' | 'percentile' | 'entropy';
  /** percentile method: the percentile kept (default 99.99) */
  percentile?: number;
  /** node names or op types that stay float (e.g. 'Softmax', 'LayerNormalization', the first Conv) */
  keepFloat?: string[];
  /** int4: block size along K (default 32) and whether zero points are stored */
  blockSize?: number;
  /** int4: 8-bit weights for the most error-prone MatMuls while the MatMul weights stay within this share of their fp32 bytes, and 8-bit embedding tables (default 0.2; 0 = pure int4 everywhere) */
  int8Budget?: number;
  symmetric?: boolean;
  /** int4: MatMulNBits accuracy_level, the lowest precision of the activations' compute (0 or 1: fp32, 4: int8 per block; default 4) */
  accuracyLevel?: number;
  /** fp16: convert the model's inputs/outputs to float16 too (default: keep float32 interface) */
  fp16Io?: boolean;
  /** static: collect a per-layer error table (where int8 diverges most) */
  debug?: boolean;
  /**
   * static: what calibration observed, handed to quantize-static as data (compile's calibration
   * stage, src/calibrate.ts, runs the model and fills it just before the pass; passes run no models).
   * Without it quantize-static leaves the model float.
   */
  statistics?: CalibrationStatistics;
  /**
   * static with `debug`: filled by quantize-static, each quantized activation's value in the float
   * model and the DequantizeLinear output that stands for it in the quantized one (the calibration
   * stage runs both models on them for `report.layers`)
   */
  quantizedTensors?: { float: string; dequantized: string }[];
  /** filled by the quantization pass: what it did, for the report */
  report?: Record<string, unknown>;
}

/** The calibration stage's observations: running statistics per value of the graph quantize-static sees. */
export interface CalibrationStatistics {
  /** by value name; the values quantize-static's plan asks for (calibrationTensors) */
  tensors: ReadonlyMap<string, TensorStatistics>;
  /** how many input sets were run */
  sets: number;
  /** the sets were synthetic (no calibration data given) */
  synthetic: boolean;
}

/** Running statistics of one tensor's values (TensorStats in passes/lib/calibration.ts). */
export interface TensorStatistics {
  readonly min: number;
  readonly max: number;
  readonly count: number;
  /** kept for the percentile and entropy methods */
  readonly histogram?: ValueHistogram | undefined;
}

/** A histogram of observed values (RunningHistogram in passes/lib/calibration.ts). */
export interface ValueHistogram {
  /** the value below which `q` (0..1) of the samples lie */
  quantile(q: number): number;
  /** a histogram of |x| with `bins` bins over [0, max|x|] */
  absHistogram(bins?: number): { counts: Float64Array; width: number };
}

/** What a pass may use besides the graph. */
export interface PassContext {
  readonly model: Model;
  readonly options: PassOptions;
  /** opset version imported for a domain ('' = default) */
  opset(domain?: string): number;
  /** Import `domain` at `version` (at least) into the model, for passes that emit its ops (com.microsoft). */
  requireOpset(domain: string, version: number): void;
  /** Types and shapes of every value (inferred on demand, recomputed after changes); throws when inference fails. */
  shapes(): InferResult;
  /**
   * shapes(), or undefined when inference fails, after explaining why (once per graph state): the
   * one way a pass that can do without shapes handles their absence.
   */
  shapesOrExplain(): InferResult | undefined;
  /** Evaluate a node on constant inputs: TypeScript evaluator, then the runtime if there is one. */
  evaluate(node: Node, inputs: (Tensor | undefined)[]): Promise<Tensor[] | undefined>;
  /**
   * Ask for permission to make one rewrite (false once --stop-after-rewrites is used up).
   * Every rewrite asks, so a failing model can be bisected to the rewrite that broke it.
   */
  allowRewrite(what: string): boolean;
  /** Say why something did not fire (shown with --explain). */
  explain(message: string): void;
  /** Tell the context the graph changed, so cached analyses are dropped. */
  invalidate(): void;
  /** Can the target run `op` of `domain` ('' = default)? True when the target has no capability table. */
  supports(domain: string, op: string): boolean;
  /** A Patch for `graph` that refuses ops the target cannot run (the rewrite is then undone). */
  patch(graph: Graph): Patch;
}

/** Make a pass from rules: visit nodes in order, try the rules for the node's op, apply the first that matches. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- each rule has its own capture type
export function rulePass(spec: { name: string; description: string; level: PassLevel; rules: Rule<any>[]; subgraphs?: 'recurse' | 'skip'; emits?: readonly string[] }): Pass {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const byOp = new Map<string, Rule<any>[]>();
  for (const r of spec.rules) {
    for (const op of r.ops) {
      const key = `${r.domain ?? ''}:${op}`;
      byOp.set(key, [...(byOp.get(key) ?? []), r]);
    }
  }
  return {
    name: spec.name,
    description: spec.description,
    level: spec.level,
    subgraphs: spec.subgraphs ?? 'recurse',
    ...(spec.emits ? { emits: spec.emits } : {}),
    run(graph, ctx) {
      let changes = 0;
      for (const node of graph.nodes) {
        if (node.removed) continue;
        // in a function body, an attribute may be a reference to the caller's: its value is unknown here
        if ([...node.attributes.values()].some((a) => a.refAttrName !== undefined)) continue;
        for (const rule of byOp.get(`${node.domain}:${node.opType}`) ?? []) {
          const captures = rule.match(node, ctx);
          if (!captures) continue;
          if (!ctx.allowRewrite(`${spec.name}/${rule.name} at ${node}`)) return changes;
          const patch = ctx.patch(graph);
          try {
            rule.rewrite(captures, patch, ctx);
          } catch (e) {
            if (!(e instanceof UnsupportedOpError)) throw e;
            ctx.explain(`${rule.name} at ${node}: ${e.message}`);
            break;
          }
          const n = patch.commit();
          if (n > 0) {
            changes += n;
            if (!rule.preservesTypes) ctx.invalidate();
          }
          break;
        }
      }
      return changes;
    },
  };
}
