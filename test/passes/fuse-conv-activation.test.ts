import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { fuseConvActivation } from '../../passes/fuse/fuse-conv-activation.js';
import { attrFloat, attrString } from '../../src/ir/attribute.js';
import { ModelBuilder } from '../../src/ir/builder.js';
import type { Value } from '../../src/ir/graph.js';
import { Tensor } from '../../src/ir/tensor.js';
import { readModel } from '../../src/node/files.js';
import { checkPass, ops } from './harness.js';
import { checkCapabilities } from '../../targets/capabilities/check.js';
import { webgpu } from '../../targets/webgpu.js';
import { explanations, fixtures, rand } from './gelu-util.js';

const CONV = { kernel_shape: [3, 3], pads: [1, 1, 1, 1] };

function convBlock(b: ModelBuilder, x: Value, seed: number, bias = true): Value {
  const t = rand(seed);
  const inputs = [x, b.constant(t([4, 3, 3, 3]), `w${seed}`)];
  if (bias) inputs.push(b.constant(t([4]), `b${seed}`));
  return b.node('Conv', inputs, CONV);
}

describe('fuse-conv-activation', () => {
  test('Conv + Relu, LeakyRelu, Sigmoid, Tanh, Clip (constant inputs), HardSigmoid -> FusedConv', async () => {
    const b = new ModelBuilder({ opset: 13 });
    const x = b.input('x', 'float32', ['batch', 3, 8, 8]);
    const s = (v: number, n: string) => b.constant(Tensor.float32([v], []), n);
    b.output(b.node('Relu', [convBlock(b, x, 1)]), 'relu');
    b.output(b.node('LeakyRelu', [convBlock(b, x, 2)], { alpha: 0.1 }), 'leaky');
    b.output(b.node('Sigmoid', [convBlock(b, x, 3, false)]), 'sigmoid');
    b.output(b.node('Tanh', [convBlock(b, x, 4)]), 'tanh');
    b.output(b.node('Clip', [convBlock(b, x, 5), s(0, 'lo'), s(0.5, 'hi')]), 'clip');
    b.output(b.node('Clip', [convBlock(b, x, 6), undefined, s(0.25, 'hi2')]), 'clipmax');
    b.output(b.node('HardSigmoid', [convBlock(b, x, 7)], { alpha: 0.3, beta: 0.4 }), 'hardsigmoid');
    const feeds = { x: rand(9)([2, 3, 8, 8], -2, 2) };
    const { after, changes } = await checkPass(b.build(), fuseConvActivation, { feeds, atol: 1e-4 });
    expect(changes).toBe(7);
    expect(ops(after)).toEqual({ FusedConv: 7 });
    const byOut = Object.fromEntries(after.graph.nodes.map((n) => [n.outputs[0]!.name, n]));
    expect(attrString(byOut.leaky!.attr('activation'))).toBe('LeakyRelu');
    expect(attrFloat(byOut.leaky!.attr('kernel_shape'))).toBeUndefined();
    expect([...(byOut.hardsigmoid!.attr('activation_params') as { value: Float32Array }).value].map((v) => Math.round(v * 10) / 10)).toEqual([0.3, 0.4]);
    expect((byOut.clipmax!.attr('activation_params') as { value: Float32Array }).value[0]).toBeLessThan(-1e38);
    expect(byOut.sigmoid!.inputs.length).toBe(2);
    expect(after.opsetVersion('com.microsoft')).toBe(1);
  });

  test('opset 6 Clip with min/max attributes', async () => {
    const b = new ModelBuilder({ opset: 10 });
    const x = b.input('x', 'float32', [1, 3, 8, 8]);
    b.output(b.node('Clip', [convBlock(b, x, 1)], { min: -0.5, max: 0.5 }), 'y');
    const { after } = await checkPass(b.build(), fuseConvActivation, { feeds: { x: rand(2)([1, 3, 8, 8], -2, 2) }, atol: 1e-4 });
    expect(ops(after)).toEqual({ FusedConv: 1 });
  });

  test('Conv + Add(residual) + Relu -> FusedConv with the sum input Z, both Add orders, with and without Conv bias', async () => {
    const b = new ModelBuilder({ opset: 13 });
    const x = b.input('x', 'float32', ['batch', 3, 8, 8]);
    const r = b.input('r', 'float32', ['batch', 4, 8, 8]);
    b.output(b.node('Relu', [b.node('Add', [convBlock(b, x, 1), r])]), 'y1');
    b.output(b.node('Relu', [b.node('Add', [r, convBlock(b, x, 2, false)])]), 'y2');
    b.output(b.node('Sigmoid', [b.node('Add', [convBlock(b, x, 3), r])]), 'y3');
    const feeds = { x: rand(4)([2, 3, 8, 8], -2, 2), r: rand(5)([2, 4, 8, 8], -2, 2) };
    const { after, changes } = await checkPass(b.build(), fuseConvActivation, { feeds, atol: 1e-4 });
    expect(changes).toBe(3);
    expect(ops(after)).toEqual({ FusedConv: 3 });
    for (const n of after.graph.nodes) expect(n.inputs[3]?.name).toBe('r');
    expect(after.graph.nodes.find((n) => n.outputs[0]!.name === 'y2')!.inputs[2]).toBeUndefined();
  });

  test('webgpu: no sum input (its FusedConv kernel ignores Z, measured on a real WebGPU EP); plain Conv + Relu still fused; check refuses a FusedConv with Z there', async () => {
    const b = new ModelBuilder({ opset: 13 });
    const x = b.input('x', 'float32', ['batch', 3, 8, 8]);
    const r = b.input('r', 'float32', ['batch', 4, 8, 8]);
    b.output(b.node('Relu', [b.node('Add', [convBlock(b, x, 1), r])]), 'sum');
    b.output(b.node('Relu', [convBlock(b, x, 2)]), 'plain');
    const model = b.build();
    const feeds = { x: rand(4)([2, 3, 8, 8], -2, 2), r: rand(5)([2, 4, 8, 8], -2, 2) };
    const { after } = await checkPass(model, fuseConvActivation, { feeds, atol: 1e-4, target: webgpu });
    expect(ops(after)).toEqual({ Conv: 1, Add: 1, Relu: 1, FusedConv: 1 });
    expect(after.graph.nodes.find((n) => n.opType === 'FusedConv')!.inputs.length).toBeLessThanOrEqual(3);
    // the same model fused for the CPU has the sum form, which the webgpu table refuses
    const cpu = await checkPass(model, fuseConvActivation, { feeds, atol: 1e-4 });
    // refused, not CPU-placed: the WebGPU EP has a FusedConv kernel, so ORT would not fall back
    const v = checkCapabilities(cpu.after, webgpu.capabilities!);
    expect(v.map((x) => x.reason)).toEqual([expect.stringMatching(/reads 3 input\(s\) and ignores the rest; this node has 4/)]);
  });

  test('does not fire: non-constant Clip bounds, Conv output used twice, broadcast residual, float64; explains each', async () => {
    const b = new ModelBuilder({ opset: 13 });
    const x = b.input('x', 'float32', ['batch', 3, 8, 8]);
    const lo = b.input('lo', 'float32', []);
    b.output(b.node('Clip', [convBlock(b, x, 1), lo, b.constant(Tensor.float32([6], []), 'six')]), 'clip');
    const shared = convBlock(b, x, 2);
    b.output(b.node('Relu', [shared]), 'relu');
    b.output(shared, 'conv_out');
    const rb = b.input('rb', 'float32', [1, 4, 1, 1]);
    b.output(b.node('Relu', [b.node('Add', [convBlock(b, x, 3), rb])]), 'bcast');
    const model = b.build();
    const feeds = { x: rand(4)([2, 3, 8, 8]), lo: Tensor.float32([0], []), rb: rand(5)([1, 4, 1, 1]) };
    const { changes } = await checkPass(model, fuseConvActivation, { feeds });
    expect(changes).toBe(0);
    const msgs = await explanations(model, fuseConvActivation);
    const has = (re: RegExp): void => expect(msgs.some((m) => re.test(m)), `${re} in\n${msgs.join('\n')}`).toBe(true);
    has(/\(Clip\): after node '.*' \(Conv\), but its min 'lo' is not a constant scalar/);
    has(/\(Conv\): its output has 1 use and is a graph output; it can only be fused into node '.*' \(Relu\)/);
    has(/\(Add\): 'rb' has shape \[1, 4, 1, 1\] and node '.*' \(Conv\) output \[batch, 4, 8, 8\]: FusedConv's sum input must have exactly the Conv output's shape/);
    expect(msgs).toHaveLength(3);

    const d = new ModelBuilder({ opset: 13 });
    const xd = d.input('x', 'float64', [1, 3, 8, 8]);
    d.output(d.node('Relu', [d.node('Conv', [xd, d.constant(Tensor.fromTypedArray(11, [4, 3, 3, 3], new Float64Array(108).fill(0.1)), 'w')], CONV)]), 'y');
    expect(await explanations(d.build(), fuseConvActivation)).toEqual([expect.stringMatching(/input element type is not float32/)]);
  });

  test('cnn-tiny-op13: Conv+Relu, depthwise Conv+Clip (ReLU6), strided Conv+Relu -> 3 FusedConv', async () => {
    const model = readModel(path.join(fixtures, 'cnn-tiny-op13/model.onnx')).model;
    const { after, changes } = await checkPass(model, fuseConvActivation, { inputDims: { batch: 2 }, atol: 1e-4 });
    expect(changes).toBe(3);
    const h = ops(after);
    expect(h.FusedConv).toBe(3);
    expect(h.Conv).toBe(1); // the pointwise Conv + residual Add has no activation after it
    expect(h.Relu ?? 0).toBe(0);
    expect(h.Clip ?? 0).toBe(0);
    const clip = after.graph.nodes.find((n) => attrString(n.attr('activation')) === 'Clip')!;
    expect([...(clip.attr('activation_params') as { value: Float32Array }).value]).toEqual([0, 6]);
  });
});
