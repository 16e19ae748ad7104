/**
 * The constant evaluator (src/analysis/evaluator.ts) and its runtime fallback (runtime-eval.ts):
 * (1) every single-node ONNX backend test case of an op the TypeScript evaluator implements,
 * (2) every other single-node case through onnxruntime-node as a one-node model,
 * (3) unit tests for the semantics that are easy to get wrong.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { evaluateNode, evaluateNodeStrict, evaluatorOps, Refuse } from '../../src/analysis/evaluator.js';
import { evaluate, evaluateWithRuntime, RuntimeEvalError } from '../../src/analysis/runtime-eval.js';
import { compareTensors, tensorValues } from '../../src/compare.js';
import { ModelBuilder } from '../../src/ir/builder.js';
import { DataType } from '../../src/ir/dtype.js';
import type { Node, Value } from '../../src/ir/graph.js';
import { Tensor } from '../../src/ir/tensor.js';
import { onnxruntimeNode } from '../../src/node/ort.js';
import { checkCase, singleNodeCases } from './evaluator-cases.js';

const cases = singleNodeCases();
const implemented = new Set(evaluatorOps());

/** The TS evaluator, with a refusal as undefined and any other error thrown (a bug shows). */
function strict(node: Node, inputs: (Tensor | undefined)[], opset: number): Tensor[] | undefined {
  try {
    return evaluateNodeStrict(node, inputs, opset);
  } catch (e) {
    if (e instanceof Refuse) return undefined;
    throw e;
  }
}

/** Cases of implemented ops that do not pass, and why. A wrong answer is only listed where the test data itself is wrong. */
const TS_EXCEPTIONS: Record<string, string> = {
  test_cast_FLOAT_to_BFLOAT16: 'this (old) test data rounds float -> bfloat16 by truncation; Cast rounds to nearest even (onnx.helper.float32_to_bfloat16, onnxruntime), as we do',
  test_castlike_FLOAT_to_BFLOAT16: 'as test_cast_FLOAT_to_BFLOAT16: truncating test data',
  test_castlike_FLOAT_to_BFLOAT16_expanded: 'as test_cast_FLOAT_to_BFLOAT16: truncating test data',
  test_cast_FLOAT_to_STRING: 'refused: string tensors are not evaluated',
  test_cast_STRING_to_FLOAT: 'refused: string tensors are not evaluated',
  test_castlike_FLOAT_to_STRING: 'refused: string tensors are not evaluated',
  test_castlike_FLOAT_to_STRING_expanded: 'refused: string tensors are not evaluated',
  test_castlike_STRING_to_FLOAT: 'refused: string tensors are not evaluated',
  test_castlike_STRING_to_FLOAT_expanded: 'refused: string tensors are not evaluated',
};

/** Cases that fail with the untouched model in onnxruntime-node too (test/conformance/expectations.json). */
const ORT_EXPECTATIONS: Record<string, string> = (() => {
  const file = path.join(import.meta.dirname, '../conformance/expectations.json');
  return fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, 'utf8')) : {};
})();

/** Refusals of the runtime path, by reason. */
const RUNTIME_REFUSALS: Record<string, RegExp> = {
  test_if: /subgraphs/, test_loop11: /subgraphs/, test_scan9_sum: /subgraphs/, test_scan_sum: /subgraphs/,
  test_bernoulli: /random/, test_bernoulli_double: /random/, test_bernoulli_seed: /random/,
  test_training_dropout: /random/, test_training_dropout_default: /random/, test_training_dropout_default_mask: /random/, test_training_dropout_mask: /random/,
};

