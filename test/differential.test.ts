/**
 * Differential test: every model under fixtures/models/ and a sample of the ONNX backend test data,
 * compiled for portable and x86-avx2, run against the original by validate() on the inputs it
 * chooses by default (inputs the original accepts, two sizes of each symbolic dim where the model
 * has them). Outputs must agree within the fp32 tolerance, and a compiled model must accept every
 * size the original was run at: passes never specialize a symbolic dim.
 *
 * Nothing is skipped silently:
 * - a model whose original cannot run on any input validate() produces is listed in
 *   ORIGINAL_FAILS with the reason, and must fail that way (an entry that starts to validate fails
 *   the test, so the list stays true);
 * - a model whose symbolic dim validate() could run at one size only is listed in ONE_SIZE.
 * The conformance sample: every case whose inputs have symbolic dims or whose graph has subgraphs,
 * and every 12th other case (in name order). Left out of it, by rule: cases onnxruntime fails on
 * untouched (test/conformance/expectations.json says why) and cases with sequence or optional
 * inputs or outputs (onnxruntime-node cannot feed or return them).
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { Sym } from '../src/analysis/symbolic.js';
import { symbolicDims, validate, type ValidationResult } from '../src/bench/validate.js';
import { compile } from '../src/compile.js';
import { RetargetError } from '../src/errors.js';
import type { Model } from '../src/ir/model.js';
import { readModel } from '../src/node/files.js';
import { onnxruntimeNode } from '../src/node/ort.js';
import type { Target } from '../src/target.js';
import { portable } from '../targets/portable.js';
import { x86Avx2 } from '../targets/x86-avx2.js';
import { halfFloatTypes } from '../passes/lib/model-precision.js';
import { dataRoot, listCases } from './conformance/runner.js';

const FIXTURES = path.resolve(import.meta.dirname, '../fixtures/models');
const CONFORMANCE_EXPECTED: Record<string, string> = JSON.parse(fs.readFileSync(path.join(import.meta.dirname, 'conformance/expectations.json'), 'utf8'));

/**
 * Models whose original fails on every input validate() produces: id -> the error it fails with
 * (a part of the message, checked) and why. All are inputs that carry values, not just sizes
 * (indices, axes, lengths, a depth), which synthetic data does not know; the test data has them.
 */
const ORIGINAL_FAILS: Record<string, { error: string; why: string }> = {
  'conformance/node/test_cumsum_2d_axis_1': { error: 'CumSum', why: 'the axis is an int32 input: random values are out of range' },
  'conformance/node/test_unsqueeze_two_axes': { error: 'Unsqueeze', why: 'the axes are an input: random values are out of range' },
  'conformance/node/test_gather_elements_1': { error: 'GatherElements', why: 'random indices are out of range' },
  'conformance/node/test_scatter_with_axis': { error: 'Scatter', why: 'random indices are out of range' },
  'conformance/node/test_nllloss_NCd1': { error: 'GatherElements', why: 'the targets are class indices: random values are out of range' },
  'conformance/node/test_nllloss_NCd1d2_no_weight_reduction_mean_ii': { error: 'GatherElements', why: 'the targets are class indices: random values are out of range' },
  'conformance/node/test_nllloss_NCd1d2_with_weight_reduction_sum_ii': { error: 'GatherElements', why: 'the targets are class indices: random values are out of range' },
  'conformance/node/test_sce_NCd1d2d3_none_no_weight_negative_ii_log_prob_expanded': { error: 'GatherElements', why: 'the labels are class indices: random values are out of range' },
  'conformance/node/test_sce_NCd1d2d3d4d5_none_no_weight_log_prob_expanded': { error: 'GatherElements', why: 'the labels are class indices: random values are out of range' },
  'conformance/node/test_sce_mean_no_weight_ii_3d_log_prob': { error: 'GatherElements', why: 'the labels are class indices: random values are out of range' },
  'conformance/node/test_sce_sum_log_prob_expanded': { error: 'GatherElements', why: 'the labels are class indices: random values are out of range' },
  'conformance/node/test_sce_mean_weight_ii_3d': { error: 'Gather', why: 'the labels index the class weights: random values are out of range' },
  'conformance/node/test_sce_mean_weight_log_prob_expanded': { error: 'Gather', why: 'the labels index the class weights: random values are out of range' },
  'conformance/node/test_lstm_with_peepholes': { error: 'sequence_lens', why: 'sequence_lens is an input: random lengths exceed the sequence' },
  'conformance/node/test_melweightmatrix': { error: 'MelWeightMatrix', why: 'every input is a scalar parameter (bins, rate, band edges): random ones are invalid' },
  'conformance/node/test_onehot_with_axis': { error: 'OneHot', why: 'the depth is an input: a random depth is negative' },
  'conformance/node/test_reshape_reduced_dims': { error: 'Reshape', why: 'the target shape is an input: random values do not fit the data' },
  'conformance/node/test_split_variable_parts_default_axis': { error: 'Split', why: 'the split sizes are an input: random values do not fit the axis' },
  'conformance/node/test_mod_uint64': { error: 'element type 13', why: 'synthetic inputs have no uint64 data' },
  'conformance/simple/test_sequence_model8': { error: 'SplitToSequence', why: 'the split sizes are an input that must sum to n: random values do not' },
};

