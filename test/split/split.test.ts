/**
 * Splitting a model between device and cloud: edge -> cloud gives the original outputs (for the
 * chosen cut and for other candidates, with each wire format), and the crossing size and FLOP split
 * match hand calculations for a CNN and a transformer.
 */
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { attrInts } from '../../src/ir/attribute.js';
import type { Model } from '../../src/ir/model.js';
import { readModel } from '../../src/node/files.js';
import { readInputSets } from '../../src/node/inputs.js';
import { onnxruntimeNode } from '../../src/node/ort.js';
import {
  analyzeSplit, buildSplit, calibrateRanges, candidateCuts, chooseCut, compareComposed, cutAt, DEFAULT_HARDWARE,
  estimate, parseBandwidth, rankCuts, SplitError, wireBytes,
} from '../../src/split/index.js';

const FIXTURES = path.resolve(import.meta.dirname, '../../fixtures/models');
const load = (name: string): { model: Model; dir: string } => ({ model: readModel(path.join(FIXTURES, name, 'model.onnx')).model, dir: path.join(FIXTURES, name) });
const weight = (m: Model, name: string): number[] => [...m.graph.local(name)!.initializer!.dims];

describe.each(['cnn-tiny-op13', 'gpt2-tiny-op14', 'bert-tiny-op17', 'prenorm-tiny-op17'])('%s: edge -> cloud = original', (name) => {
  const { model, dir } = load(name);
  const sets = readInputSets(model, dir);
  const a = analyzeSplit(model, {});
  const ranked = rankCuts(a, DEFAULT_HARDWARE);

  test('the chosen cut and other candidates reproduce the outputs (fp32 wire)', async () => {
    expect(ranked.length).toBeGreaterThan(3);
    const chosen = chooseCut(a, DEFAULT_HARDWARE);
    expect(chosen.crossing).toEqual(ranked[0]!.crossing);
    const picks = new Set([0, 1, 2, Math.floor(ranked.length / 3), Math.floor((2 * ranked.length) / 3), ranked.length - 1]);
    for (const i of picks) {
      const cut = ranked[i]!;
      expect(cut.crossing.length).toBeLessThanOrEqual(3);
      const { edge, cloud } = buildSplit(a, cut);
      // each side keeps only the weights it uses
      expect(edge.graph.initializers.length + cloud.graph.initializers.length).toBeLessThanOrEqual(model.graph.initializers.length + 8);
      expect(edge.graph.outputs.map((v) => v.name).sort()).toEqual(cut.crossing.filter((c) => !c.graphInput).map((c) => c.name).sort());
      const r = await compareComposed(model, edge, cloud, onnxruntimeNode, sets);
      expect(r.maxAbsError, `cut #${i}: ${cut.crossing.map((c) => c.name).join(' + ')}`).toBeLessThanOrEqual(1e-5);
    }
  });

  test('fp16 and int8 wires stay within their tolerance', async () => {
    const cut = ranked[0]!;
    const fp16 = buildSplit(a, cut, { wire: 'fp16' });
    const r16 = await compareComposed(model, fp16.edge, fp16.cloud, onnxruntimeNode, sets);
    expect(r16.minCosine).toBeGreaterThanOrEqual(0.999);
    const ranges = await calibrateRanges(buildSplit(a, cut).edge, onnxruntimeNode, sets.map((s) => s.feeds));
    const int8 = buildSplit(a, cut, { wire: 'int8', ranges });
    expect(int8.edge.graph.nodes.some((n) => n.opType === 'QuantizeLinear') || cut.crossing.every((c) => c.dtype !== 'float32')).toBe(true);
    const r8 = await compareComposed(model, int8.edge, int8.cloud, onnxruntimeNode, sets);
    expect(r8.minCosine).toBeGreaterThanOrEqual(0.99);
    expect(wireBytes(cut, 'int8')).toBeLessThanOrEqual(cut.bytes);
  });
});