if (cases.length === 0) {
  test.skip('evaluator conformance (ONNX test data not installed: apt-get install -y libonnx-testdata)', () => {});
} else {
  test('TypeScript evaluator on the single-node ONNX backend tests', async () => {
    const mine = cases.filter((c) => implemented.has(c.node.opType));
    const problems: string[] = [];
    let passed = 0;
    for (const c of mine) {
      const r = await checkCase(c, strict);
      if (r === undefined) {
        passed++;
        if (TS_EXCEPTIONS[c.name]) problems.push(`${c.name} passes now: remove it from TS_EXCEPTIONS`);
      } else if (!TS_EXCEPTIONS[c.name]) {
        problems.push(`${c.name} [opset ${c.opset}]: ${r}`);
      }
    }
    console.log(`[evaluator] ${mine.length} single-node cases of ${implemented.size} implemented ops: ${passed} pass, ${mine.length - passed} listed exceptions`);
    expect(problems).toEqual([]);
    expect(passed).toBeGreaterThan(400);
  });

  test('runtime fallback (onnxruntime-node, one-node models) on the other single-node tests', async () => {
    const others = cases.filter((c) => !implemented.has(c.node.opType));
    const problems: string[] = [];
    let passed = 0, ortKnown = 0, refused = 0;
    const ops = new Set<string>();
    for (const c of others) {
      let r: string | undefined;
      try {
        r = await checkCase(c, (node, inputs, opset) => evaluateWithRuntime(onnxruntimeNode, node, inputs, opset, c.domainOpsets));
      } catch (e) {
        if (!(e instanceof RuntimeEvalError)) throw e;
        r = e.message;
      }
      if (r === undefined) { passed++; ops.add(c.node.opType); continue; }
      const refusal = RUNTIME_REFUSALS[c.name];
      if (refusal) { if (refusal.test(r)) refused++; else problems.push(`${c.name}: expected a refusal matching ${refusal}, got ${r}`); continue; }
      if (ORT_EXPECTATIONS[`node/${c.name}`]) { ortKnown++; continue; }
      problems.push(`${c.name} [opset ${c.opset}]: ${r}`);
    }
    console.log(`[evaluator] runtime path: ${others.length} single-node cases of ${new Set(others.map((c) => c.node.opType)).size} ops: ${passed} pass (${ops.size} ops), ${ortKnown} fail in onnxruntime with the whole model too, ${refused} refused (subgraphs, random ops)`);
    expect(problems).toEqual([]);
    for (const op of ['Conv', 'Softmax', 'LayerNormalization', 'Erf', 'Resize']) expect(ops.has(op), op).toBe(true);
  });
}

// ------------------------------------------------------------------ unit tests

/**
 * A node of `op` with `n` inputs, or inputs where `present` is true (the others left out, as
 * optional inputs are). The values are of no consequence: inputs are passed as tensors.
 */
function mk(op: string, n: number | boolean[], attrs: Record<string, unknown> = {}, outputs = 1, opset = 18): Node {
  const b = new ModelBuilder({ opset });
  const ins: (Value | undefined)[] = [];
  const present = typeof n === 'number' ? new Array<boolean>(n).fill(true) : n;
  present.forEach((p, i) => ins.push(p ? b.input(`x${i}`, 'float32') : undefined));
  return b.nodeN(op, ins, attrs, { outputs })[0]!.producer!;
}

function run(op: string, inputs: (Tensor | undefined)[], attrs: Record<string, unknown> = {}, opset = 18, outputs = 1): Tensor[] {
  const outs = strict(mk(op, inputs.map((t) => t !== undefined), attrs, outputs, opset), inputs, opset);
  if (!outs) throw new Error(`${op} refused`);
  return outs;
}

function values(t: Tensor): (number | bigint)[] {
  return Array.from(tensorValues(t) as ArrayLike<number | bigint>);
}

const I64_MAX = 2n ** 63n - 1n, I64_MIN = -(2n ** 63n);
const iota = (n: number): Tensor => Tensor.float32(Array.from({ length: n }, (_, i) => i));

describe('Slice', () => {
  test('INT64_MAX / INT64_MIN ends clamp; negative steps walk backwards', () => {
    const x = iota(10);
    expect(values(run('Slice', [x, Tensor.int64([2]), Tensor.int64([I64_MAX])])[0]!)).toEqual([2, 3, 4, 5, 6, 7, 8, 9]);
    expect(values(run('Slice', [x, Tensor.int64([-1]), Tensor.int64([I64_MIN]), Tensor.int64([0]), Tensor.int64([-1])])[0]!)).toEqual([9, 8, 7, 6, 5, 4, 3, 2, 1, 0]);
    expect(values(run('Slice', [x, Tensor.int64([20]), Tensor.int64([0]), Tensor.int64([0]), Tensor.int64([-3])])[0]!)).toEqual([9, 6, 3]);
    expect(values(run('Slice', [x, Tensor.int64([I64_MAX]), Tensor.int64([-I64_MAX]), undefined, Tensor.int64([-4])])[0]!)).toEqual([9, 5, 1]);
    expect(run('Slice', [x, Tensor.int64([5]), Tensor.int64([2])])[0]!.dims).toEqual([0]);
  });

  test('2-D with axes, and opset 1-9 attributes', () => {
    const x = Tensor.float32(Array.from({ length: 12 }, (_, i) => i), [3, 4]);
    const y = run('Slice', [x, Tensor.int64([-1, 1]), Tensor.int64([-4, 1000]), Tensor.int64([1, 0]), Tensor.int64([-2, 1])])[0]!;
    expect(y.dims).toEqual([2, 2]);
    expect(values(y)).toEqual([7, 5, 11, 9]);
    const z = run('Slice', [x], { starts: [1], ends: [I64_MAX], axes: [1] }, 9)[0]!;
    expect(z.dims).toEqual([3, 3]);
  });
});

