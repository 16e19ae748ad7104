/**
 * The calibration stage of `compile --quantize static`. quantize-static plans and rewrites the graph
 * but runs no model (passes are pure, and run wherever the core runs); this stage does the running,
 * installed around the pass by compile() (withCalibration), so it sees the model exactly as the pass
 * does, after the rest of the pipeline:
 *
 *  - before the pass: asks the pass's planning which values need ranges (calibrationTensors), runs
 *    the float model through `options.runtime` once per calibration input set (`quantize.calibration`,
 *    made for the original model and laid out as this one takes it, e.g. --input-layout NHWC; else
 *    seeded synthetic sets) with those values added as graph outputs, keeps running statistics only
 *    (one set's activations in memory at a time), and hands them to the pass as data in
 *    `quantize.statistics`;
 *  - after the pass, with `quantize.debug`: runs the float and the quantized model on the first set
 *    with every quantized activation (`quantize.quantizedTensors`, listed by the pass) as an output,
 *    and puts the error per tensor in `quantize.report.layers`, worst first.
 *
 * A failure running the model for calibration is stage 'calibration'. Without a runtime nothing is
 * run and the pass leaves the model float (it says so in the report).
 */
import { outputMetrics } from './bench/metrics.js';
import { staged } from './errors.js';
import { intInputRanges, syntheticInputs } from './inputs.js';
import { serializeModel } from './io.js';
import { cloneModel } from './ir/clone.js';
import { DataType } from './ir/dtype.js';
import type { Model } from './ir/model.js';
import type { Tensor } from './ir/tensor.js';
import { tensorType } from './ir/types.js';
import { feedsForLayouts } from './layout.js';
import { concatChunks } from './onnx/codec.js';
import type { CalibrationStatistics, Pass, QuantizeOptions } from './pass/pass.js';
import type { Runtime } from './runtime.js';
import { TensorStats, type CalibrationMethod } from '../passes/lib/calibration.js';
import { calibrationTensors } from '../passes/quantize/quantize-static.js';

/** Calibration sets drawn when none are given. */
export const SYNTHETIC_CALIBRATION_SETS = 16;

export interface QuantizedLayerError {
  tensor: string;
  /** the node producing it in the float model */
  node: string;
  op: string;
  maxAbsError: number;
  cosine: number;
  snrDb: number;
}

/**
 * `pass` (quantize-static) with the calibration stage around it: statistics in before it runs, the
 * debug table after. Without --quantize static or a runtime, the pass alone.
 */
export function withCalibration(pass: Pass): Pass {
  return {
    name: pass.name,
    description: pass.description,
    level: pass.level,
    subgraphs: pass.subgraphs,
    ...(pass.emits ? { emits: pass.emits } : {}),
    async run(graph, ctx) {
      const q = ctx.options.quantize;
      const runtime = ctx.options.runtime;
      if (q?.mode !== 'static' || !runtime) return pass.run(graph, ctx);
      const names = calibrationTensors(graph, ctx);
      const sets = names.length ? calibrationSets(ctx.model, q, ctx.options.dims ?? {}) : [];
      const floatModel = q.debug && names.length ? cloneModel(ctx.model) : undefined;
      q.statistics = await calibrate(ctx.model, runtime, sets, names, q, pass.name);
      try {
        const changes = await pass.run(graph, ctx);
        if (floatModel && q.quantizedTensors) {
          graph.compact();
          graph.toposort();
          (q.report ??= {}).layers = await layerErrors(floatModel, ctx.model, runtime, sets[0]!, q.quantizedTensors);
        }
        return changes;
      } finally {
        // statistics describe this graph at this point: never handed to a later run
        delete q.statistics;
        delete q.quantizedTensors;
      }
    },
  };
}

/** The input sets to calibrate on: the given ones laid out as `model` takes them, else seeded synthetic ones. */
export function calibrationSets(model: Model, q: QuantizeOptions, dims: Record<string, number>): Record<string, Tensor>[] {
  const given = q.calibration?.map((feeds) => feedsForLayouts(model, feeds));
  if (given && given.length) return given;
  const intRanges = intInputRanges(model);
  return Array.from({ length: SYNTHETIC_CALIBRATION_SETS }, (_, i) => syntheticInputs(model, { seed: 1000 + i, dims, defaultDim: 1, intRanges }));
}

