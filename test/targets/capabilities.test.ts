import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { ModelBuilder } from '../../src/ir/builder.js';
import { DataType } from '../../src/ir/dtype.js';
import { Func } from '../../src/ir/model.js';
import { Tensor } from '../../src/ir/tensor.js';
import { readModel } from '../../src/node/files.js';
import { checkCapabilities, checkPlacement, summarizeCpuPlaced, summarizeWithCasts } from '../../targets/capabilities/check.js';
import { TARGETS } from '../../targets/index.js';
import { ortCpu } from '../../targets/capabilities/ort-cpu.js';
import { ortCuda } from '../../targets/capabilities/ort-cuda.js';
import { ortWasm } from '../../targets/capabilities/ort-wasm.js';
import { ortWebgpu } from '../../targets/capabilities/ort-webgpu.js';
import { tensorrt } from '../../targets/capabilities/tensorrt.js';
import type { Capabilities } from '../../src/target.js';

const MODELS = path.resolve(__dirname, '../../fixtures/models');
const fixtureModels = fs
  .readdirSync(MODELS)
  .filter((d) => fs.existsSync(path.join(MODELS, d, 'model.onnx')))
  .sort();

const ALL: Record<string, Capabilities> = { ortCpu, ortCuda, ortWasm, ortWebgpu, tensorrt };

