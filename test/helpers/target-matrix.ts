/**
 * The target-pair matrix (test/target-matrix.test.ts, issue #19 part 3): compile a fixture for
 * target A in one of A's precision modes (M_A), then compile M_A for target B without --quantize
 * (M_AB), and judge M_AB: B's capability check, and its outputs against M_A's.
 */
import path from 'node:path';
import { compile, type CompileReport } from '../../src/compile.js';
import { TOLERANCES, validate, type Tolerance, type ValidationResult } from '../../src/bench/validate.js';
import { cpuStandIn } from '../../src/bench/stand-in.js';
import { cloneModel } from '../../src/ir/clone.js';
import type { Model } from '../../src/ir/model.js';
import type { Tensor } from '../../src/ir/tensor.js';
import { serializeModel } from '../../src/io.js';
import { concatChunks } from '../../src/onnx/codec.js';
import { readModel } from '../../src/node/files.js';
import { readInputSets } from '../../src/node/inputs.js';
import { onnxruntimeNode } from '../../src/node/ort.js';
import type { QuantizeMode } from '../../src/pass/pass.js';
import type { Runtime } from '../../src/runtime.js';
import { targetRuns, type PipelineSpec, type Target } from '../../src/target.js';
import { ortWebRuntime, type OrtModule } from '../../src/web/ort-runtime.js';
import { quantizedOps } from '../../passes/lib/model-precision.js';
import { DataType } from '../../src/ir/dtype.js';
import { lowering } from '../../passes/lib/lowerings/index.js';

export type Mode = 'none' | QuantizeMode;

export interface Fixture {
  name: string;
  original: Model;
  /** the test_data_set_* feeds: validation inputs, and calibration for --quantize static */
  sets: { source: string; feeds: Record<string, Tensor> }[];
}

export function loadFixture(dir: string): Fixture {
  const { model } = readModel(path.join(dir, 'model.onnx'));
  return { name: path.basename(dir), original: model, sets: readInputSets(model, dir) };
}

/** Compile a copy of `model` for `target`; the copy and the report (the input is not touched). */
export async function compileCopy(model: Model, target: Target, mode: Mode, calibration?: Record<string, Tensor>[]): Promise<{ model: Model; report: CompileReport }> {
  const m = cloneModel(model);
  const report = await compile(m, target, {
    runtime: onnxruntimeNode,
    ...(mode !== 'none' ? { quantize: { mode, report: {}, ...(mode === 'static' && calibration ? { calibration } : {}) } } : {}),
  });
  return { model: m, report };
}

/** Targets whose runtime this machine lacks (no GPU): their models run on the CPU stand-in. */
export const GPU_TARGETS: readonly string[] = ['cuda', 'tensorrt', 'webgpu'];

let web: Runtime | undefined;
/** onnxruntime-web's wasm EP in this process (single-threaded: no worker threads to tear down). */
export async function webRuntime(): Promise<Runtime> {
  if (!web) {
    const ort = (await import('onnxruntime-web')) as unknown as OrtModule & { env: { wasm: { numThreads: number } } };
    ort.env.wasm.numThreads = 1;
    web = ortWebRuntime(ort);
  }
  return web;
}

/**
 * The runtime a target's models run on, where this machine has it: onnxruntime-web's wasm EP for
 * wasm; onnxruntime-node's CPU EP for the ORT CPU targets and portable; for cuda, tensorrt and webgpu
 * (no GPU here) the CPU stand-in: onnxruntime-node, with validate() rewriting the ops only a GPU
 * runtime has (src/bench/stand-in.ts).
 */
export async function runtimeFor(target: Target): Promise<{ runtime: Runtime; standIn: boolean }> {
  if (target.name === 'wasm') return { runtime: await webRuntime(), standIn: false };
  return { runtime: onnxruntimeNode, standIn: GPU_TARGETS.includes(target.name) };
}

