/**
 * Fixture models through the IR and back: the ModelProto is unchanged (external data resolved
 * inline), the bytes are stable, and onnxruntime still gives the expected outputs.
 */
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { compareTensors } from '../../src/compare.js';
import { parseModel, serializeModel } from '../../src/io.js';
import type { Model } from '../../src/ir/model.js';
import type { Tensor } from '../../src/ir/tensor.js';
import { verifyModel } from '../../src/ir/verify.js';
import { readModel } from '../../src/node/files.js';
import { readTestDataSet, testDataSets } from '../../src/node/testdata.js';
import { concatChunks, decode } from '../../src/onnx/codec.js';
import type { ExternalDataReader } from '../../src/onnx/external.js';
import type { ModelProto, TensorProto } from '../../src/onnx/proto.js';
import { deepDiff } from '../helpers/deep-diff.js';
import { FIXTURES, fixtureFile, fixtureNames, modelBytes, readBytes, runBytes } from './util.js';

const TOL = { rtol: 1e-3, atol: 1e-5 };

/** Every TensorProto stored in the main graph's initializers and in attributes, subgraphs included. */
function tensorsOf(p: ModelProto): TensorProto[] {
  const out: TensorProto[] = [];
  const visit = (g: NonNullable<ModelProto['graph']>): void => {
    out.push(...(g.initializer ?? []));
    for (const n of g.node ?? []) {
      for (const a of n.attribute ?? []) {
        if (a.t) out.push(a.t);
        out.push(...(a.tensors ?? []));
        if (a.g) visit(a.g);
        for (const s of a.graphs ?? []) visit(s);
      }
    }
  };
  if (p.graph) visit(p.graph);
  return out;
}

/** Resolve external data by hand: raw_data = the named bytes of the data file. Returns how many were resolved. */
function resolveByHand(p: ModelProto, dir: string): number {
  let n = 0;
  for (const t of tensorsOf(p)) {
    if (t.dataLocation !== 1) continue;
    const entry = (k: string): string | undefined => t.externalData!.find((e) => e.key === k)?.value;
    const data = readBytes(path.join(dir, entry('location')!));
    const offset = Number(entry('offset') ?? 0);
    const length = entry('length') === undefined ? data.length - offset : Number(entry('length'));
    t.rawData = data.subarray(offset, offset + length);
    delete t.externalData;
    delete t.dataLocation;
    n++;
  }
  return n;
}

async function checkTestData(name: string, bytes: Uint8Array, model: Model): Promise<number> {
  const inputs = model.graph.inputs.filter((v) => !v.isConstant).map((v) => v.name);
  const outputs = model.graph.outputs.map((v) => v.name);
  const sets = testDataSets(path.join(FIXTURES, name));
  for (const dir of sets) {
    const data = readTestDataSet(dir);
    expect(data.inputs.length).toBe(inputs.length);
    const feeds: Record<string, Tensor> = {};
    data.inputs.forEach((inp, i) => { feeds[inputs[i]!] = inp.tensor; });
    const out = await runBytes(bytes, feeds);
    expect(data.outputs.length).toBe(outputs.length);
    data.outputs.forEach((exp, i) => {
      const got = out[outputs[i]!];
      expect(got, `${path.basename(dir)} output ${outputs[i]}`).toBeDefined();
      const c = compareTensors(got!, exp.tensor, TOL);
      expect(c.problem, `${name}/${path.basename(dir)} output ${outputs[i]}`).toBeUndefined();
      expect(c.ok).toBe(true);
    });
  }
  return sets.length;
}

describe.each(fixtureNames())('fixture %s', (name) => {
  const file = fixtureFile(name);

  test('decode(original) equals decode(serialize(IR)); external data inline', () => {
    const loaded = readModel(file);
    const original = decode<ModelProto>('ModelProto', readBytes(file));
    const resolved = resolveByHand(original, path.dirname(file));
    if (name === 'external-data') {
      expect(resolved).toBe(14);
      expect(loaded.externalFiles).toEqual([{ location: 'weights.bin', tensors: 14, bytes: 18696 }]);
    } else {
      expect(resolved).toBe(0);
      expect(loaded.externalFiles).toEqual([]);
    }
    const out = serializeModel(loaded.model);
    expect(out.data).toBeUndefined();
    const bytes = concatChunks(out.chunks);
    expect(out.size).toBe(bytes.length);
    const back = decode<ModelProto>('ModelProto', bytes);
    expect(deepDiff(original, back)).toBeUndefined();
    // and once more through the IR: byte-identical
    const again = parseModel(bytes).model;
    expect(verifyModel(again)).toEqual([]);
    expect(Buffer.from(modelBytes(again)).equals(Buffer.from(bytes))).toBe(true);
  });

  test('round-tripped bytes run in onnxruntime with the expected outputs', async () => {
    const { model } = readModel(file);
    const sets = await checkTestData(name, modelBytes(model), model);
    // every fixture has test sets, and each was checked (the decoders from decoders.py's layout have 3)
    expect(sets).toBeGreaterThanOrEqual(2);
    expect(sets).toBe(testDataSets(path.dirname(file)).length);
  });
});

describe('external data', () => {
  const file = fixtureFile('external-data');

  test('initializer values are the bytes of weights.bin at the offsets the model names', () => {
    const { model } = readModel(file);
    const weights = readBytes(path.join(path.dirname(file), 'weights.bin'));
    const original = decode<ModelProto>('ModelProto', readBytes(file));
    const external = (original.graph!.initializer ?? []).filter((t) => t.dataLocation === 1);
    expect(external.length).toBe(14);
    let covered = 0;
    for (const t of external) {
      const entry = (k: string): string | undefined => t.externalData!.find((e) => e.key === k)?.value;
      expect(entry('location')).toBe('weights.bin');
      const offset = Number(entry('offset') ?? 0);
      const length = Number(entry('length'));
      const v = model.graph.local(t.name!);
      expect(v?.isConstant, t.name).toBe(true);
      const raw = v!.initializer!.rawBytes();
      expect(raw.length).toBe(length);
      expect(Buffer.from(raw).equals(Buffer.from(weights.subarray(offset, offset + length))), t.name).toBe(true);
      expect(v!.initializer!.dims.reduce((a, b) => a * b, 1) * 4).toBe(length); // float32 weights
      covered += length;
    }
    expect(covered).toBe(weights.length);
  });

  test('written with external data and read back through a reader, the model is the same', () => {
    const { model } = readModel(file);
    const inline = modelBytes(model);
    const out = serializeModel(model, { externalData: 'data.bin', externalThreshold: 0 });
    expect(out.data?.location).toBe('data.bin');
    expect(out.data!.tensors).toBeGreaterThanOrEqual(14);
    const data = concatChunks(out.data!.chunks);
    expect(data.length).toBe(out.data!.size);
    const reads: string[] = [];
    const reader: ExternalDataReader = {
      read(location, offset, length) {
        reads.push(location);
        return data.subarray(offset, length === undefined ? undefined : offset + length);
      },
    };
    const parsed = parseModel(concatChunks(out.chunks), { externalData: reader });
    expect(new Set(reads)).toEqual(new Set(['data.bin']));
    expect(parsed.externalFiles[0]!.location).toBe('data.bin');
    expect(deepDiff(decode('ModelProto', inline), decode('ModelProto', modelBytes(parsed.model)))).toBeUndefined();
  });

  test('without a reader, a model with external data is refused', () => {
    expect(() => parseModel(readBytes(file))).toThrow(/has external data, and no reader was given/);
  });
});
