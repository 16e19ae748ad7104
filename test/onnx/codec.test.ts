import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { describe, expect, test } from 'vitest';
import { decode, encode, encodeChunks, encodedSize, concatChunks, ProtoDecodeError, schema } from '../../src/onnx/codec.js';
import type { ModelProto } from '../../src/onnx/proto.js';
import { parseModel, serializeModel } from '../../src/io.js';
import { onnxruntimeNode } from '../../src/node/ort.js';
import { Tensor } from '../../src/ir/tensor.js';
import { deepDiff } from '../helpers/deep-diff.js';
import { FUTURE_MODEL_FIELD, FUTURE_NODE_FIELD, newerFieldsModel } from './newer-fields.js';

const require = createRequire(import.meta.url);
const FIXTURES = path.resolve(import.meta.dirname, '../../fixtures/models');
const fixtureModels = fs.readdirSync(FIXTURES).filter((d) => d !== 'external-data').map((d) => path.join(FIXTURES, d, 'model.onnx'));

describe('codec', () => {
  test.each(fixtureModels)('decode -> encode -> decode is identical: %s', (file) => {
    const bytes = new Uint8Array(fs.readFileSync(file));
    const proto = decode('ModelProto', bytes);
    const again = encode('ModelProto', proto);
    expect(encodedSize('ModelProto', proto)).toBe(again.length);
    expect(deepDiff(proto, decode('ModelProto', again))).toBeUndefined();
  });

  test('raw_data is a zero-copy view into the input buffer', () => {
    const bytes = new Uint8Array(fs.readFileSync(fixtureModels[0]!));
    const proto = decode<ModelProto>('ModelProto', bytes);
    const raw = proto.graph!.initializer!.find((t) => t.rawData && t.rawData.length > 1000)!.rawData!;
    expect(raw.buffer).toBe(bytes.buffer);
    // and the encoder hands large byte fields through without copying them
    const chunks = encodeChunks('ModelProto', proto);
    expect(chunks.some((c) => c.buffer === bytes.buffer && c.byteOffset === raw.byteOffset)).toBe(true);
  });

  test('int64 values beyond 2^53 survive as bigint (Slice ends = INT64_MAX)', () => {
    const t = { dataType: 7, dims: [2], int64Data: [9223372036854775807n, -9223372036854775808n] };
    const back = decode<{ int64Data: unknown[] }>('TensorProto', encode('TensorProto', t));
    expect(back.int64Data).toEqual([9223372036854775807n, -9223372036854775808n]);
    const attr = decode<{ i: unknown; ints: unknown[] }>('AttributeProto', encode('AttributeProto', { name: 'ends', i: -1, ints: [1, -1, 2 ** 53 + 2] }));
    expect(attr.i).toBe(-1);
    expect(attr.ints).toEqual([1, -1, BigInt(2 ** 53 + 2)]);
  });

  test('unpacked and packed repeated scalars decode the same', () => {
    // dims = [2, 3] written unpacked (two tag-8 varints) as proto2 writers do, then packed
    const unpacked = Uint8Array.of(0x08, 0x02, 0x08, 0x03, 0x10, 0x01);
    const packed = Uint8Array.of(0x0a, 0x02, 0x02, 0x03, 0x10, 0x01);
    expect(decode('TensorProto', unpacked)).toEqual({ dims: [2, 3], dataType: 1 });
    expect(decode('TensorProto', packed)).toEqual({ dims: [2, 3], dataType: 1 });
  });

  test('field presence is kept: an explicit default value is written back', () => {
    const node = { input: ['x'], output: ['y'], opType: 'Relu', domain: '', name: '' };
    const back = decode('NodeProto', encode('NodeProto', node));
    expect(back).toEqual(node);
  });

  test('truncated and random bytes are clear errors, not crashes', () => {
    const bytes = new Uint8Array(fs.readFileSync(fixtureModels[0]!));
    expect(() => decode('ModelProto', bytes.subarray(0, 1000))).toThrow(ProtoDecodeError);
    expect(() => decode('ModelProto', bytes.subarray(0, 1000))).toThrow(/truncated or corrupt/);
    let seed = 7;
    const random = Uint8Array.from({ length: 4096 }, () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 16) & 0xff);
    expect(() => parseModel(random)).toThrow(/corrupt|not an ONNX model|truncated/);
    expect(() => parseModel(new Uint8Array(0))).toThrow(/empty file/);
  });
});

