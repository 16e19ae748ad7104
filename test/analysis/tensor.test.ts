/** Shape rules of src/analysis/ops/tensor.ts on models with symbolic dims. */
import { describe, expect, test } from 'vitest';
import { formatSymType, inferShapes, InferenceError, RULES } from '../../src/analysis/index.js';
import { ModelBuilder } from '../../src/ir/builder.js';
import { DataType } from '../../src/ir/dtype.js';
import type { Value } from '../../src/ir/graph.js';
import { Tensor } from '../../src/ir/tensor.js';

/** Build a model with `build`, infer, and return the formatted types of the values it returns. */
function infer(opset: number, build: (b: ModelBuilder) => Value[]): string[] {
  const b = new ModelBuilder({ opset });
  const outs = build(b);
  outs.forEach((v) => b.output(v));
  const r = inferShapes(b.build(), RULES);
  return outs.map((v) => formatSymType(r.types.get(v)));
}

const bool = (values: number[]): Tensor => Tensor.fromTypedArray(DataType.BOOL, [values.length], Uint8Array.from(values));

describe('Transpose', () => {
  test('perm and the default reversed order keep symbolic dims', () => {
    expect(infer(17, (b) => {
      const x = b.input('x', 'float32', ['batch', 'seq', 768]);
      return [b.node('Transpose', [x], { perm: [1, 0, 2] }), b.node('Transpose', [x])];
    })).toEqual(['float32[seq,batch,768]', 'float32[768,seq,batch]']);
  });

  test('a perm of the wrong length is an error', () => {
    const b = new ModelBuilder();
    b.output(b.node('Transpose', [b.input('x', 'float32', [2, 3])], { perm: [0] }));
    expect(() => inferShapes(b.build(), RULES)).toThrow(InferenceError);
  });
});

describe('Split', () => {
  test('equal parts of a symbolic dim divide it', () => {
    expect(infer(13, (b) => b.nodeN('Split', [b.input('x', 'float32', ['batch', '2*seq'])], { axis: 1 }, { outputs: 2 })))
      .toEqual(['float32[batch,seq]', 'float32[batch,seq]']);
  });

  test('split sizes from the attribute (opset 11) and from the input (opset 13)', () => {
    expect(infer(11, (b) => b.nodeN('Split', [b.input('x', 'float32', ['n', 6])], { axis: -1, split: [2, 4] }, { outputs: 2 })))
      .toEqual(['float32[n,2]', 'float32[n,4]']);
    expect(infer(13, (b) => b.nodeN('Split', [b.input('x', 'float32', [6, 'n']), b.constant(Tensor.int64([1, 5]), 'split')], {}, { outputs: 2 })))
      .toEqual(['float32[1,n]', 'float32[5,n]']);
  });

  test('num_outputs (opset 18) rounds up, the last part is smaller', () => {
    expect(infer(18, (b) => b.nodeN('Split', [b.input('x', 'float32', [7])], { num_outputs: 3 }, { outputs: 3 })))
      .toEqual(['float32[3]', 'float32[3]', 'float32[1]']);
    expect(infer(18, (b) => b.nodeN('Split', [b.input('x', 'float32', ['n'])], { num_outputs: 2 }, { outputs: 2 })))
      .toEqual(['float32[floor((n+1)/2)]', 'float32[-floor((n+1)/2)+n]']);
  });

  test('splitting a shape vector splits its symbolic contents', () => {
    expect(infer(13, (b) => {
      const x = b.input('x', 'float32', ['batch', 'seq', 12, 64]);
      const [head, tail] = b.nodeN('Split', [b.node('Shape', [x]), b.constant(Tensor.int64([2, 2]), 'split')], {}, { outputs: 2 });
      return [b.node('Reshape', [b.input('y', 'float32', ['batch*seq', 768]), b.node('Concat', [head!, b.constant(Tensor.int64([-1]), 'm1')], { axis: 0 })]), tail!];
    })).toEqual(['float32[batch,seq,768]', 'int64[2]']);
  });
});