/** M_A's outputs on every set, computed once on A's runtime (the stand-in for GPU-only ops). */
export async function referenceOutputs(model: Model, target: Target, sets: Fixture['sets']): Promise<Record<string, Tensor>[]> {
  const { runtime } = await runtimeFor(target);
  const s = await runtime.createSession(concatChunks(serializeModel(cpuStandIn(model).model).chunks));
  try {
    const out: Record<string, Tensor>[] = [];
    for (const set of sets) out.push(await s.run(set.feeds));
    return out;
  } finally {
    await s.release();
  }
}

export function pipelineHas(target: Target, pass: string): boolean {
  return (target.pipeline as PipelineSpec[]).some((s) => (typeof s === 'string' ? s === pass : s.fixedPoint.includes(pass)));
}

export { integerProducts } from '../../passes/lib/model-precision.js';

/** The input that holds the quantized weight, by quantized op. */
const WEIGHT_INPUT: Record<string, number> = {
  'ai.onnx::DequantizeLinear': 0,
  'ai.onnx::ConvInteger': 1,
  'ai.onnx::MatMulInteger': 1,
  'ai.onnx::QLinearConv': 3,
  'ai.onnx::QLinearMatMul': 3,
  'com.microsoft::DynamicQuantizeMatMul': 1,
  'com.microsoft::MatMulIntegerToFloat': 1,
  'com.microsoft::MatMulNBits': 1,
  'com.microsoft::GatherBlockQuantized': 0,
};
const INTEGER_TYPES = new Set<number>([DataType.UINT8, DataType.INT8, DataType.UINT16, DataType.INT16, DataType.INT32, DataType.UINT4, DataType.INT4]);

/**
 * Quantized ops reading a constant integer weight (DequantizeLinear of an int8 weight or int32 bias,
 * MatMulNBits, ConvInteger, ...), by op: the model's integer weights, as the runtime sees them.
 */
export function quantizedWeights(m: Model, opts: { int32?: boolean } = {}): Record<string, number> {
  const out: Record<string, number> = {};
  for (const g of m.allGraphs()) {
    for (const n of g.nodes) {
      const i = WEIGHT_INPUT[n.qualifiedOp];
      const w = i === undefined ? undefined : n.inputs[i];
      const t = w?.initializer ?? (w?.producer?.opType === 'Constant' ? (w.producer.attr('value')?.value as Tensor | undefined) : undefined);
      // int32 is a bias's type (DequantizeLinear of an int32 bias), not a weight's: left out on request
      if (t && INTEGER_TYPES.has(t.dataType) && !(opts.int32 === false && t.dataType === DataType.INT32)) out[n.qualifiedOp] = (out[n.qualifiedOp] ?? 0) + 1;
    }
  }
  return out;
}

/** M_A's ops that B has no kernel for and lower-contrib-ops rewrites (as the pass context decides). */
export function loweredOps(mA: Model, b: Target): string[] {
  const opset = mA.opsetVersion('') ?? 1;
  return [...new Set(mA.graph.nodes.filter((n) => !targetRuns(b, n.opType, n.domain, mA.opsetVersion(n.domain), opset) && lowering(n.domain, n.opType)).map((n) => n.opType))];
}

/** The precision budget of a step, and why it is that one. */
export interface Budget { tolerance: Tolerance; why: string }

/** The budget of the step original -> M_A: the mode's (the CLI's choice). */
export function modeTolerance(mode: Mode): Tolerance {
  return TOLERANCES[mode === 'dynamic' || mode === 'static' ? 'int8' : mode === 'int4' ? 'int4' : mode === 'fp16' ? 'fp16' : 'fp32']!;
}

