import { test } from 'vitest';
import fs from 'node:fs';
import { readModel } from '../../src/node/files.js';
import { parseModel } from '../../src/io.js';
import { Tensor } from '../../src/ir/tensor.js';
import { DataType } from '../../src/ir/dtype.js';
test('x', () => {
  const a = readModel('fixtures/models/cnn-tiny-op13/model.onnx').model;
  const b = parseModel(fs.readFileSync('fixtures/models/cnn-tiny-op13/model.onnx')).model;
  const va = a.graph.initializers[0]!; const vb = b.graph.initializers[0]!;
  console.log(va.name, (va.initializer!.data as any).bytes.constructor.name, (vb.initializer!.data as any).bytes.constructor.name);
  console.log(Array.from(va.initializer!.toTypedArray() as Float32Array).slice(0,4), Array.from(vb.initializer!.toTypedArray() as Float32Array).slice(0,4));
  const t = Tensor.fromRaw(DataType.FLOAT, [2], Buffer.from(new Uint8Array(Float32Array.of(1, 2).buffer)));
  console.log(t.toTypedArray());
});
