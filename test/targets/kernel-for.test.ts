/**
 * kernelFor's version rule (src/target.ts), and that the four places that ask a capability table use
 * it alike: the legality check (check / compile / split), the pass context's supports(), and the
 * fusions' type question (targetTakesType).
 */
import { describe, expect, test } from 'vitest';
import { ModelBuilder } from '../../src/ir/builder.js';
import { PassManager } from '../../src/pass/manager.js';
import type { Pass, PassContext } from '../../src/pass/pass.js';
import { describeKernelRows, kernelFor, kernelTakes, lookupKernel, type Capabilities, type Target } from '../../src/target.js';
import { checkCapabilities } from '../../targets/capabilities/check.js';
import { ortCpu } from '../../targets/capabilities/ort-cpu.js';
import { tensorrt } from '../../targets/capabilities/tensorrt.js';
import { targetTakesType } from '../../passes/lib/attention/target.js';
import { DataType } from '../../src/ir/dtype.js';

/** Relu: three rows with different types and a gap at 13-15; Abs: one open row; Neg: ends at 17. */
const caps: Capabilities = {
  source: 'test',
  domains: ['ai.onnx', 'com.microsoft'],
  kernels: {
    'ai.onnx::Relu': [[6, 12, ['float32']], [16, 17, ['float32', 'float16']], [18, 20, ['float32', 'float16', 'bfloat16']]],
    'ai.onnx::Abs': [[1, null, null]],
    'ai.onnx::Neg': [[6, 17, ['int8']]],
    'ai.onnx::Dup': [[1, null, ['float32']], [10, null, ['int8']]],
    'com.microsoft::Gelu': [[1, null, ['float32']]],
    'ai.onnx.ml::Scaler': [[1, null, null]],
  },
};

const types = (v: number | undefined, op = 'Relu', domain = ''): string[] | null | undefined => kernelFor(caps, op, domain, v)?.[2];

describe('kernelFor: the version rule', () => {
  test('a row [from, to] covers opset versions from..to, and picks that row', () => {
    expect(types(6)).toEqual(['float32']);
    expect(types(12)).toEqual(['float32']);
    expect(types(16)).toEqual(['float32', 'float16']);
    expect(types(17)).toEqual(['float32', 'float16']);
    expect(types(18)).toEqual(['float32', 'float16', 'bfloat16']);
    expect(types(20)).toEqual(['float32', 'float16', 'bfloat16']);
  });

  test('a version past the end of the newest row is covered by the newest row', () => {
    expect(types(21)).toEqual(['float32', 'float16', 'bfloat16']);
    expect(types(99)).toEqual(['float32', 'float16', 'bfloat16']);
    expect(kernelFor(caps, 'Neg', '', 25)).toEqual([6, 17, ['int8']]);
  });

  test('a version below the first row, or in a gap between rows, has no kernel', () => {
    expect(kernelFor(caps, 'Relu', '', 5)).toBeUndefined();
    expect(kernelFor(caps, 'Relu', '', 13)).toBeUndefined();
    expect(kernelFor(caps, 'Relu', '', 15)).toBeUndefined();
    expect(kernelFor(caps, 'Neg', '', 5)).toBeUndefined();
    expect(lookupKernel(caps, 'Relu', '', 14)).toEqual({ reason: 'opset 14 not covered (kernels 6-12, 16-17, 18-20)' });
  });

  test('no version (the model does not import the domain): the newest row', () => {
    expect(types(undefined)).toEqual(['float32', 'float16', 'bfloat16']);
    expect(kernelFor(caps, 'Gelu', 'com.microsoft', undefined)).toEqual([1, null, ['float32']]);
  });

  test('overlapping rows: the first that covers the version', () => {
    expect(kernelFor(caps, 'Dup', '', 12)).toEqual([1, null, ['float32']]);
  });

  test("the domain: '' and 'ai.onnx' are the default; a domain the table does not accept has no kernels", () => {
    expect(kernelFor(caps, 'Abs', 'ai.onnx', 7)).toEqual([1, null, null]);
    expect(kernelFor(caps, 'Abs', '', 7)).toEqual([1, null, null]);
    expect(kernelFor(caps, 'Scaler', 'ai.onnx.ml', 1)).toBeUndefined();
    expect(lookupKernel(caps, 'Scaler', 'ai.onnx.ml', 1)).toEqual({ reason: 'domain ai.onnx.ml not supported' });
    expect(lookupKernel(caps, 'Softmax', '', 13)).toEqual({ reason: 'op not implemented' });
    expect(kernelFor(caps, 'Gelu', '', 20)).toBeUndefined();
  });

  test('a target: its own table; none without one', () => {
    const t: Target = { name: 't', description: '', runtime: 'x', maxLevel: 3, pipeline: [], capabilities: caps };
    expect(kernelFor(t, 'Relu', '', 16)).toEqual([16, 17, ['float32', 'float16']]);
    expect(kernelFor({ ...t, capabilities: undefined }, 'Relu', '', 16)).toBeUndefined();
  });

  test('kernelTakes: a row without a type list takes any type', () => {
    expect(kernelTakes([1, null, null], 'int4')).toBe(true);
    expect(kernelTakes([1, null, ['float32']], 'float16')).toBe(false);
    expect(kernelTakes([1, null, ['float32']], 'float32')).toBe(true);
    expect(describeKernelRows([[19, null, null], [6, 12, null], [13, 13, null]])).toBe('6-12, 13, 19+');
  });

  test('the real tables: TensorRT rows end at its document\'s opset 17, and run newer models; ORT CPU Acos starts at 7', () => {
    expect(kernelFor(tensorrt, 'Conv', '', 21)?.[2]).toContain('float32');
    expect(kernelFor(ortCpu, 'Acos', '', 6)).toBeUndefined();
    expect(kernelFor(ortCpu, 'Acos', '', 7)).toEqual([7, 21, ['float32']]);
  });
});