describe('fields newer than the onnx-proto schema (ONNX 1.10) and unknown fields', () => {
  const proto = newerFieldsModel();
  const bytes = encode('ModelProto', proto);

  test('our schema knows every field onnx-proto knows, with the same numbers', () => {
    const onnx = require('onnx-proto').onnx;
    // onnx-proto's generated decoders: fields our schema also has decode to the same values
    for (const file of fixtureModels) {
      const raw = new Uint8Array(fs.readFileSync(file));
      const theirs = onnx.ModelProto.toObject(onnx.ModelProto.decode(raw), { longs: String, bytes: Array });
      const ours = decode<ModelProto>('ModelProto', raw);
      expect(theirs.graph.node.length).toBe(ours.graph!.node!.length);
      expect(theirs.graph.node.map((n: { opType: string }) => n.opType)).toEqual(ours.graph!.node!.map((n) => n.opType));
      expect(theirs.graph.initializer.map((t: { name: string }) => t.name)).toEqual(ours.graph!.initializer!.map((t) => t.name));
      expect(String(theirs.irVersion)).toBe(String(ours.irVersion));
    }
    for (const name of ['ModelProto', 'GraphProto', 'NodeProto', 'AttributeProto', 'TensorProto', 'ValueInfoProto', 'TypeProto', 'FunctionProto']) {
      const type = onnx[name];
      // every field number that onnx-proto encodes is one our schema has under the same name
      const ours = schema(name);
      const sample = type.create();
      for (const key of Object.keys(type.prototype)) {
        if (typeof sample[key] === 'function') continue;
        const f = ours.fields.find((x) => x.name === key);
        expect(f, `${name}.${key}`).toBeDefined();
      }
    }
  });

  test('onnx-proto drops the newer fields; our codec keeps them through the IR', () => {
    const onnx = require('onnx-proto').onnx;
    const theirs = onnx.ModelProto.decode(bytes);
    expect(theirs.functions.length).toBe(1);
    expect(theirs.functions[0].attributeProto).toBeUndefined();
    expect(theirs.graph.node[0].metadataProps).toBeUndefined();

    const { model } = parseModel(bytes);
    const again = concatChunks(serializeModel(model).chunks);
    const back = decode<ModelProto>('ModelProto', again);
    expect(deepDiff(decode('ModelProto', bytes), back)).toBeUndefined();
    expect(back.graph!.node![0]!.metadataProps).toEqual([{ key: 'source', value: 'model.py:12' }]);
    expect(back.graph!.node![0]!.$unknown).toEqual([FUTURE_NODE_FIELD]);
    expect(back.$unknown).toEqual([FUTURE_MODEL_FIELD]);
    expect(back.functions![0]!.attributeProto![0]!.f).toBe(2);
    expect(back.graph!.initializer!.map((t) => t.dataType)).toEqual([22, 23, 17, 1]);
  });

  test('the IR reads the new data types with the right sizes', () => {
    const { model } = parseModel(bytes);
    const w4 = model.graph.local('w4')!.initializer!;
    expect(w4.byteLength).toBe(2); // two int4 per byte
    expect(model.graph.local('w_fp4')!.initializer!.byteLength).toBe(2); // 3 fp4 values round up to 2 bytes
    expect(model.functions[0]!.attributeDefaults[0]).toMatchObject({ name: 'alpha', type: 'float', value: 2 });
    expect(model.graph.nodes[0]!.extra.metadataProps).toEqual([{ key: 'source', value: 'model.py:12' }]);
  });

  test('onnxruntime runs the round-tripped model: function default attribute, int4 and float8 weights', async () => {
    const { model } = parseModel(bytes);
    const session = await onnxruntimeNode.createSession(concatChunks(serializeModel(model).chunks));
    const out = await session.run({ x: Tensor.float32([1, 2]), b: Tensor.float32([10, 20]) });
    await session.release();
    expect(Array.from(out.y!.toTypedArray())).toEqual([21, 42]); // x + alpha*b with the default alpha = 2
    expect(Array.from(out.z!.toTypedArray())).toEqual([1, 2, 3, -1]);
    expect(Array.from(out.z8!.toTypedArray())).toEqual([1, -2]);
  });
});