describe('Tile, Flatten', () => {
  test('Tile multiplies dims by symbolic repeats', () => {
    expect(infer(17, (b) => {
      const x = b.input('x', 'float32', ['batch', 3]);
      const reps = b.node('Concat', [b.node('Shape', [b.input('r', 'float32', ['k'])]), b.constant(Tensor.int64([2]), 'two')], { axis: 0 });
      return [b.node('Tile', [x, reps]), b.node('Tile', [x, b.input('unknown', 'int64', [2])])];
    })).toEqual(['float32[batch*k,6]', 'float32[unk__0,unk__1]']);
  });

  test('Flatten multiplies the dims on each side of the axis', () => {
    expect(infer(17, (b) => {
      const x = b.input('x', 'float32', ['batch', 3, 'h', 'w']);
      return [b.node('Flatten', [x]), b.node('Flatten', [x], { axis: 0 }), b.node('Flatten', [x], { axis: -2 }), b.node('Flatten', [x], { axis: 4 })];
    })).toEqual(['float32[batch,3*h*w]', 'float32[1,3*batch*h*w]', 'float32[3*batch,h*w]', 'float32[3*batch*h*w,1]']);
  });
});

describe('gathers and scatters', () => {
  test('GatherElements has the indices shape, Scatter* the data shape', () => {
    expect(infer(17, (b) => {
      const data = b.input('data', 'float32', ['n', 'c']);
      const idx = b.input('idx', 'int64', ['n', 'k']);
      return [b.node('GatherElements', [data, idx], { axis: 1 }), b.node('ScatterElements', [data, idx, b.input('upd', 'float32', ['n', 'k'])], { axis: 1 })];
    })).toEqual(['float32[n,k]', 'float32[n,c]']);
  });

  test('GatherND with and without batch dims', () => {
    expect(infer(13, (b) => {
      const data = b.input('data', 'float32', ['b', 'h', 'w', 8]);
      return [
        b.node('GatherND', [data, b.input('i1', 'int64', ['m', 2])]),
        b.node('GatherND', [data, b.input('i2', 'int64', ['b', 'm', 2])], { batch_dims: 1 }),
        b.node('ScatterND', [data, b.input('i3', 'int64', ['m', 2]), b.input('u', 'float32', ['m', 'w', 8])]),
      ];
    })).toEqual(['float32[m,w,8]', 'float32[b,m,8]', 'float32[b,h,w,8]']);
  });
});

describe('OneHot, NonZero, Unique, Compress', () => {
  test('OneHot inserts the depth at the axis', () => {
    expect(infer(11, (b) => {
      const idx = b.input('idx', 'int64', ['batch', 'seq']);
      const values = b.constant(Tensor.float32([0, 1]), 'values');
      const depth = b.constant(Tensor.float32([10], []), 'depth');
      return [b.node('OneHot', [idx, depth, values]), b.node('OneHot', [idx, depth, values], { axis: 1 }), b.node('OneHot', [idx, b.input('d', 'int64', []), values], { axis: 0 })];
    })).toEqual(['float32[batch,seq,10]', 'float32[batch,10,seq]', 'float32[unk__0,batch,seq]']);
  });

  test('NonZero: [rank, count], Compress: a count, constant when the condition is', () => {
    expect(infer(13, (b) => {
      const x = b.input('x', 'float32', ['n', 4]);
      return [
        b.node('NonZero', [x]),
        b.node('Compress', [x, b.input('c', 'bool', ['n'])], { axis: 0 }),
        b.node('Compress', [x, b.constant(bool([1, 0, 1]), 'cond')], { axis: -1 }),
        b.node('Compress', [x, b.input('c2', 'bool', ['m'])]),
      ];
    })).toEqual(['int64[2,unk__0]', 'float32[unk__1,4]', 'float32[n,2]', 'float32[unk__2]']);
  });

  test('Unique: the unique count is shared by Y, indices and counts', () => {
    expect(infer(11, (b) => b.nodeN('Unique', [b.input('x', 'float32', ['n', 3])], { axis: 0 }, { outputs: 4 })))
      .toEqual(['float32[unk__0,3]', 'int64[unk__0]', 'int64[n]', 'int64[unk__0]']);
    expect(infer(11, (b) => b.nodeN('Unique', [b.input('x', 'float32', ['n', 3])], {}, { outputs: 4 })))
      .toEqual(['float32[unk__0]', 'int64[unk__0]', 'int64[3*n]', 'int64[unk__0]']);
  });
});