describe('Reshape', () => {
  test('0 copies the input dim, -1 is inferred', () => {
    const x = Tensor.float32(new Array(24).fill(1), [2, 3, 4]);
    expect(run('Reshape', [x, Tensor.int64([0, -1])])[0]!.dims).toEqual([2, 12]);
    expect(run('Reshape', [x, Tensor.int64([-1, 0, 2])])[0]!.dims).toEqual([4, 3, 2]);
  });
  test('allowzero=1 keeps 0 as a dim', () => {
    const x = Tensor.float32([], [0, 3]);
    expect(run('Reshape', [x, Tensor.int64([3, 0])], { allowzero: 1 })[0]!.dims).toEqual([3, 0]);
    expect(run('Reshape', [x, Tensor.int64([0, 3])], { allowzero: 0 })[0]!.dims).toEqual([0, 3]);
  });
  test('impossible shapes are refused', () => {
    expect(evaluateNode(mk('Reshape', 2), [iota(6), Tensor.int64([4, -1])], 18)).toBeUndefined();
    expect(evaluateNode(mk('Reshape', 2), [iota(6), Tensor.int64([-1, -1])], 18)).toBeUndefined();
  });
});

describe('int64 stays exact', () => {
  const big = 2n ** 53n + 1n;
  test('arithmetic beyond 2^53 and at the limits', () => {
    expect(values(run('Add', [Tensor.int64([big]), Tensor.int64([1])])[0]!)).toEqual([2n ** 53n + 2n]);
    expect(values(run('Mul', [Tensor.int64([big]), Tensor.int64([3])])[0]!)).toEqual([3n * big]);
    expect(values(run('Sub', [Tensor.int64([I64_MIN]), Tensor.int64([1])])[0]!)).toEqual([I64_MAX]); // wraps like C
    expect(values(run('Div', [Tensor.int64([I64_MAX]), Tensor.int64([2])])[0]!)).toEqual([I64_MAX / 2n]);
  });
  test('moved unchanged by shape ops', () => {
    const t = Tensor.int64([I64_MAX, big, I64_MIN], [3]);
    expect(values(run('Concat', [t, t], { axis: 0 })[0]!)).toEqual([I64_MAX, big, I64_MIN, I64_MAX, big, I64_MIN]);
    expect(values(run('Gather', [t, Tensor.int64([-1, 0])])[0]!)).toEqual([I64_MIN, I64_MAX]);
    expect(values(run('Unsqueeze', [t, Tensor.int64([0])])[0]!)).toEqual([I64_MAX, big, I64_MIN]);
    expect(values(run('Range', [Tensor.int64([big], []), Tensor.int64([big + 6n], []), Tensor.int64([3], [])])[0]!)).toEqual([big, big + 3n]);
    expect(values(run('ReduceMax', [t], { keepdims: 0 })[0]!)).toEqual([I64_MAX]);
    expect(values(run('Cast', [t], { to: DataType.INT64 })[0]!)).toEqual([I64_MAX, big, I64_MIN]);
  });
  test('Constant value_ints and ConstantOfShape keep int64 attributes exact', () => {
    expect(values(run('Constant', [], { value_ints: [I64_MAX, big] })[0]!)).toEqual([I64_MAX, big]);
    const v = run('ConstantOfShape', [Tensor.int64([2])], { value: Tensor.int64([I64_MIN], [1]) })[0]!;
    expect(values(v)).toEqual([I64_MIN, I64_MIN]);
  });
});

