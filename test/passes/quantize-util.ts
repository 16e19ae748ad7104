/** Shared by the quantization pass tests: seeded weights, feeds with small token ids, accuracy over several inputs. */
import path from 'node:path';
import { expect } from 'vitest';
import { outputMetrics } from '../../src/bench/metrics.js';
import { compile } from '../../src/compile.js';
import { intInputRanges, seededRandom, syntheticInputs } from '../../src/inputs.js';
import { cloneModel } from '../../src/ir/clone.js';
import type { Model } from '../../src/ir/model.js';
import { Tensor } from '../../src/ir/tensor.js';
import { verifyModel } from '../../src/ir/verify.js';
import { readModel } from '../../src/node/files.js';
import { PassManager, type RunReport } from '../../src/pass/manager.js';
import type { Pass, QuantizeOptions } from '../../src/pass/pass.js';
import type { Target } from '../../src/target.js';
import { runModel } from './harness.js';

export const fixtures = path.resolve(__dirname, '../../fixtures/models');

export function rand(seed: number) {
  const r = seededRandom(seed);
  return (dims: number[], lo = -1, hi = 1): Tensor =>
    Tensor.float32(Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => lo + (hi - lo) * r()), dims);
}

/** Seeded feeds; integer inputs (token ids) below 64 and within the model's valid ranges. */
export function feeds(model: Model, seed: number, dims: Record<string, number>, valid: Record<string, number> = intInputRanges(model)): Record<string, Tensor> {
  const ranges = Object.fromEntries(Object.entries(valid).map(([k, v]) => [k, Math.min(64, v)]));
  return syntheticInputs(model, { seed, dims, intHigh: 64, intRanges: ranges });
}

/** A fixture compiled for `target`, with the id ranges read off the original. */
export async function compiledFixture(name: string, target: Target): Promise<{ model: Model; target: string; ranges: Record<string, number> }> {
  const file = path.join(fixtures, name, 'model.onnx');
  const { model } = readModel(file);
  // valid id ranges are read off the original: fusions (EmbedLayerNormalization) hide the Gathers
  const ranges = intInputRanges(model);
  await compile(model, target, {});
  return { model, target: target.name, ranges };
}

export async function quantize(model: Model, pass: Pass, quantize: QuantizeOptions, target: Target): Promise<{ after: Model; report: RunReport; changes: number }> {
  const after = cloneModel(model);
  const report = await new PassManager([pass], { quantize, target, verifyEach: true }).run(after);
  expect(verifyModel(after)).toEqual([]);
  return { after, report, changes: report.passes.reduce((n, p) => n + p.changes, 0) };
}

/** Worst cosine (and top-1 where it applies) of every output over several seeded input sets. */
export async function accuracy(ref: Model, cand: Model, seeds: number[], dims: Record<string, number>, ranges?: Record<string, number>): Promise<{ cosine: number; top1: number }> {
  let cosine = 1, top1 = 1;
  for (const seed of seeds) {
    const f = feeds(ref, seed, dims, ranges);
    const want = await runModel(ref, f);
    const got = await runModel(cand, f);
    for (const [name, t] of Object.entries(want)) {
      if (t.dataType !== 1) continue;
      const m = outputMetrics(name, t, got[name]!);
      cosine = Math.min(cosine, m.cosine);
      if (m.top1 !== undefined) top1 = Math.min(top1, m.top1);
    }
  }
  return { cosine, top1 };
}

export function opCount(model: Model, op: string): number {
  let n = 0;
  for (const g of model.allGraphs()) for (const node of g.nodes) if (node.opType === op) n++;
  return n;
}

export function initializerNames(model: Model): Set<string> {
  return new Set(model.graph.initializers.map((v) => v.name));
}
