/** passes/lib/query.ts: the one way the passes read types, shapes, ranks and scalar constants. */
import { describe, expect, test } from 'vitest';
import { inferShapes, RULES } from '../../src/analysis/index.js';
import { evaluateNode } from '../../src/analysis/evaluator.js';
import { ModelBuilder } from '../../src/ir/builder.js';
import { DataType } from '../../src/ir/dtype.js';
import { toBfloat16Bits, toFloat16Bits } from '../../src/ir/half.js';
import { Tensor } from '../../src/ir/tensor.js';
import { elemTypeOf, FLOAT32_64, rankOf, scalarOf, shapeOf, staticDims, tensorScalar, tensorTypeOf } from '../../passes/lib/query.js';

describe('scalarOf', () => {
  const b = new ModelBuilder({ opset: 17 });
  const f32 = b.constant(Tensor.float32([2.5], [1, 1]), 'f32');
  const f16 = b.constant(Tensor.fromTypedArray(DataType.FLOAT16, [], Uint16Array.of(toFloat16Bits(-0.125))), 'f16');
  const bf16 = b.constant(Tensor.fromTypedArray(DataType.BFLOAT16, [], Uint16Array.of(toBfloat16Bits(3))), 'bf16');
  const i64 = b.constant(Tensor.int64([7n], []), 'i64');
  const bool = b.constant(Tensor.fromTypedArray(DataType.BOOL, [], Uint8Array.of(1)), 'bool');
  const two = b.constant(Tensor.float32([1, 2]), 'two');
  const str = b.constant(Tensor.strings(['a'], []), 'str');
  const x = b.input('x', 'float32', [1]);

  test('one element of any rank and numeric type; half types decoded; bool as 0/1', () => {
    expect(scalarOf(f32)).toBe(2.5);
    expect(scalarOf(f16)).toBe(-0.125);
    expect(scalarOf(bf16)).toBe(3);
    expect(scalarOf(i64)).toBe(7);
    expect(scalarOf(bool)).toBe(1);
  });

  test('undefined for more elements, strings, non-constants and nothing', () => {
    expect(scalarOf(two)).toBeUndefined();
    expect(scalarOf(str)).toBeUndefined();
    expect(scalarOf(x)).toBeUndefined();
    expect(scalarOf(undefined)).toBeUndefined();
  });

  test('a type list limits what is read', () => {
    expect(scalarOf(f32, FLOAT32_64)).toBe(2.5);
    expect(scalarOf(f16, FLOAT32_64)).toBeUndefined();
    expect(scalarOf(i64, FLOAT32_64)).toBeUndefined();
    expect(tensorScalar(Tensor.int32([4]), [DataType.INT32])).toBe(4);
  });
});

describe('types, shapes and ranks', () => {
  function build() {
    const b = new ModelBuilder({ opset: 17 });
    const x = b.input('x', 'float32', ['batch', 3]);
    const w = b.constant(Tensor.float32(new Array(12).fill(1), [3, 4]), 'w');
    const y = b.node('MatMul', [x, w], {}, { name: 'mm' });
    b.output(y, 'y');
    const model = b.build();
    const mm = model.graph.nodes.find((n) => n.opType === 'MatMul')!;
    return { model, x: mm.inputs[0]!, w: mm.inputs[1]!, y: mm.outputs[0]! };
  }

  test('inferred types, with symbolic dims', () => {
    const { model, x, y } = build();
    const info = inferShapes(model, RULES, { evaluate: evaluateNode, apply: false });
    expect(elemTypeOf(info, y)).toBe(DataType.FLOAT);
    expect(shapeOf(info, y)?.map(String)).toEqual(['batch', '4']);
    expect(rankOf(info, y)).toBe(2);
    expect(staticDims(info, y)).toEqual([undefined, 4]);
    expect(tensorTypeOf(info, x)?.elemType).toBe(DataType.FLOAT);
  });

  test('without inference: declared types and ranks, a constant\'s dims; no symbolic shape', () => {
    const { x, w, y } = build();
    expect(elemTypeOf(undefined, x)).toBe(DataType.FLOAT);
    expect(rankOf(undefined, x)).toBe(2);
    expect(staticDims(undefined, x)).toEqual([undefined, 3]);
    expect(shapeOf(undefined, x)).toBeUndefined();
    expect(rankOf(undefined, w)).toBe(2);
    // a computed value the model declares nothing for
    y.type = undefined;
    expect(elemTypeOf(undefined, y)).toBeUndefined();
    expect(rankOf(undefined, y)).toBeUndefined();
    expect(elemTypeOf(undefined, undefined)).toBeUndefined();
  });

  test('an undefined element type (0) reads as unknown', () => {
    const { x } = build();
    x.type = { kind: 'tensor', elemType: 0 };
    expect(elemTypeOf(undefined, x)).toBeUndefined();
  });
});
