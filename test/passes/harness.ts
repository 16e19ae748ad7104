/**
 * The bar every pass meets in its unit test: run it (with verify after the pass), then run the model
 * before and after in onnxruntime on seeded random inputs and compare every output.
 */
import { expect } from 'vitest';
import { cpuStandIn } from '../../src/bench/stand-in.js';
import { compareTensors } from '../../src/compare.js';
import { syntheticInputs } from '../../src/inputs.js';
import { concatChunks } from '../../src/onnx/codec.js';
import { serializeModel } from '../../src/io.js';
import { cloneModel } from '../../src/ir/clone.js';
import type { Model } from '../../src/ir/model.js';
import type { Tensor } from '../../src/ir/tensor.js';
import { verifyModel } from '../../src/ir/verify.js';
import { onnxruntimeNode } from '../../src/node/ort.js';
import type { Pass, PassOptions } from '../../src/pass/pass.js';
import { PassManager, type PipelineStep, type RunReport } from '../../src/pass/manager.js';

export async function runModel(model: Model, feeds: Record<string, Tensor>): Promise<Record<string, Tensor>> {
  const session = await onnxruntimeNode.createSession(concatChunks(serializeModel(model).chunks), { graphOptimizationLevel: 'disabled' });
  try {
    return await session.run(feeds);
  } finally {
    await session.release();
  }
}

export interface CheckOptions extends PassOptions {
  seed?: number;
  /** sizes of symbolic input dims */
  inputDims?: Record<string, number>;
  feeds?: Record<string, Tensor>;
  rtol?: number;
  atol?: number;
}

export interface Checked { before: Model; after: Model; report: RunReport; changes: number }

/**
 * Apply `steps` to a copy of `model` with verify-each, check the result verifies, and that its
 * outputs equal the original's on seeded random inputs (rtol 1e-4, atol 1e-5 by default).
 */
export async function checkPass(model: Model, steps: Pass | PipelineStep[], opts: CheckOptions = {}): Promise<Checked> {
  const before = cloneModel(model);
  const after = cloneModel(model);
  const pipeline = Array.isArray(steps) ? steps : [steps];
  const report = await new PassManager(pipeline, { ...opts, verifyEach: true }).run(after);
  expect(verifyModel(after)).toEqual([]);
  const feeds = opts.feeds ?? syntheticInputs(before, { seed: opts.seed ?? 1, ...(opts.inputDims ? { dims: opts.inputDims } : {}) });
  const want = await runModel(before, feeds);
  // ops only a GPU runtime has (NhwcConv) run as their standard-op composition
  const got = await runModel(cpuStandIn(after).model, feeds);
  expect(Object.keys(got).sort()).toEqual(Object.keys(want).sort());
  for (const [name, t] of Object.entries(want)) {
    const c = compareTensors(got[name]!, t, { rtol: opts.rtol ?? 1e-4, atol: opts.atol ?? 1e-5 });
    expect(c.ok, `output '${name}': ${c.problem}`).toBe(true);
  }
  const changes = report.passes.reduce((n, p) => n + p.changes, 0);
  return { before, after, report, changes };
}

/** `domain::op` -> count, over all graphs */
export function ops(model: Model): Record<string, number> {
  const h: Record<string, number> = {};
  for (const g of model.allGraphs()) for (const n of g.nodes) h[n.opType] = (h[n.opType] ?? 0) + 1;
  return h;
}
