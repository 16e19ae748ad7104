import { describe, expect, test } from 'vitest';
import { ModelBuilder } from '../../src/ir/builder.js';
import { DataType } from '../../src/ir/dtype.js';
import { tensorType } from '../../src/ir/types.js';
import { PassManager } from '../../src/pass/manager.js';
import { fixDims } from '../../passes/cleanup/fix-dims.js';
import { checkPass } from './harness.js';

function model() {
  const b = new ModelBuilder();
  const ids = b.input('ids', 'float32', ['batch', 'sequence']);
  const mask = b.input('mask', 'float32', ['batch', 'sequence']);
  const other = b.input('other', 'float32', ['n', 4]);
  const cat = b.node('Concat', [ids, mask], { axis: 1 });
  cat.type = tensorType(DataType.FLOAT, ['batch', '2*sequence']); // a value_info entry
  b.output(b.node('Relu', [cat]), 'y', tensorType(DataType.FLOAT, ['batch', '2*sequence']));
  b.output(b.node('Neg', [other]), 'z', tensorType(DataType.FLOAT, ['n', 4]));
  return b.build();
}

describe('fix-dims', () => {
  test('pins the named symbols in inputs, outputs and value_info; one change per input', async () => {
    const { after, changes } = await checkPass(model(), fixDims, { dims: { batch: 2, sequence: 3 }, inputDims: { batch: 2, sequence: 3, n: 5 } });
    expect(changes).toBe(2);
    const g = after.graph;
    expect(g.inputs.map((v) => v.type)).toEqual([
      tensorType(DataType.FLOAT, [2, 3]),
      tensorType(DataType.FLOAT, [2, 3]),
      tensorType(DataType.FLOAT, ['n', 4]),
    ]);
    expect(g.outputs.map((v) => v.type)).toEqual([tensorType(DataType.FLOAT, [2, 6]), tensorType(DataType.FLOAT, ['n', 4])]);
    expect(g.nodes.find((n) => n.opType === 'Concat')!.outputs[0]!.type).toEqual(tensorType(DataType.FLOAT, [2, 6]));
  });

  test('a partial pin keeps the rest of an expression symbolic', async () => {
    const { after, changes } = await checkPass(model(), fixDims, { dims: { sequence: 3 }, inputDims: { batch: 2, sequence: 3, n: 5 } });
    expect(changes).toBe(2);
    expect(after.graph.outputs[0]!.type).toEqual(tensorType(DataType.FLOAT, ['batch', 6]));
  });

  test('no dims, or dims the model does not use: nothing changes', async () => {
    expect((await checkPass(model(), fixDims, { inputDims: { batch: 2, sequence: 3, n: 5 } })).changes).toBe(0);
    expect((await checkPass(model(), fixDims, { dims: { heads: 4 }, inputDims: { batch: 2, sequence: 3, n: 5 } })).changes).toBe(0);
  });

  test('each input asks for permission', async () => {
    const m = model();
    const report = await new PassManager([fixDims], { dims: { batch: 1, n: 1 }, stopAfterRewrites: 1 }).run(m);
    expect(report.rewrites).toBe(1);
    expect(m.graph.inputs.map((v) => (v.type?.kind === 'tensor' ? v.type.shape : undefined))).toEqual([[1, 'sequence'], ['batch', 'sequence'], ['n', 4]]);
    // outputs and value_info are left alone when not every input could be fixed
    expect(m.graph.outputs[0]!.type).toEqual(tensorType(DataType.FLOAT, ['batch', '2*sequence']));
  });
});