describe('capability tables', () => {
  test.each(Object.entries(ALL))('%s: well-formed and sorted by key', (_name, caps) => {
    expect(caps.source.length).toBeGreaterThan(20);
    const keys = Object.keys(caps.kernels);
    expect(keys.length).toBeGreaterThan(100);
    expect(keys).toEqual([...keys].sort());
    for (const [key, ranges] of Object.entries(caps.kernels)) {
      const [domain] = key.split('::');
      expect(caps.domains).toContain(domain);
      for (const [since, last, types] of ranges) {
        expect(since).toBeGreaterThanOrEqual(1);
        if (last !== null) expect(last).toBeGreaterThanOrEqual(since);
        if (types) for (const t of types) expect(t).toMatch(/^(float|int|uint|bool|string|bfloat)/);
      }
    }
  });

  test('CPU spot checks (OperatorKernels.md @ 001d12d2)', () => {
    // |Conv|...|22+|**T** = tensor(float)|  |||[11, 21]|**T** = tensor(float)|  |||[1, 10]|**T** = tensor(float)|
    expect(ortCpu.kernels['ai.onnx::Conv']).toEqual([[1, 10, ['float32']], [11, 21, ['float32']], [22, null, ['float32']]]);
    // |Add|...|14+|**T** = tensor(double), tensor(float), tensor(int16), tensor(int32), tensor(int64), tensor(int8), tensor(uint16), tensor(uint32), tensor(uint64), tensor(uint8)|
    // |||13|**T** = tensor(double), tensor(float), tensor(int32), tensor(int64), tensor(uint32), tensor(uint64)|
    expect(ortCpu.kernels['ai.onnx::Add']![1]).toEqual([13, 13, ['float64', 'float32', 'int32', 'int64', 'uint32', 'uint64']]);
    expect(ortCpu.kernels['ai.onnx::Add']![2]![2]).toHaveLength(10);
    // |LayerNormalization|...|17+|**T** = tensor(double), tensor(float), tensor(float16)<br/> **U** = tensor(float)|
    // plus bfloat16, measured in onnxruntime-node 1.30 (test/targets/runtime-types.test.ts)
    expect(ortCpu.kernels['ai.onnx::LayerNormalization']).toContainEqual([17, null, ['bfloat16', 'float64', 'float32', 'float16']]);
    // measured: ORT's CPU EP runs float16 nodes without a float16 kernel behind Casts to float32
    expect(ortCpu.castsTo).toEqual({ float16: 'float32' });
    // com.microsoft |MatMulNBits|...|1+|**T1** = tensor(float), tensor(float16)<br/> **T2** = tensor(uint8)...
    expect(ortCpu.kernels['com.microsoft::MatMulNBits']).toEqual([[1, null, ['float32', 'float16']]]);
    // com.microsoft |Attention|...|1+|**T** = tensor(float)|
    expect(ortCpu.kernels['com.microsoft::Attention']).toEqual([[1, null, ['float32']]]);
    // ai.onnx.ml |LabelEncoder|...|4+|...|||[2, 3]|...|||1|**T1** = tensor(int64), tensor(string)...
    expect(ortCpu.kernels['ai.onnx.ml::LabelEncoder']!.map((r) => [r[0], r[1]])).toEqual([[1, 1], [2, 3], [4, null]]);
    // |Scatter|...|[9, 10]|... (no open-ended kernel)
    expect(ortCpu.kernels['ai.onnx::Scatter']!.map((r) => [r[0], r[1]])).toEqual([[9, 10]]);
    // Where's first input is condition:B, which the row does not list
    expect(ortCpu.kernels['ai.onnx::Where']).toEqual([[9, 15, null], [16, null, null]]);
  });

  test('CUDA spot checks (OperatorKernels.md @ 001d12d2)', () => {
    // |Conv|...|22+|**T** = tensor(bfloat16), tensor(double), tensor(float), tensor(float16)|  |||[11, 21]|**T** = tensor(double), tensor(float), tensor(float16)|
    expect(ortCuda.kernels['ai.onnx::Conv']).toContainEqual([22, null, ['bfloat16', 'float64', 'float32', 'float16']]);
    expect(ortCuda.kernels['ai.onnx::Conv']).toContainEqual([11, 21, ['float64', 'float32', 'float16']]);
    // |MatMulInteger|...|10+|**T1** = tensor(int8)<br/> **T2** = tensor(int8)...
    expect(ortCuda.kernels['ai.onnx::MatMulInteger']).toEqual([[10, null, ['int8']]]);
    // com.microsoft |GroupQueryAttention|...|1+|**M** = tensor(int32)<br/> **T** = tensor(bfloat16), tensor(float16)...
    expect(ortCuda.kernels['com.microsoft::GroupQueryAttention']).toEqual([[1, null, ['bfloat16', 'float16']]]);
    expect(ortCuda.domains).not.toContain('ai.onnx.ml');
  });

  test('WebGPU spot checks (onnxruntime-web 1.30.0 docs/webgpu-operators.md)', () => {
    // | Add | ai.onnx(7-12,13,14+) |  |
    expect(ortWebgpu.kernels['ai.onnx::Add']).toEqual([[7, 12, null], [13, 13, null], [14, null, null]]);
    // | Gelu | ai.onnx(20+); com.microsoft(1+) |  |
    expect(ortWebgpu.kernels['ai.onnx::Gelu']).toEqual([[20, null, null]]);
    expect(ortWebgpu.kernels['com.microsoft::Gelu']).toEqual([[1, null, null]]);
    // | GridSample | ai.onnx(16-19); com.ms.internal.nhwc(16-19) |  |
    expect(ortWebgpu.kernels['ai.onnx::GridSample']).toEqual([[16, 19, null]]);
    // | Attention | com.microsoft(1+) | need implementing mask and past/present |  (the com.microsoft contrib op)
    expect(ortWebgpu.kernels['com.microsoft::Attention']).toEqual([[1, null, null]]);
    // measured on the WebGPU EP (npm run bench:webgpu): float16 Conv runs there
    expect(ortWebgpu.kernels['ai.onnx::Conv']).toEqual([[1, 10, ['float32', 'float16']], [11, null, ['float32', 'float16']]]);
  });

  test('TensorRT spot checks (onnx-tensorrt docs/operators.md, TensorRT 8.5)', () => {
    // | Conv | Y | FP32, FP16, INT8 |  (+ float64: the parser casts DOUBLE down to FLOAT)
    expect(tensorrt.kernels['ai.onnx::Conv']).toEqual([[1, 17, ['float32', 'float16', 'int8', 'float64']]]);
    // | MatMul | Y | FP32, FP16 |
    expect(tensorrt.kernels['ai.onnx::MatMul']).toEqual([[1, 17, ['float32', 'float16', 'float64']]]);
    // | Add | Y | FP32, FP16, INT32 |  (+ int64: cast down to INT32 by the parser)
    expect(tensorrt.kernels['ai.onnx::Add']).toEqual([[1, 17, ['float32', 'float16', 'int32', 'int64', 'float64']]]);
    // | LayerNormalization | N |   | NonZero | Y | FP32, FP16
    expect(tensorrt.kernels['ai.onnx::LayerNormalization']).toBeUndefined();
    expect(tensorrt.kernels['ai.onnx::NonZero']).toEqual([[1, 17, ['float32', 'float16', 'float64']]]);
    expect(tensorrt.domains).toEqual(['ai.onnx']);
  });

  test('WASM is derived from the CPU table', () => {
    expect(ortWasm.kernels).toEqual(ortCpu.kernels);
    expect(ortWasm.domains).toEqual(ortCpu.domains);
    expect(ortWasm.castsTo).toEqual(ortCpu.castsTo);
  });
});