/** Models with a symbolic dim that validate() could run at one size only: id -> why. */
const ONE_SIZE: Record<string, string> = {};

interface Case { id: string; file: string }

function fixtureCases(): Case[] {
  return fs.readdirSync(FIXTURES).sort()
    .filter((d) => fs.existsSync(path.join(FIXTURES, d, 'model.onnx')))
    .map((d) => ({ id: `fixtures/${d}`, file: path.join(FIXTURES, d, 'model.onnx') }));
}

function tensorIo(m: Model): boolean {
  return [...m.graph.inputs, ...m.graph.outputs].every((v) => !v.type || v.type.kind === 'tensor');
}

function conformanceSample(): Case[] {
  const root = dataRoot();
  const picked: Case[] = [];
  let other = 0;
  for (const id of listCases(root)) {
    if (id in CONFORMANCE_EXPECTED) continue;
    const file = path.join(root, id, 'model.onnx');
    let model: Model;
    try {
      model = readModel(file).model;
    } catch {
      continue; // the codec's failures are test/conformance's to report
    }
    if (!tensorIo(model)) continue;
    const interesting = symbolicDims(model).length > 0 || [...model.graph.allGraphs()].length > 1;
    if (interesting || other++ % 12 === 0) picked.push({ id: `conformance/${id}`, file });
  }
  return picked;
}

/** For each symbol of the inputs' dims (`past_sequence + sequence` has two): the sizes the validation ran it at. */
function sizesRun(model: Model, result: ValidationResult): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  for (const d of symbolicDims(model)) {
    for (const s of Sym.from(d).symbols()) out[s] = [...new Set(result.cases.map((c) => c.dims[s]).filter((x): x is number => x !== undefined))];
  }
  return out;
}

async function differential(c: Case, target: Target): Promise<void> {
  const original = readModel(c.file).model;
  const compiled = readModel(c.file).model;
  await compile(compiled, target, { runtime: onnxruntimeNode });
  let result: ValidationResult;
  try {
    // a float16 model is judged within fp16's tolerance, as compile judges it (x86 computes it in float32)
    result = await validate(original, compiled, onnxruntimeNode, { search: { budgetMs: 20_000 }, ...(halfFloatTypes(original).length ? { tolerance: 'fp16' as const } : {}) });
  } catch (e) {
    if (e instanceof RetargetError && e.stage === 'validate-original') {
      const expected = ORIGINAL_FAILS[c.id];
      expect(expected, `${c.id}: the original fails on every input validate() produced (${e.message}); not in ORIGINAL_FAILS`).toBeDefined();
      expect(e.message, `${c.id} fails otherwise than ORIGINAL_FAILS says`).toContain(expected!.error);
      return;
    }
    throw e;
  }
  expect(ORIGINAL_FAILS[c.id], `${c.id} validates now: remove it from ORIGINAL_FAILS`).toBeUndefined();
  expect(result.ok, `${c.id} for ${target.name}: ${JSON.stringify(result.worst)}`).toBe(true);
  const sizes = sizesRun(original, result);
  const one = Object.entries(sizes).filter(([, s]) => s.length < 2).map(([d, s]) => `${d}=${s.join('/') || '?'}`);
  if (one.length) expect(ONE_SIZE[c.id], `${c.id}: ran at one size only (${one.join(', ')}); not in ONE_SIZE`).toBeDefined();
  else expect(ONE_SIZE[c.id], `${c.id} runs at two sizes now: remove it from ONE_SIZE`).toBeUndefined();
}

const cases = [...fixtureCases(), ...(fs.existsSync(dataRoot()) ? conformanceSample() : [])];

describe.each([portable, x86Avx2].map((t) => [t.name, t] as const))('%s', (_name, target) => {
  test.each(cases.map((c) => [c.id, c] as const))('%s', async (_id, c) => {
    await differential(c, target);
  });
});