describe('hand calculations', () => {
  test('cnn-tiny: crossing bytes and FLOPs of the chosen cut and of a cut after the first Conv', () => {
    const { model } = load('cnn-tiny-op13');
    const a = analyzeSplit(model, { batch: 1 });
    const conv = (w: string, outHW: number): number => 2 * weight(model, w)[0]! * outHW * outHW * weight(model, w).slice(1).reduce((x, y) => x * y, 1);
    const stem = model.graph.nodes.find((n) => n.opType === 'Conv')!;
    const [k] = attrInts(stem.attr('kernel_shape'))!.map(Number);
    const [p] = attrInts(stem.attr('pads'))!.map(Number);
    const [s] = attrInts(stem.attr('strides'))!.map(Number);
    const h1 = (32 + 2 * p! - k!) / s! + 1; // 32
    const h2 = h1 / 2; // MaxPool 2x2
    const h3 = Math.floor((h2 + 2 - 3) / 2) + 1; // conv2: 3x3, pad 1, stride 2
    const convFlops = conv('onnx::Conv_47', h1) + conv('onnx::Conv_50', h1) + conv('onnx::Conv_53', h1) + conv('conv2.weight', h3);
    const [classes, features] = weight(model, 'fc.weight');
    const gemmFlops = 2 * classes! * features!;

    // the chosen cut: after global pooling, only [1, C] floats cross, and the classifier runs in the cloud
    const chosen = chooseCut(a, DEFAULT_HARDWARE);
    const c2 = weight(model, 'conv2.weight')[0]!;
    expect(chosen.crossing.map((c) => c.name)).toEqual(['/gap/GlobalAveragePool_output_0']);
    expect(chosen.bytes).toBe(1 * c2 * 1 * 1 * 4);
    expect(chosen.edgeFlopsByOp.Conv).toBe(convFlops);
    expect(chosen.cloudFlops).toBe(gemmFlops);
    expect(chosen.edgeFlops + chosen.cloudFlops).toBe(a.totalFlops);

    // by hand, after the first Conv: [1, C, H, W] floats cross, the edge runs that Conv only
    const first = cutAt(a, [stem.outputs[0]!.name]);
    const c1 = weight(model, 'onnx::Conv_47')[0]!;
    expect(first.bytes).toBe(1 * c1 * h1 * h1 * 4);
    expect(first.edgeFlops).toBe(conv('onnx::Conv_47', h1));
    expect(first.cloudFlopsByOp.Conv).toBe(convFlops - conv('onnx::Conv_47', h1));
    expect(first.cloudFlopsByOp.Gemm).toBe(gemmFlops);
  });

  test('gpt2-tiny: hidden-state cuts cross batch*seq*hidden*4 bytes; MatMul/Gemm FLOPs split by layer', () => {
    const { model } = load('gpt2-tiny-op14');
    const B = 1, S = 7;
    const a = analyzeSplit(model, { batch: B, sequence: S });
    const hidden = weight(model, 'transformer.h.0.attn.c_attn.weight')[0]!;
    const gemm = (w: string): number => { const [k, n] = weight(model, w); return 2 * B * S * k! * n!; };
    const layer = (l: number): number =>
      ['attn.c_attn', 'attn.c_proj', 'mlp.c_fc', 'mlp.c_proj'].reduce((s, w) => s + gemm(`transformer.h.${l}.${w}.weight`), 0)
      + 2 * (2 * B * S * S * hidden); // Q.K^T and probabilities x V over all heads
    const lmHead = 2 * B * S * hidden * weight(model, 'onnx::MatMul_675')[1]!;
    const contractions = (byOp: Record<string, number>): number => (byOp.MatMul ?? 0) + (byOp.Gemm ?? 0);

    // the chosen cut: a hidden state [B, S, hidden] crosses (with at most a few shape bytes)
    const chosen = chooseCut(a, DEFAULT_HARDWARE);
    const floats = chosen.crossing.filter((c) => c.dtype === 'float32');
    expect(floats.map((c) => c.shape)).toEqual([[B, S, hidden]]);
    expect(floats[0]!.bytes).toBe(B * S * hidden * 4);
    expect(chosen.bytes - B * S * hidden * 4).toBeLessThanOrEqual(3 * 8);
    expect(contractions(chosen.edgeFlopsByOp) + contractions(chosen.cloudFlopsByOp)).toBe(layer(0) + layer(1) + lmHead);

    // by hand, before the LM head: only the final hidden state crosses
    const last = cutAt(a, ['/Reshape_2_output_0']);
    expect(last.crossing.map((c) => c.name)).toEqual(['/Reshape_2_output_0']);
    expect(last.bytes).toBe(B * S * hidden * 4);
    expect(contractions(last.edgeFlopsByOp)).toBe(layer(0) + layer(1));
    expect(last.cloudFlops).toBe(lmHead);

    // by hand, after block 0: the residual stream crosses (and the 3-element output shape, 24 bytes)
    const mid = cutAt(a, ['/h.0/Add_1_output_0']);
    expect(mid.crossing.find((c) => c.name === '/h.0/Add_1_output_0')!.bytes).toBe(B * S * hidden * 4);
    expect(mid.bytes).toBe(B * S * hidden * 4 + 3 * 8);
    expect(contractions(mid.edgeFlopsByOp)).toBe(layer(0));
    expect(contractions(mid.cloudFlopsByOp)).toBe(layer(1) + lmHead);
  });

  test('bert-tiny: graph inputs the cloud reads (ids, mask) count as crossing', () => {
    const { model } = load('bert-tiny-op17');
    const a = analyzeSplit(model, { batch: 1, sequence: 8 });
    const withInputs = candidateCuts(a).filter((c) => c.crossing.some((x) => x.graphInput));
    expect(withInputs.length).toBeGreaterThan(0);
    for (const c of withInputs) {
      expect(c.bytes).toBe(c.crossing.reduce((s, x) => s + x.bytes, 0));
      for (const x of c.crossing.filter((y) => y.graphInput)) expect(x.bytes).toBe(1 * 8 * 8); // int64 [1, 8]
    }
  });
});

