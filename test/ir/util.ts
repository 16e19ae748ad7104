/** Helpers shared by the IR tests (not a test file itself). */
import { seededRandom } from '../../src/inputs.js';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { serializeModel } from '../../src/io.js';
import type { Model } from '../../src/ir/model.js';
import type { Tensor } from '../../src/ir/tensor.js';
import { onnxruntimeNode } from '../../src/node/ort.js';
import { concatChunks } from '../../src/onnx/codec.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const FIXTURES = path.join(ROOT, 'fixtures/models');

/** Fixture model folders (each has model.onnx and test_data_set_*). */
export function fixtureNames(): string[] {
  return fs.readdirSync(FIXTURES).filter((d) => fs.existsSync(path.join(FIXTURES, d, 'model.onnx'))).sort();
}

export function fixtureFile(name: string): string {
  return path.join(FIXTURES, name, 'model.onnx');
}

/** A file's bytes as a plain Uint8Array (not a Node Buffer). */
export function readBytes(file: string): Uint8Array {
  const b = fs.readFileSync(file);
  return new Uint8Array(b.buffer, b.byteOffset, b.length);
}

/** The model serialized inline (no external data) as one buffer. */
export function modelBytes(model: Model): Uint8Array {
  const out = serializeModel(model);
  expectNoData(out.data);
  return concatChunks(out.chunks);
}

function expectNoData(data: unknown): void {
  if (data !== undefined) throw new Error('expected the model to serialize without external data');
}

/** Run serialized model bytes in onnxruntime-node. */
export async function runBytes(bytes: Uint8Array, feeds: Record<string, Tensor>): Promise<Record<string, Tensor>> {
  const session = await onnxruntimeNode.createSession(bytes);
  try {
    return await session.run(feeds);
  } finally {
    await session.release();
  }
}

export async function runModel(model: Model, feeds: Record<string, Tensor>): Promise<Record<string, Tensor>> {
  return runBytes(modelBytes(model), feeds);
}

/** Deterministic pseudo-random numbers in [-1, 1) (the project's seeded generator, rescaled). */
export function rng(seed: number): () => number {
  const next = seededRandom(seed);
  return () => next() * 2 - 1;
}

export function randomArray(n: number, seed: number): number[] {
  const r = rng(seed);
  return Array.from({ length: n }, () => Math.fround(r()));
}

/** Float32 values of a tensor as plain numbers. */
export function floats(t: Tensor | undefined): number[] {
  if (!t) throw new Error('missing tensor');
  return Array.from(t.toTypedArray() as Float32Array);
}

/** Assert element-wise closeness with a helpful message (|a-e| <= atol + rtol*|e|). */
export function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, rtol = 1e-5, atol = 1e-6): void {
  if (actual.length !== expected.length) throw new Error(`length ${actual.length}, expected ${expected.length}`);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    if (!(Math.abs(a - e) <= atol + rtol * Math.abs(e))) throw new Error(`element ${i}: ${a}, expected ${e}`);
  }
}

/**
 * Identity checks for IR objects. vitest's toBe/toEqual deep-compare two different objects when
 * they are not identical (to suggest toStrictEqual), which on a real model's cyclic graph (values,
 * uses, nodes, subgraphs) can run practically forever; these fail fast with a one-line message.
 */
export function expectSame(actual: unknown, expected: unknown, what: string): void {
  if (actual !== expected) throw new Error(`${what}: not the same object`);
}

export function expectNotSame(actual: unknown, other: unknown, what: string): void {
  if (actual === other) throw new Error(`${what}: unexpectedly the same object`);
}

export function expectSameList(actual: readonly unknown[], expected: readonly unknown[], what: string): void {
  if (actual.length !== expected.length) throw new Error(`${what}: ${actual.length} items, expected ${expected.length}`);
  actual.forEach((a, i) => expectSame(a, expected[i], `${what}[${i}]`));
}