describe('every caller asks the same question', () => {
  function model(opset: number) {
    const b = new ModelBuilder({ opset });
    const x = b.input('x', 'float16', [4]);
    b.output(b.node('Relu', [x], {}, { name: 'r' }), 'y');
    return b.build();
  }

  /** What the pass context answers, for a model at `opset`. */
  async function contextSays(opset: number, ask: (ctx: PassContext) => unknown): Promise<unknown> {
    let said: unknown;
    const probe: Pass = { name: 'probe', description: 'asks the context', level: 1, run: (_g, ctx) => { said = ask(ctx); return 0; } };
    const target: Target = { name: 'test', description: '', runtime: 'x', maxLevel: 3, pipeline: [], capabilities: caps };
    await new PassManager([probe], { target }).run(model(opset));
    return said;
  }

  test.each([6, 12, 13, 15, 16, 18, 20, 21])('opset %i: check, supports() and targetTakesType agree with kernelFor', async (opset) => {
    const row = kernelFor(caps, 'Relu', '', opset);
    const violations = checkCapabilities(model(opset), caps);
    expect(violations.length === 0).toBe(row !== undefined && kernelTakes(row, 'float16'));
    if (!row) expect(violations[0]!.reason).toMatch(/^opset \d+ not covered/);
    expect(await contextSays(opset, (ctx) => ctx.supports('', 'Relu'))).toBe(row !== undefined);
    expect(await contextSays(opset, (ctx) => targetTakesType(ctx, 'ai.onnx::Relu', DataType.FLOAT16))).toBe(row !== undefined && kernelTakes(row, 'float16'));
  });

  test('supports(): a domain the model does not import yet is judged by the newest row', async () => {
    expect(await contextSays(17, (ctx) => ctx.supports('com.microsoft', 'Gelu'))).toBe(true);
    expect(await contextSays(17, (ctx) => ctx.supports('com.microsoft', 'FastGelu'))).toBe(false);
  });
});
