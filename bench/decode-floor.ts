/**
 * npm run bench:decode-floor -- MODEL.onnx [--runs N] [--threads N] [--bandwidth GB/s]
 *
 * The floor under a decode step of a weight-quantized decoder on this machine: every weight product
 * of MODEL (MatMulNBits, DynamicQuantizeMatMul, MatMul/Gemm with a constant weight) copied into a
 * model of its own, each fed a one-token activation [1, 1, K], nothing else (no attention, norms or
 * cache). One run of it reads every weight once, as a decode step does, so its latency is what the
 * runtime's kernels need for the weights alone: the decode step cannot be faster, and its share of
 * the memory-bandwidth limit is what the kernels reach. Prints the floor, its bytes, its GB/s and %
 * of the bandwidth (measured as `bench --generate` does, unless --bandwidth), per op kind.
 */
import fs from 'node:fs';
import ort from 'onnxruntime-node';
import { measureBandwidth } from '../src/bench/bandwidth.js';
import { median } from '../src/bench/stats.js';
import { ModelBuilder } from '../src/ir/builder.js';
import type { Node, Value } from '../src/ir/graph.js';
import type { Model } from '../src/ir/model.js';
import { Tensor } from '../src/ir/tensor.js';
import { serializeModel } from '../src/io.js';
import { readModel } from '../src/node/files.js';
import { concatChunks } from '../src/onnx/codec.js';

interface Product { node: Node; k: number; bytes: number }

function intAttr(n: Node, name: string): number {
  const a = n.attr(name) as { value: number | bigint } | undefined;
  return a ? Number(a.value) : NaN;
}

/** The weight products of the main graph, with K and the bytes of their constant inputs. */
function products(m: Model): Product[] {
  const out: Product[] = [];
  const constBytes = (n: Node): number => n.inputs.reduce((s, v) => s + (v?.initializer?.byteLength ?? 0), 0);
  for (const n of m.graph.nodes) {
    if (n.opType === 'MatMulNBits') out.push({ node: n, k: intAttr(n, 'K'), bytes: constBytes(n) });
    else if ((n.opType === 'DynamicQuantizeMatMul' || n.opType === 'MatMul' || (n.opType === 'Gemm' && !intAttr(n, 'transB'))) && n.inputs[1]?.initializer?.dims.length === 2) {
      out.push({ node: n, k: n.inputs[1].initializer.dims[0]!, bytes: constBytes(n) });
    }
  }
  return out;
}

/** One model holding only `ps`, each fed an activation of its K (one input per K). */
function floorModel(src: Model, ps: Product[]): Model {
  const b = new ModelBuilder({ opset: 17, opsets: { 'com.microsoft': 1 } });
  const inputs = new Map<number, Value>();
  ps.forEach((p, i) => {
    let a = inputs.get(p.k);
    if (!a) { a = b.input(`a${p.k}`, 'float32', [1, 1, p.k]); inputs.set(p.k, a); }
    const consts = p.node.inputs.slice(1).map((v) => (v ? (v.initializer ? b.constant(v.initializer as Tensor, `${v.name}`) : undefined) : undefined));
    const attrs = Object.fromEntries([...p.node.attributes.entries()].map(([k, v]) => [k, v]));
    b.output(b.node(p.node.opType, [a, ...consts], attrs, { domain: p.node.domain, name: `p${i}` }), `y${i}`);
  });
  void src;
  return b.build();
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const opt = (flag: string): string | undefined => { const i = args.indexOf(flag); return i >= 0 ? args.splice(i, 2)[1] : undefined; };
  const runs = Number(opt('--runs') ?? 30);
  const threads = Number(opt('--threads') ?? 1);
  const given = opt('--bandwidth');
  const file = args[0];
  if (!file || !fs.existsSync(file)) throw new Error('usage: npm run bench:decode-floor -- MODEL.onnx [--runs N] [--threads N] [--bandwidth GB/s]');
  const m = readModel(file).model;
  const ps = products(m);
  const bytes = ps.reduce((s, p) => s + p.bytes, 0);
  const floor = floorModel(m, ps);
  const session = await ort.InferenceSession.create(concatChunks(serializeModel(floor).chunks), { intraOpNumThreads: threads, graphOptimizationLevel: 'all', logSeverityLevel: 4 });
  const feeds = Object.fromEntries(floor.graph.inputs.map((v) => {
    const k = Number((v.type as { shape: number[] }).shape[2]);
    return [v.name, new ort.Tensor('float32', Float32Array.from({ length: k }, (_, i) => Math.sin(i)), [1, 1, k])];
  }));
  for (let i = 0; i < 3; i++) await session.run(feeds);
  const t: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await session.run(feeds);
    t.push(performance.now() - t0);
  }
  await session.release();
  const ms = median(t);
  const bw = given ? Number(given) : (await measureBandwidth()).gbPerSec;
  const gbs = bytes / (ms / 1000) / 1e9;
  const kinds: Record<string, number> = {};
  for (const p of ps) {
    const key = p.node.opType === 'MatMulNBits' ? `MatMulNBits ${intAttr(p.node, 'bits')}-bit` : p.node.opType;
    kinds[key] = (kinds[key] ?? 0) + 1;
  }
  console.log(`${file}: ${ps.length} weight products (${Object.entries(kinds).map(([k, n]) => `${n} ${k}`).join(', ')}), ${(bytes / 2 ** 20).toFixed(1)} MiB read per token`);
  console.log(`floor p50 ${ms.toFixed(2)} ms per token (${threads} thread(s), ${runs} runs): ${gbs.toFixed(1)} GB/s = ${((gbs / bw) * 100).toFixed(1)}% of ${bw.toFixed(1)} GB/s${given ? ' (given)' : ' (measured)'}`);
}

await main();