describe('checkCapabilities', () => {
  test.each(fixtureModels)('fixture %s passes ortCpu', (name) => {
    const model = readModel(path.join(MODELS, name, 'model.onnx'));
    expect(checkCapabilities(model.model, ortCpu)).toEqual([]);
  });

  // float16 fixtures are GPU exports: ORT's CPU EP runs them by inserting Casts (its table has no float16
  // Conv, Relu, ...): 'runs, with casts'; compiled for a CPU target they compute in float32 (test/precision.test.ts)
  test.each(fixtureModels.filter((d) => d.includes('-fp16-')))('float16 fixture %s runs on ortCpu with casts', (name) => {
    const r = checkPlacement(readModel(path.join(MODELS, name, 'model.onnx')).model, ortCpu);
    expect(r.violations).toEqual([]);
    expect(r.withCasts.length).toBeGreaterThan(0);
    expect(new Set(r.withCasts.map((c) => `${c.from} -> ${c.to}`))).toEqual(new Set(['float16 -> float32']));
  });

  test('a node whose type the row lacks but whose cast-to type it has: withCasts, not a violation; summarized in one line', () => {
    const b = new ModelBuilder({ opset: 17 });
    const x = b.input('x', 'float16', [1, 1, 4, 4]);
    const w = b.constant(Tensor.fromTypedArray(DataType.FLOAT16, [1, 1, 3, 3], new Uint16Array(9).fill(0x3c00)), 'w');
    const c = b.node('Conv', [x, w], {}, { name: 'conv' });
    b.output(b.node('Relu', [b.node('Transpose', [c], { perm: [0, 1, 3, 2] }, { name: 't' })], {}, { name: 'relu' }), 'y');
    const m = b.build();
    const r = checkPlacement(m, ortCpu);
    expect(r).toEqual({
      violations: [],
      cpuPlaced: [],
      withCasts: [
        { node: 'conv', op: 'Conv', domain: 'ai.onnx', from: 'float16', to: 'float32' },
        { node: 'relu', op: 'Relu', domain: 'ai.onnx', from: 'float16', to: 'float32' },
      ],
    });
    expect(summarizeWithCasts(r.withCasts)).toBe('2 node(s) run with casts: Conv x1, Relu x1 (float16 -> float32)');
    // without the casts declaration the same nodes are violations
    const { castsTo: _, ...noCasts } = ortCpu;
    expect(checkCapabilities(m, noCasts).map((v) => [v.node, v.reason])).toEqual([['conv', 'type float16 not supported (float32)'], ['relu', 'type float16 not supported (float64, float32, int32, int8)']]);
  });

  const attentionModel = () => {
    const b = new ModelBuilder({ opset: 17, opsets: { 'com.microsoft': 1 } });
    const x = b.input('x', 'float32', [1, 4, 8]);
    const w = b.constant(Tensor.float32(new Array(8 * 24).fill(0.01), [8, 24]), 'w');
    const bias = b.constant(Tensor.float32(new Array(24).fill(0), [24]), 'bias');
    b.output(b.node('Attention', [x, w, bias], { num_heads: 2 }, { domain: 'com.microsoft', name: 'attn' }), 'y');
    return b.build();
  };

  test('a com.microsoft Attention node fails tensorrt: domain not supported', () => {
    expect(checkCapabilities(attentionModel(), tensorrt)).toEqual([
      { node: 'attn', op: 'Attention', domain: 'com.microsoft', reason: 'domain com.microsoft not supported' },
    ]);
  });

  test('a com.microsoft Attention node fails a WebGPU table without that domain', () => {
    const noContrib: Capabilities = { ...ortWebgpu, domains: ['ai.onnx'] };
    const v = checkCapabilities(attentionModel(), noContrib);
    expect(v).toHaveLength(1);
    expect(v[0]!.reason).toBe('domain com.microsoft not supported');
    // the real WebGPU table lists com.microsoft Attention (1+), and CPU runs it in float32
    expect(checkCapabilities(attentionModel(), ortWebgpu)).toEqual([]);
    expect(checkCapabilities(attentionModel(), ortCpu)).toEqual([]);
  });

  test('a float64 Conv fails ortWebgpu with a type reason', () => {
    const b = new ModelBuilder({ opset: 17 });
    const x = b.input('x', 'float64', [1, 1, 4, 4]);
    const w = b.constant(Tensor.fromTypedArray(DataType.DOUBLE, [1, 1, 3, 3], new Float64Array(9).fill(1)), 'w');
    b.output(b.node('Conv', [x, w], {}, { name: 'conv' }), 'y');
    const v = checkCapabilities(b.build(), ortWebgpu);
    expect(v).toEqual([{ node: 'conv', op: 'Conv', domain: 'ai.onnx', reason: 'type float64 not supported (float32, float16)' }]);
  });

  test('opset coverage, missing ops and subgraphs', () => {
    const b = new ModelBuilder({ opset: 18 });
    const x = b.input('x', 'float32', [4]);
    b.output(b.node('Relu', [b.node('Scatter', [x, b.constant(Tensor.float32([0]), 'i'), x], {}, { name: 's' })], {}, { name: 'r' }), 'y');
    // Scatter's only CPU kernel is [9, 10]: opset 18 is past its end, but it is the op's newest range
    expect(checkCapabilities(b.build(), ortCpu)).toEqual([]);
    const lim: Capabilities = { source: 'test', domains: ['ai.onnx'], kernels: { 'ai.onnx::Relu': [[6, 12, null], [19, null, null]] } };
    expect(checkCapabilities(b.build(), lim)).toEqual([
      { node: 's', op: 'Scatter', domain: 'ai.onnx', reason: 'op not implemented' },
      { node: 'r', op: 'Relu', domain: 'ai.onnx', reason: 'opset 18 not covered (kernels 6-12, 19+)' },
    ]);
  });

  test('nodes inside If/Loop bodies are checked', () => {
    const model = readModel(path.join(MODELS, 'control-flow-op13', 'model.onnx')).model;
    const inner = [...model.graph.allGraphs()].filter((g) => g !== model.graph).flatMap((g) => g.nodes);
    expect(inner.length).toBeGreaterThan(0);
    const onlyControl: Capabilities = { source: 'test', domains: ['ai.onnx'], kernels: { 'ai.onnx::If': [[1, null, null]], 'ai.onnx::Loop': [[1, null, null]] } };
    const v = checkCapabilities(model, onlyControl);
    const innerNames = new Set(inner.filter((n) => !['If', 'Loop', 'Constant'].includes(n.opType)).map((n) => n.name || `${n.opType}#${n.id}`));
    for (const n of innerNames) expect(v.map((x) => x.node)).toContain(n);
    expect(v.every((x) => x.reason === 'op not implemented')).toBe(true);
  });

  test('calls of model-local functions are checked through the body', () => {
    const b = new ModelBuilder({ opset: 17, opsets: { 'local': 1 } });
    const x = b.input('x', 'float32', [4]);
    b.output(b.node('MyRelu', [x], {}, { domain: 'local', name: 'call' }), 'y');
    const model = b.build();
    const f = new Func('MyRelu', 'local');
    f.opsetImports = [{ domain: '', version: 17 }];
    const fx = f.body.addInput('fx', { kind: 'tensor', elemType: DataType.FLOAT });
    const fy = f.body.addNode({ opType: 'Celu', domain: '', name: 'body', inputs: [fx], outputs: 1 }).outputs[0]!;
    f.body.addOutput(fy);
    model.functions.push(f);
    expect(checkCapabilities(model, ortCpu)).toEqual([]);
    const v = checkCapabilities(model, ortCuda); // CUDA has no Celu kernel
    expect(v).toEqual([{ node: 'body', op: 'Celu', domain: 'ai.onnx', reason: 'op not implemented' }]);
  });
});