describe('Cast', () => {
  const f = Tensor.float32([-2.7, 2.7, -0.5, 0.5, 1e10, -3]);
  test('float -> int64 / int32 truncates toward zero', () => {
    expect(values(run('Cast', [f], { to: DataType.INT64 })[0]!)).toEqual([-2n, 2n, 0n, 0n, 10000000000n, -3n]);
    expect(values(run('Cast', [Tensor.float32([-2.7, 2.7, -0.5])], { to: DataType.INT32 })[0]!)).toEqual([-2, 2, 0]);
  });
  test('to bool: nonzero (and NaN) is true', () => {
    expect(values(run('Cast', [Tensor.float32([0, -0, 0.1, NaN])], { to: DataType.BOOL })[0]!)).toEqual([0, 0, 1, 1]);
  });
  test('to float16 rounds to nearest even', () => {
    const x = Tensor.fromTypedArray(DataType.DOUBLE, [7], Float64Array.from([1 + 2 ** -11, 1 + 3 * 2 ** -11, 65519, 65520, 2 ** -25, 3 * 2 ** -26, -0]));
    const h = run('Cast', [x], { to: DataType.FLOAT16 })[0]!;
    expect(Array.from(h.toTypedArray() as Uint16Array)).toEqual([0x3c00, 0x3c02, 0x7bff, 0x7c00, 0x0000, 0x0001, 0x8000]);
  });
  test('NaN or infinity to an integer is refused, not guessed', () => {
    expect(evaluateNode(mk('Cast', 1, { to: DataType.INT64 }), [Tensor.float32([NaN])], 18)).toBeUndefined();
  });
});

describe('integer Div and Mod sign rules', () => {
  test('Div truncates toward zero (int32 and int64)', () => {
    expect(values(run('Div', [Tensor.int32([-7, 7, -7, 7]), Tensor.int32([2, -2, -2, 2])])[0]!)).toEqual([-3, -3, 3, 3]);
    expect(values(run('Div', [Tensor.int64([-7, 7, -7, 7]), Tensor.int64([2, -2, -2, 2])])[0]!)).toEqual([-3n, -3n, 3n, 3n]);
  });
  test('Mod fmod=0 takes the sign of the divisor, fmod=1 that of the dividend', () => {
    expect(values(run('Mod', [Tensor.int32([-7, 7, -7, 7]), Tensor.int32([2, -2, -2, 2])])[0]!)).toEqual([1, -1, -1, 1]);
    expect(values(run('Mod', [Tensor.int64([-7, 7, -7, 7]), Tensor.int64([2, -2, -2, 2])])[0]!)).toEqual([1n, -1n, -1n, 1n]);
    expect(values(run('Mod', [Tensor.int32([-7, 7]), Tensor.int32([2, -2])], { fmod: 1 })[0]!)).toEqual([-1, 1]);
    expect(values(run('Mod', [Tensor.float32([-7.5, 7.5]), Tensor.float32([2, -2])], { fmod: 1 })[0]!)).toEqual([-1.5, 1.5]);
  });
  test('division by zero is not folded', () => {
    expect(evaluateNode(mk('Div', 2), [Tensor.int64([1]), Tensor.int64([0])], 18)).toBeUndefined();
  });
  test('int32 Mul wraps like C', () => {
    expect(values(run('Mul', [Tensor.int32([65537]), Tensor.int32([65537 * 2])])[0]!)).toEqual([Math.imul(65537, 131074)]);
  });
});