/**
 * The budget of the step A -> B (M_AB judged against M_A), decided per pair:
 *   - fp32 (per element): M_A is float and B computes it in the same precision (fusions and folds
 *     only reorder float sums);
 *   - fp16: M_A comes from --quantize fp16 and B computes in float32 (widen-to-float32: the ORT CPU
 *     targets and wasm), or B decomposes its float16 LayerNormalization (tensorrt): M_A's float16
 *     roundings change, which is not bit for bit;
 *   - int8 / int4 (the mode's budget): M_A quantizes activations at run time (DynamicQuantizeLinear,
 *     DynamicQuantizeMatMul, QuantizeLinear; MatMulNBits with accuracy_level 4 quantizes each block
 *     of its input to int8). A float value that differs in its last bit ahead of a quantizer (B's
 *     fusions reorder float sums; onnxruntime-web's MatMulNBits computes otherwise than
 *     onnxruntime-node's) can round to the next step, so the step is not bit for bit. Measured:
 *     gpt2-tiny int4 x86-avx2 -> cuda differs by 1.4e-2 (cosine 0.999999) with accuracy_level 4 and
 *     by 1.7e-6 with accuracy_level 0; the same int4 model on onnxruntime-web vs onnxruntime-node
 *     differs by 3.4e-2 (cosine 0.99994). B dropping M_A's integer weights (making it float) is
 *     caught separately (quantizedWeights), not by this budget. With dynamic, B = cuda / webgpu may
 *     also dequantize M_A's ConvInteger / MatMulInteger (dequantize-integer-ops): int8 too.
 */
export function stepBudget(mode: Mode, b: Target, mA?: Model): Budget {
  if (mode === 'fp16') {
    if (pipelineHas(b, 'widen-to-float32')) return { tolerance: TOLERANCES.fp16!, why: `fp16: ${b.name} computes in float32 what M_A computes in float16` };
    // B lacks some of M_A's ops (tensorrt: LayerNormalization; webgpu: EmbedLayerNormalization):
    // lower-contrib-ops writes them by their definition (statistics in float32, Casts around them),
    // whose float16 roundings are not the fused kernel's
    const lowered = mA ? loweredOps(mA, b) : [];
    if (lowered.length) return { tolerance: TOLERANCES.fp16!, why: `fp16: ${b.name} lowers M_A's float16 ${[...new Set(lowered)].join(', ')}` };
    return { tolerance: TOLERANCES.fp32!, why: `fp32: ${b.name} keeps M_A's float16` };
  }
  if (mode === 'dynamic' || mode === 'static') return { tolerance: TOLERANCES.int8!, why: 'int8: M_A quantizes activations at run time' };
  if (mode === 'int4') return { tolerance: TOLERANCES.int4!, why: 'int4: M_A\'s MatMulNBits quantize activations at run time' };
  return { tolerance: TOLERANCES.fp32!, why: 'fp32: same precision' };
}

/** Validate `cand` against precomputed reference outputs on `runtime`. */
export async function validateAgainst(ref: Model, refOutputs: Record<string, Tensor>[], cand: Model, runtime: Runtime, sets: Fixture['sets'], tolerance: Tolerance): Promise<ValidationResult> {
  return validate(ref, cand, runtime, {
    tolerance,
    prepared: { sets: sets.map((s, i) => ({ source: path.basename(s.source), feeds: s.feeds, outputs: refOutputs[i]! })) },
  });
}

/** The ops outside the standard ONNX domains (what a portable model may not hold). */
export function nonStandardOps(m: Model): string[] {
  const out = new Set<string>();
  for (const g of m.allGraphs()) for (const n of g.nodes) if (n.domain !== '' && n.domain !== 'ai.onnx' && n.domain !== 'ai.onnx.ml') out.add(n.qualifiedOp);
  return [...out].sort();
}

/** One line for a failed validation. */
export function whyFailed(v: ValidationResult): string {
  const w = v.worst;
  return w ? `${w.output} on ${w.source}: ${w.problem ?? ''} (max abs ${w.maxAbsError.toExponential(2)}, cosine ${w.cosine.toFixed(6)})` : 'no output judged';
}