describe('checkPlacement: CPU fallback', () => {
  const webgpu = TARGETS.find((t) => t.name === 'webgpu')!.capabilities!;
  const cuda = TARGETS.find((t) => t.name === 'cuda')!.capabilities!;

  /** A float Conv, then a shape chain (Shape -> ConstantOfShape, Shape -> Gather -> Range -> Cast) added to its output. */
  const shapeChainModel = (h: number | string = 4, w: number | string = 4) => {
    const b = new ModelBuilder({ opset: 17 });
    const x = b.input('x', 'float32', [1, 1, h, w]);
    const wt = b.constant(Tensor.float32(new Array(9).fill(0.1), [1, 1, 3, 3]), 'w');
    const conv = b.node('Conv', [x, wt], { pads: [1, 1, 1, 1] }, { name: 'conv' });
    const shape = b.node('Shape', [conv], {}, { name: 'shape' });
    const ones = b.node('ConstantOfShape', [shape], { value: Tensor.float32([1], [1]) }, { name: 'cos' });
    const width = b.node('Gather', [shape, b.constant(Tensor.int64([3], []), 'i3')], { axis: 0 }, { name: 'width' });
    const range = b.node('Range', [b.constant(Tensor.int64([0], []), 'zero'), width, b.constant(Tensor.int64([1], []), 'one')], {}, { name: 'range' });
    const ramp = b.node('Cast', [range], { to: DataType.FLOAT }, { name: 'ramp' });
    const sum = b.node('Add', [b.node('Add', [conv, ones], {}, { name: 'add1' }), ramp], {}, { name: 'add2' });
    b.output(sum, 'y');
    return b.build();
  };

  test('webgpu: ConstantOfShape runs on the CPU EP (a warning, with the bytes that cross), not a violation', () => {
    const model = shapeChainModel();
    const r = checkPlacement(model, webgpu);
    expect(r.violations).toEqual([]);
    // its float32 [1,1,4,4] output goes to a WebGPU Add: 64 bytes; its input is an int64 shape (not counted)
    expect(r.cpuPlaced).toEqual([{ node: 'cos', op: 'ConstantOfShape', domain: 'ai.onnx', reason: 'op not implemented', crossBytes: 64 }]);
    expect(checkCapabilities(model, webgpu)).toEqual([]);
    // the bare WebGPU table (no fallback) still refuses it
    expect(checkPlacement(model, ortWebgpu)).toEqual({ violations: [{ node: 'cos', op: 'ConstantOfShape', domain: 'ai.onnx', reason: 'op not implemented' }], cpuPlaced: [], withCasts: [] });
    expect(summarizeCpuPlaced(r.cpuPlaced)).toBe('1 node(s) run on the CPU EP: ConstantOfShape x1; ~64 bytes cross');
  });

  test('symbolic shapes: the bytes that cross are unknown', () => {
    const r = checkPlacement(shapeChainModel('h', 'w'), webgpu);
    expect(r.violations).toEqual([]);
    expect(r.cpuPlaced.map((c) => [c.node, c.crossBytes])).toEqual([['cos', 'unknown']]);
    expect(summarizeCpuPlaced(r.cpuPlaced)).toBe('1 node(s) run on the CPU EP: ConstantOfShape x1; ~0 bytes cross (+ copies of symbolic size at 1 node(s))');
  });

  test('cuda: an op without a CUDA kernel counts its float input from, and output to, CUDA nodes', () => {
    const b = new ModelBuilder({ opset: 17 });
    const x = b.input('x', 'float32', [2, 8]);
    const r1 = b.node('Relu', [x], {}, { name: 'relu' });
    const c = b.node('Celu', [r1], {}, { name: 'celu' }); // CUDA has no Celu kernel; the CPU EP has
    b.output(b.node('Relu', [c], {}, { name: 'relu2' }), 'y');
    const r = checkPlacement(b.build(), cuda);
    expect(r.violations).toEqual([]);
    expect(r.cpuPlaced).toEqual([{ node: 'celu', op: 'Celu', domain: 'ai.onnx', reason: 'op not implemented', crossBytes: 128 }]);
  });

  test('what no EP of the runtime runs is still a violation', () => {
    // float64 Conv: WebGPU's Conv takes float32 and float16, the CPU EP's float32 only
    const b = new ModelBuilder({ opset: 17 });
    const x = b.input('x', 'float64', [1, 1, 4, 4]);
    const w = b.constant(Tensor.fromTypedArray(DataType.DOUBLE, [1, 1, 3, 3], new Float64Array(9).fill(1)), 'w');
    b.output(b.node('Conv', [x, w], {}, { name: 'conv' }), 'y');
    expect(checkPlacement(b.build(), webgpu)).toEqual({
      violations: [{ node: 'conv', op: 'Conv', domain: 'ai.onnx', reason: 'type float64 not supported (float32, float16); CPU EP: type float64 not supported (float32)' }],
      cpuPlaced: [],
      withCasts: [],
    });
    // an op of a domain no EP knows
    const c = new ModelBuilder({ opset: 17, opsets: { 'my.ops': 1 } });
    const y = c.input('y', 'float32', [4]);
    c.output(c.node('Mystery', [y], {}, { domain: 'my.ops', name: 'm' }), 'z');
    const r = checkPlacement(c.build(), cuda);
    expect(r.cpuPlaced).toEqual([]);
    expect(r.violations).toEqual([{ node: 'm', op: 'Mystery', domain: 'my.ops', reason: 'domain my.ops not supported; CPU EP: domain my.ops not supported' }]);
  });

  test('targets without a CPU fallback keep refusing: tensorrt (TensorRT itself), wasm (the CPU EP itself), portable (no table)', () => {
    const byName = (n: string) => TARGETS.find((t) => t.name === n)!;
    expect(byName('tensorrt').capabilities!.cpuFallback).toBeUndefined();
    expect(byName('wasm').capabilities!.cpuFallback).toBeUndefined();
    expect(byName('portable').capabilities).toBeUndefined();
    expect(webgpu.cpuFallback).toBe(ortWasm);
    expect(cuda.cpuFallback).toBe(ortCpu);
    const b = new ModelBuilder({ opset: 17 });
    const x = b.input('x', 'float32', [1, 4, 8]);
    b.output(b.node('LayerNormalization', [x, b.constant(Tensor.float32(new Array(8).fill(1)), 's')], {}, { name: 'ln' }), 'y');
    expect(checkPlacement(b.build(), byName('tensorrt').capabilities!)).toEqual({
      violations: [{ node: 'ln', op: 'LayerNormalization', domain: 'ai.onnx', reason: 'op not implemented' }],
      cpuPlaced: [],
      withCasts: [],
    });
  });

  test('nodes inside subgraphs are placed too (webgpu has no Loop kernel)', () => {
    const model = readModel(path.join(MODELS, 'control-flow-op13', 'model.onnx')).model;
    const r = checkPlacement(model, webgpu);
    expect(r.violations).toEqual([]);
    expect(r.cpuPlaced.map((c) => c.op)).toContain('Loop');
  });
});