/** Statistics of the `names` over the `sets` (none run when there are no names). */
export async function calibrate(model: Model, runtime: Runtime, sets: Record<string, Tensor>[], names: string[], q: QuantizeOptions, pass = 'quantize-static'): Promise<CalibrationStatistics> {
  const synthetic = !q.calibration || q.calibration.length === 0;
  if (names.length === 0) return { tensors: new Map(), sets: 0, synthetic };
  const method: CalibrationMethod = q.method ?? 'minmax';
  const tensors = await staged('calibration', { pass }, () => observe(model, runtime, sets, names, method));
  return { tensors, sets: sets.length, synthetic };
}

/** Run the model once per set with the `names` as outputs; running statistics only. */
async function observe(model: Model, runtime: Runtime, sets: Record<string, Tensor>[], names: string[], method: CalibrationMethod): Promise<Map<string, TensorStats>> {
  const stats = new Map<string, TensorStats>(names.map((n) => [n, new TensorStats(method)]));
  const inputNames = new Set(model.graph.inputs.map((v) => v.name));
  const fetch = names.filter((n) => !inputNames.has(n));
  const session = await runtime.createSession(withOutputs(model, fetch), { graphOptimizationLevel: 'disabled' });
  try {
    for (const feeds of sets) {
      const got = fetch.length ? await session.run(feeds, { outputs: fetch }) : {};
      for (const n of names) {
        const t = inputNames.has(n) ? feeds[n] : got[n];
        if (t?.dataType === DataType.FLOAT) stats.get(n)!.add(t.toTypedArray() as Float32Array);
      }
      // `got` goes out of scope here: one set's activations at a time
    }
  } finally {
    await session.release();
  }
  return stats;
}

/** Serialized copy of `model` with the named values added as graph outputs. */
function withOutputs(model: Model, names: readonly string[]): Uint8Array {
  const m = cloneModel(model);
  const g = m.graph;
  const existing = new Set(g.outputs.map((v) => v.name));
  for (const name of names) {
    if (existing.has(name)) continue;
    const v = g.local(name);
    if (!v) continue;
    if (v.type?.kind !== 'tensor') v.type = tensorType(DataType.FLOAT);
    g.addOutput(v);
    existing.add(name);
  }
  return concatChunks(serializeModel(m).chunks);
}

/** Per quantized activation: the float model's tensor against the quantized model's (its DQ output), worst first. */
export async function layerErrors(floatModel: Model, quantModel: Model, runtime: Runtime, feeds: Record<string, Tensor>, tensors: readonly { float: string; dequantized: string }[]): Promise<QuantizedLayerError[]> {
  const pairs = tensors.map((t) => {
    const prod = floatModel.graph.local(t.float)?.producer;
    return { ref: t.float, dq: t.dequantized, node: prod?.name ?? '(graph input)', op: prod?.opType ?? 'input' };
  });
  const inputNames = new Set(floatModel.graph.inputs.map((v) => v.name));
  const run = async (m: Model, names: string[]): Promise<Record<string, Tensor>> => {
    const fetch = [...new Set(names)].filter((n) => !inputNames.has(n));
    const s = await runtime.createSession(withOutputs(m, fetch), { graphOptimizationLevel: 'disabled' });
    try {
      return { ...feeds, ...(await s.run(feeds, { outputs: fetch })) };
    } finally {
      await s.release();
    }
  };
  const ref = await run(floatModel, pairs.map((p) => p.ref));
  const got = await run(quantModel, pairs.map((p) => p.dq));
  const rows: QuantizedLayerError[] = [];
  for (const p of pairs) {
    const a = ref[p.ref], b = got[p.dq];
    if (!a || !b) continue;
    const m = outputMetrics(p.ref, a, b);
    rows.push({ tensor: p.ref, node: p.node, op: p.op, maxAbsError: m.maxAbsError, cosine: m.cosine, snrDb: m.snrDb });
  }
  rows.sort((x, y) => x.snrDb - y.snrDb || y.maxAbsError - x.maxAbsError);
  return rows;
}