describe('generators', () => {
  test('EyeLike, Random*, Bernoulli, Multinomial', () => {
    expect(infer(15, (b) => {
      const x = b.input('x', 'float16', ['n', 'm']);
      return [
        b.node('EyeLike', [x]),
        b.node('EyeLike', [x], { dtype: DataType.INT32 }),
        b.node('RandomUniform', [], { shape: [2, 3] }),
        b.node('RandomNormal', [], { shape: [4], dtype: DataType.DOUBLE }),
        b.node('RandomNormalLike', [x]),
        b.node('RandomUniformLike', [x], { dtype: DataType.FLOAT }),
        b.node('Bernoulli', [x]),
        b.node('Multinomial', [x], { sample_size: 5 }),
        b.node('ReverseSequence', [x, b.input('lens', 'int64', ['m'])]),
      ];
    })).toEqual(['float16[n,m]', 'int32[n,m]', 'float32[2,3]', 'float64[4]', 'float16[n,m]', 'float32[n,m]', 'float16[n,m]', 'int32[n,5]', 'float16[n,m]']);
  });
});

describe('text', () => {
  test('StringNormalizer keeps the count without stop words; TfIdfVectorizer', () => {
    expect(infer(10, (b) => {
      const s = b.input('s', 'string', [1, 'c']);
      return [
        b.node('StringNormalizer', [s], { case_change_action: 'LOWER' }),
        b.node('StringNormalizer', [s], { stopwords: ['a'] }),
        b.node('TfIdfVectorizer', [b.input('t', 'int64', ['n', 'c'])], { mode: 'TF', min_gram_length: 1, max_gram_length: 1, max_skip_count: 0, ngram_counts: [0], ngram_indexes: [0, 1, 2], pool_int64s: [5, 6, 7] }),
      ];
    })).toEqual(['string[1,c]', 'string[1,unk__0]', 'float32[n,3]']);
  });
});

describe('losses', () => {
  test('NegativeLogLikelihoodLoss: none keeps the target shape, mean and sum are scalars', () => {
    expect(infer(13, (b) => {
      const x = b.input('x', 'float32', ['n', 'c', 'd']);
      const t = b.input('t', 'int64', ['n', 'd']);
      return [b.node('NegativeLogLikelihoodLoss', [x, t], { reduction: 'none' }), b.node('NegativeLogLikelihoodLoss', [x, t]), b.node('NegativeLogLikelihoodLoss', [x, t, b.input('w', 'float32', ['c'])], { reduction: 'sum' })];
    })).toEqual(['float32[n,d]', 'float32[]', 'float32[]']);
  });

  test('SoftmaxCrossEntropyLoss and its log_prob output', () => {
    expect(infer(13, (b) => b.nodeN('SoftmaxCrossEntropyLoss', [b.input('x', 'float32', ['n', 'c']), b.input('t', 'int64', ['n'])], { reduction: 'none' }, { outputs: 2 })))
      .toEqual(['float32[n]', 'float32[n,c]']);
  });

  test('a target whose rank does not fit the scores is an error', () => {
    const b = new ModelBuilder({ opset: 13 });
    b.output(b.node('NegativeLogLikelihoodLoss', [b.input('x', 'float32', ['n', 'c']), b.input('t', 'int64', ['n', 2])], { reduction: 'none' }));
    expect(() => inferShapes(b.build(), RULES)).toThrow(/target rank/);
  });
});

describe('CenterCropPad', () => {
  test('the cropped axes take the shape input', () => {
    expect(infer(18, (b) => {
      const x = b.input('x', 'float32', ['h', 'w', 3]);
      return [b.node('CenterCropPad', [x, b.constant(Tensor.int64([20, 10]), 's')], { axes: [0, 1] }), b.node('CenterCropPad', [x, b.input('s2', 'int64', [3])])];
    })).toEqual(['float32[20,10,3]', 'float32[unk__0,unk__1,unk__2]']);
  });
});
