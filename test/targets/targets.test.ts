/**
 * Every target compiles every fixture model: the result passes the target's own capability check,
 * and its outputs match the original's (all the targets' fp32 output runs on ONNX Runtime's CPU EP,
 * CUDA/WebGPU ones included: the contrib ops they use have CPU kernels too, but for the CUDA-only
 * NhwcConv, which validation runs as its standard-op composition, src/bench/stand-in.ts).
 */
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { validate } from '../../src/bench/validate.js';
import { compile } from '../../src/compile.js';
import { cloneModel } from '../../src/ir/clone.js';
import { readModel } from '../../src/node/files.js';
import { detectHost, hostTarget } from '../../src/node/host.js';
import { onnxruntimeNode } from '../../src/node/ort.js';
import { readInputSets } from '../../src/node/inputs.js';
import { TARGETS } from '../../targets/index.js';
import { checkCapabilities } from '../../targets/capabilities/check.js';

const FIXTURES = path.resolve(import.meta.dirname, '../../fixtures/models');
const MODELS = ['gpt2-tiny-op14', 'bert-tiny-op17', 'prenorm-tiny-op17', 'cnn-tiny-op13', 'control-flow-op13'];
/** What a target cannot run in a fixture, per its capability table (the compile must say so). */
const REFUSED: Record<string, RegExp> = {
  'tensorrt/control-flow-op13': /ReduceSum.*type int64 not supported/,
};
/** What a target's EP lacks but its runtime's CPU fallback runs (a warning in the report, not a refusal). */
const CPU_PLACED: Record<string, string[]> = {
  'webgpu/control-flow-op13': ['Identity', 'Loop'],
};

describe.each(TARGETS.map((t) => t.name))('%s', (name) => {
  const target = TARGETS.find((t) => t.name === name)!;
  test.each(MODELS)('%s: compiles, passes its capability check, outputs match', async (model) => {
    const dir = path.join(FIXTURES, model);
    const original = readModel(path.join(dir, 'model.onnx')).model;
    const compiled = cloneModel(original);
    const report = await compile(compiled, target, { runtime: onnxruntimeNode, verifyEach: true });
    const refused = REFUSED[`${name}/${model}`];
    if (refused) {
      expect(report.violations.map((v) => `${v.op}: ${v.reason}`).join('; ')).toMatch(refused);
      return;
    }
    expect(report.violations).toEqual([]);
    expect([...new Set(report.cpuPlaced.map((c) => c.op))].sort()).toEqual(CPU_PLACED[`${name}/${model}`] ?? []);
    if (target.capabilities) expect(checkCapabilities(compiled, target.capabilities)).toEqual([]);
    expect(compiled.metadata('retarget.target')).toBe(name);
    const res = await validate(original, compiled, onnxruntimeNode, { inputs: readInputSets(original, dir), tolerance: 'fp32' });
    expect(res.ok, JSON.stringify(res.worst)).toBe(true);
  });
});

test('ORT targets fuse transformers; portable and tensorrt keep standard ops only', async () => {
  const load = () => readModel(path.join(FIXTURES, 'bert-tiny-op17/model.onnx')).model;
  const x86 = load();
  await compile(x86, TARGETS.find((t) => t.name === 'x86-avx2')!, { runtime: onnxruntimeNode });
  const ops = (m: ReturnType<typeof load>) => m.graph.nodes.map((n) => `${n.domain || 'ai.onnx'}::${n.opType}`);
  expect(ops(x86).filter((o) => o === 'com.microsoft::Attention')).toHaveLength(2);
  for (const name of ['portable', 'tensorrt']) {
    const m = load();
    await compile(m, TARGETS.find((t) => t.name === name)!, { runtime: onnxruntimeNode });
    expect(ops(m).filter((o) => !o.startsWith('ai.onnx::'))).toEqual([]);
  }
});

test('ORT CPU targets keep Add + LayerNormalization (the SkipLayerNormalization CPU kernel is slower) and ask ORT not to fuse it; cuda fuses it', async () => {
  const load = () => readModel(path.join(FIXTURES, 'bert-tiny-op17/model.onnx')).model;
  for (const name of ['x86-avx2', 'x86-avx512', 'x86-vnni', 'arm64']) {
    const t = TARGETS.find((x) => x.name === name)!;
    const m = load();
    await compile(m, t, { runtime: onnxruntimeNode });
    expect(m.graph.nodes.filter((n) => n.opType === 'SkipLayerNormalization')).toHaveLength(0);
    expect(m.graph.nodes.filter((n) => n.opType === 'Attention')).toHaveLength(2);
    expect(t.sessionOptions?.['session.config:optimization.disable_specified_optimizers']).toBe('SkipLayerNormFusion');
  }
  const m = load();
  await compile(m, TARGETS.find((x) => x.name === 'cuda')!, { runtime: onnxruntimeNode });
  expect(m.graph.nodes.filter((n) => n.opType === 'SkipLayerNormalization').length).toBeGreaterThan(0);
});

test('cuda converts the convolution trunk to NhwcConv; validation says it ran them as standard ops', async () => {
  const dir = path.join(FIXTURES, 'cnn-tiny-op13');
  const original = readModel(path.join(dir, 'model.onnx')).model;
  const compiled = cloneModel(original);
  await compile(compiled, TARGETS.find((t) => t.name === 'cuda')!, { runtime: onnxruntimeNode });
  const count = (op: string): number => compiled.graph.nodes.filter((n) => n.opType === op).length;
  expect(count('NhwcConv')).toBe(original.graph.nodes.filter((n) => n.opType === 'Conv').length);
  expect(count('Conv')).toBe(0);
  const res = await validate(original, compiled, onnxruntimeNode, { inputs: readInputSets(original, dir), tolerance: 'fp32' });
  expect(res.ok).toBe(true);
  expect(res.standIns).toEqual({ 'com.microsoft::NhwcConv': count('NhwcConv') });
});

test('host detection reads the CPU flags', () => {
  expect(detectHost('flags : fpu avx avx2 fma avx512f avx512bw avx512_vnni', 'x64').chosen).toBe('x86-vnni');
  expect(detectHost('flags : fpu avx avx2 fma avx512f avx512bw', 'x64').chosen).toBe('x86-avx512');
  expect(detectHost('flags : fpu avx avx2 fma', 'x64').chosen).toBe('x86-avx2');
  expect(detectHost('Features : fp asimd asimddp', 'arm64').chosen).toBe('arm64');
  expect(detectHost('flags : fpu sse2', 'x64').chosen).toBe('portable');
  const h = hostTarget(detectHost('flags : avx2 fma', 'x64'));
  expect(h.name).toBe('host');
  expect(h.description).toMatch(/x86-avx2/);
});