describe('estimates and errors', () => {
  test('latency = edge + rtt + transfer + cloud', () => {
    const e = estimate(50e9, 2.5e6, 2000e9, { edgeGflops: 50, cloudGflops: 2000, bandwidth: 20e6, rttMs: 30 });
    expect(e.edgeMs).toBeCloseTo(1000);
    expect(e.networkMs).toBeCloseTo(30 + 1000);
    expect(e.cloudMs).toBeCloseTo(1000);
    expect(e.totalMs).toBeCloseTo(3030);
  });

  test('bandwidth units', () => {
    expect(parseBandwidth('20Mbit/s')).toBe(20e6);
    expect(parseBandwidth('1Gbit/s')).toBe(1e9);
    expect(parseBandwidth('100Mbps')).toBe(100e6);
    expect(parseBandwidth('10MB/s')).toBe(80e6);
    expect(parseBandwidth('5e6')).toBe(5e6);
    expect(() => parseBandwidth('fast')).toThrow(SplitError);
  });

  test('--at refuses values that do not separate the graph', () => {
    const { model } = load('cnn-tiny-op13');
    const a = analyzeSplit(model, { batch: 1 });
    expect(() => cutAt(a, ['nope'])).toThrow(/no value 'nope'/);
    // the skip connection: the depthwise conv output alone leaves the stem output crossing too
    expect(() => cutAt(a, ['/dw/dw.0/Conv_output_0'])).toThrow(/would cross too/);
    expect(cutAt(a, ['/stem/stem.2/Relu_output_0', '/dw/dw.0/Conv_output_0']).crossing).toHaveLength(2);
    expect(() => chooseCut(a, DEFAULT_HARDWARE, { maxEdgeFlops: 1 })).toThrow(/no cut keeps the edge part/);
    const budget = chooseCut(a, DEFAULT_HARDWARE, { maxEdgeFlops: 1_000_000 });
    expect(budget.edgeFlops).toBeLessThanOrEqual(1_000_000);
  });
});