describe('opset variants', () => {
  const x = Tensor.float32([1, 2, 3, 4, 5, 6], [1, 2, 3]);
  test('Squeeze/Unsqueeze: axes attribute before 13, input from 13', () => {
    expect(run('Squeeze', [x], { axes: [0] }, 11)[0]!.dims).toEqual([2, 3]);
    expect(run('Squeeze', [x, Tensor.int64([-3])], {}, 13)[0]!.dims).toEqual([2, 3]);
    expect(run('Unsqueeze', [x], { axes: [-1, 0] }, 11)[0]!.dims).toEqual([1, 1, 2, 3, 1]);
    expect(run('Unsqueeze', [x, Tensor.int64([1])], {}, 13)[0]!.dims).toEqual([1, 1, 2, 3]);
  });
  test('ReduceSum: axes attribute at 11, input at 13; noop_with_empty_axes', () => {
    expect(values(run('ReduceSum', [x], { axes: [2], keepdims: 0 }, 11)[0]!)).toEqual([6, 15]);
    expect(values(run('ReduceSum', [x, Tensor.int64([1])], { keepdims: 1 }, 13)[0]!)).toEqual([5, 7, 9]);
    expect(run('ReduceSum', [x, Tensor.int64([])], { noop_with_empty_axes: 1 }, 13)[0]!.dims).toEqual([1, 2, 3]);
    expect(run('ReduceSum', [x], {}, 13)[0]!.dims).toEqual([1, 1, 1]);
    expect(values(run('ReduceMean', [x], { axes: [1] }, 17)[0]!)).toEqual([2.5, 3.5, 4.5]);
    expect(values(run('ReduceMean', [x, Tensor.int64([1])], {}, 18)[0]!)).toEqual([2.5, 3.5, 4.5]);
  });
  test('Split: attribute, input, and opset 18 num_outputs with an uneven last part', () => {
    const v = iota(7);
    expect(run('Split', [v], { split: [3, 4] }, 11, 2).map((t) => t.dims[0])).toEqual([3, 4]);
    expect(run('Split', [v, Tensor.int64([5, 2])], {}, 13, 2).map((t) => t.dims[0])).toEqual([5, 2]);
    expect(run('Split', [v], { num_outputs: 3 }, 18, 3).map((t) => values(t))).toEqual([[0, 1, 2], [3, 4, 5], [6]]);
  });
  test('Shape start/end (opset 15) clamp', () => {
    expect(values(run('Shape', [x], { start: -2 }, 15)[0]!)).toEqual([2n, 3n]);
    expect(values(run('Shape', [x], { start: 1, end: 100 }, 15)[0]!)).toEqual([2n, 3n]);
    expect(values(run('Shape', [x], { start: 2, end: 1 }, 15)[0]!)).toEqual([]);
  });
});

describe('refusals', () => {
  test('ops not implemented, missing inputs, too many elements', () => {
    expect(evaluateNode(mk('Conv', 2), [iota(4), iota(4)], 18)).toBeUndefined();
    expect(evaluateNode(mk('Add', 2), [iota(4), undefined], 18)).toBeUndefined();
    expect(evaluateNode(mk('ConstantOfShape', 1), [Tensor.int64([2000, 1000])], 18)).toBeUndefined();
    expect(evaluateNode(mk('ConstantOfShape', 1), [Tensor.int64([1000, 1000])], 18)![0]!.elementCount).toBe(1_000_000);
    expect(evaluateNode(mk('Relu', 1, {}, 1), [Tensor.strings(['a'])], 18)).toBeUndefined();
  });
});

describe('runtime fallback', () => {
  test('evaluate() uses the TS evaluator first and the runtime for other ops', async () => {
    const add = await evaluate(mk('Add', 2), [Tensor.int64([I64_MAX - 1n]), Tensor.int64([1])], 18, onnxruntimeNode);
    expect(values(add![0]!)).toEqual([I64_MAX]);
    const erf = await evaluate(mk('Erf', 1), [Tensor.float32([0, 0.5, -1])], 18, onnxruntimeNode);
    const want = Tensor.float32([0, 0.5204998778, -0.8427007929]);
    expect(compareTensors(erf![0]!, want, { rtol: 1e-5, atol: 1e-6 }).ok).toBe(true);
    expect(await evaluate(mk('Erf', 1), [Tensor.float32([1])], 18)).toBeUndefined(); // no runtime given
  });
  test('optional inputs left out, several outputs, attributes copied', async () => {
    const node = mk('TopK', 2, { axis: 0, largest: 0 }, 2);
    const [vals, idx] = await evaluateWithRuntime(onnxruntimeNode, node, [Tensor.float32([3, 1, 2]), Tensor.int64([2])], 18);
    expect(values(vals!)).toEqual([1, 2]);
    expect(values(idx!)).toEqual([1n, 2n]);
    const clip = await evaluateWithRuntime(onnxruntimeNode, mk('Clip', [true, false, true]), [Tensor.float32([-5, 5]), undefined, Tensor.float32([1], [])], 13);
    expect(values(clip[0]!)).toEqual([-5, 1]);
  });
  test('random ops and non-constant inputs are refused', async () => {
    await expect(evaluateWithRuntime(onnxruntimeNode, mk('RandomUniformLike', 1), [iota(3)], 18)).rejects.toThrow(RuntimeEvalError);
    await expect(evaluateWithRuntime(onnxruntimeNode, mk('Erf', 1), [undefined], 18)).rejects.toThrow(/no constant value/);
    expect(await evaluate(mk('Bernoulli', 1), [iota(3)], 18, onnxruntimeNode)).toBeUndefined();
  });
});
