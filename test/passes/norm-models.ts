/** Small hand-built decomposed LayerNorm / RMSNorm graphs for the norm fusion tests. */
import { seededRandom } from '../../src/inputs.js';
import { ModelBuilder } from '../../src/ir/builder.js';
import type { Value } from '../../src/ir/graph.js';
import type { Model } from '../../src/ir/model.js';
import { Tensor } from '../../src/ir/tensor.js';

export function rand(seed: number) {
  const r = seededRandom(seed);
  return (dims: number[], lo = -1, hi = 1): Tensor =>
    Tensor.float32(Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => lo + (hi - lo) * r()), dims);
}

export interface NormOptions {
  opset?: number;
  hidden?: number;
  /** reduce axis (default -1) */
  axis?: number;
  square?: 'pow' | 'mul';
  normalize?: 'div' | 'reciprocal' | 'div1';
  gamma?: number[] | false;
  gammaDims?: number[];
  beta?: number[] | false;
  rms?: boolean;
  /** also output the centered value (an intermediate with another use) */
  leakCentered?: boolean;
  eps?: number;
}

/** y = LayerNorm(x) (decomposed) on x [batch, seq, hidden] */
export function decomposedNorm(o: NormOptions = {}): Model {
  const opset = o.opset ?? 17, h = o.hidden ?? 8, axis = o.axis ?? -1;
  const t = rand(5);
  const b = new ModelBuilder({ opset });
  const x = b.input('x', 'float32', ['batch', 'seq', h]);
  const mean = (v: Value, name: string): Value => opset >= 18
    ? b.node('ReduceMean', [v, b.constant(Tensor.int64([axis]), `${name}_axes`)], {}, { name })
    : b.node('ReduceMean', [v], { axes: [axis] }, { name });
  const d = o.rms ? x : b.node('Sub', [x, mean(x, 'ln/ReduceMean')], {}, { name: 'ln/Sub' });
  const sq = o.square === 'mul' ? b.node('Mul', [d, d], {}, { name: 'ln/Square' }) : b.node('Pow', [d, b.constant(Tensor.float32([2], []), 'two')], {}, { name: 'ln/Pow' });
  const s = b.node('Sqrt', [b.node('Add', [mean(sq, 'ln/ReduceMean_1'), b.constant(Tensor.float32([o.eps ?? 1e-5], []), 'eps')], {}, { name: 'ln/Add' })], {}, { name: 'ln/Sqrt' });
  let n: Value;
  if (o.normalize === 'reciprocal') n = b.node('Mul', [b.node('Reciprocal', [s]), d], {}, { name: 'ln/Mul_norm' });
  else if (o.normalize === 'div1') n = b.node('Mul', [d, b.node('Div', [b.constant(Tensor.float32([1], []), 'one'), s])], {}, { name: 'ln/Mul_norm' });
  else n = b.node('Div', [d, s], {}, { name: 'ln/Div' });
  let y = n;
  if (o.gamma !== false) {
    const g = o.gamma ? Tensor.float32(o.gamma, o.gammaDims ?? (o.gamma.length === h ? [h] : [1, 1, o.gamma.length])) : t([h], 0.5, 1.5);
    y = b.node('Mul', [y, b.constant(g, 'gamma')], {}, { name: 'ln/Mul' });
  }
  if (o.beta !== false && !o.rms) {
    const bt = o.beta ? Tensor.float32(o.beta, [o.beta.length]) : t([h], -0.5, 0.5);
    y = b.node('Add', [b.constant(bt, 'beta'), y], {}, { name: 'ln/Add_1' });
  }
  b.output(b.node('Relu', [y]), 'y');
  if (o.leakCentered && !o.rms) b.output(b.node('Neg', [d]), 'centered');
  return b.build();
}
