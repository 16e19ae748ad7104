/**
 * quantize-int4 (level 3; runs only with `--quantize int4`)
 *
 * Before:  y = MatMul(A, W)                 W: constant float32 [K, N]
 *          y = Gemm(A, W, C)                (transA = 0; transB = 1: W stored [N, K])
 *          e = Gather(E, ids)               E: constant float32 [V, D] embedding table, axis 0
 * After:   y = com.microsoft::MatMulNBits(A, Bq, scales, [zero_points], , [bias])
 *              bits = 4 (8 for the MatMuls the int8 budget promotes), block_size =
 *              quantize.blockSize ?? 32, K, N, accuracy_level
 *          e = com.microsoft::GatherBlockQuantized(Eq, ids, scales, [zero_points])
 *              bits = EMBEDDING_BITS (8; 4 with int8Budget 0), block_size, gather_axis = 0, quantize_axis = 1
 * Conditions:
 *   - W (E) is a float32 rank-2 initializer with at least MIN_WEIGHT_ELEMENTS (4096) elements;
 *     A is float32; Gemm has transA = 0 (alpha folds into the scales, beta * C into the bias);
 *   - the node is not named (by node name or op type) in quantize.keepFloat;
 *   - the target runs the op (ctx.supports); the embedding rewrite is optional (GatherBlockQuantized).
 * Layout (ORT ContribOperators.md, MatMulNBits): W is quantized in blocks of block_size along K,
 * column by column. B is uint8 [N, n_blocks, block_size / 2], two 4-bit codes a byte, the element
 * with the lower k in the low nibble; K is padded to a whole block with the zero point. scales is
 * float [N * n_blocks] (column-major over blocks: scales[n * n_blocks + b]). zero_points (only when
 * quantize.symmetric === false) is uint8 [N * ceil(n_blocks / 2)], two blocks a byte, low nibble
 * first; without it the zero point is 8.
 * Formula: W[k, n] ~ (code - zp) * scale. Symmetric (MLAS's BlkQ4Sym): scale = m / -8 where m is
 * the block's value of largest magnitude (so m itself maps to code 0, and [-8, 7] are all used);
 * asymmetric: scale = (max - min) / 15 over a range widened to include 0, zp = round(-min / scale).
 * GatherBlockQuantized with uint8 data uses the same conventions (blocks along D, rows packed
 * [V, D / 2], scales [V, n_blocks], zero_points [V, ceil(n_blocks / 2)]).
 *
 * accuracy_level: ACCURACY_LEVEL (4 = int8 compute: A is quantized to int8 per block and the
 * product runs on the integer kernels). Measured on x86-64 AVX2/AVX-512 with ORT 1.30: see
 * bench/quantize.ts. The pass records what it did in quantize.report['quantize-int4'].
 */
import { DataType } from '../../src/ir/dtype.js';
import type { Graph, Node, Value } from '../../src/ir/graph.js';
import { Tensor } from '../../src/ir/tensor.js';
import type { Pass, PassContext } from '../../src/pass/pass.js';
import { UnsupportedOpError } from '../../src/pass/patch.js';
import { quantizeInt4Blocks, quantizeInt8Blocks } from '../lib/blocks.js';
import { quantizeEmbedding } from '../lib/embedding.js';
import { keptFloat, matchWeighted, MIN_WEIGHT_ELEMENTS, newReport, publish, skip, weightKN, type QuantReport } from './quantize-dynamic.js';

// the block codes moved to passes/lib/blocks.ts; re-exported for the tests and bench scripts that use them
export { dequantizeInt4Blocks, quantizeInt4Blocks, quantizeInt8Blocks, SCALE_SEARCH, type Int4Blocks } from '../lib/blocks.js';

/** MatMulNBits accuracy_level by default: 4 = int8 compute (see the comment above); quantize.accuracyLevel overrides it. */
export const ACCURACY_LEVEL = 4;

/**
 * Which MatMuls get 8-bit weights in int4 mode, within a budget of bytes read per token. 4-bit
 * error grows with the length of the dot product, so the projections with the longest K (an MLP's
 * down-projection, K = 4 x hidden) go first, then the others (largest K, then smallest weight
 * first), for as long as the quantized MatMul weights stay within `budget` x their fp32 bytes
 * (default 0.2: a decode step reads at most a fifth of the fp32 weights). Embedding tables are not
 * in it: a token reads one row of them (see EMBEDDING_BITS). On GPT-2 small, int4 everywhere gives
 * logits at cosine 0.967; with the 8-bit promotions see bench/quantize.ts. `quantize.int8Budget = 0`
 * is pure int4 (embeddings included).
 */
function eightBitNodes(graph: Graph, ctx: PassContext, blockSize: number): Set<Node> {
  const budget = int8Budget(ctx);
  const out = new Set<Node>();
  if (budget <= 0) return out;
  const cands: { node: Node; k: number; n: number }[] = [];
  let used = 0, fp32 = 0;
  for (const node of graph.nodes) {
    if (node.domain !== '' || (node.opType !== 'MatMul' && node.opType !== 'Gemm')) continue;
    const m = matchWeighted(node, ctx, false, () => {});
    if (!m || m.k * m.n < MIN_WEIGHT_ELEMENTS) continue;
    cands.push({ node, k: m.k, n: m.n });
    fp32 += m.k * m.n * 4;
    used += (m.k * m.n) / 2 + (Math.ceil(m.k / blockSize) * m.n) * 4;
  }
  cands.sort((x, y) => y.k - x.k || x.k * x.n - y.k * y.n);
  for (const c of cands) {
    const extra = (c.k * c.n) / 2;
    if (used + extra > budget * fp32) continue;
    used += extra;
    out.add(c.node);
  }
  return out;
}

function int8Budget(ctx: PassContext): number {
  return ctx.options.quantize?.int8Budget ?? 0.2;
}

/**
 * Embedding tables (Gather -> GatherBlockQuantized) get 8 bits unless the budget asks for pure int4:
 * a token reads one row of the table, so its precision costs file size, not decode bandwidth, and
 * its error enters every token's residual stream. llama-150m-past (random N(0, 0.02) weights), the
 * prefill test set's logits: cosine 0.9725 with a 4-bit table, 0.9830 with the table left float.
 */
export const EMBEDDING_BITS = 8;

function runOnGraph(graph: Graph, ctx: PassContext, report: QuantReport): number {
  const q = ctx.options.quantize!;
  const blockSize = q.blockSize ?? 32;
  const symmetric = q.symmetric !== false;
  report.blockSize = blockSize;
  report.symmetric = symmetric;
  const accuracyLevel = q.accuracyLevel ?? ACCURACY_LEVEL;
  report.accuracyLevel = accuracyLevel;
  const canMatMul = ctx.supports('com.microsoft', 'MatMulNBits');
  const canGather = ctx.supports('com.microsoft', 'GatherBlockQuantized');
  if (!canMatMul && !canGather) {
    ctx.explain(`target cannot run com.microsoft::MatMulNBits or GatherBlockQuantized`);
    return 0;
  }
  ctx.requireOpset('com.microsoft', 1);
  const eightBit = canMatMul ? eightBitNodes(graph, ctx, blockSize) : new Set();
  report.eightBit = eightBit.size;
  let changes = 0;
  for (const node of graph.nodes) {
    if (node.removed || node.domain !== '') continue;
    const isMM = node.opType === 'MatMul' || node.opType === 'Gemm';
    const isGather = node.opType === 'Gather';
    if (!isMM && !isGather) continue;
    if (isGather) {
      if (!canGather) continue;
      const bits = int8Budget(ctx) > 0 ? EMBEDDING_BITS : 4;
      const r = quantizeEmbedding(graph, node, ctx, { bits, blockSize, symmetric }, report);
      if (r === 'stop') break;
      changes += r;
      continue;
    }
    if (!canMatMul) continue;
    const m = matchWeighted(node, ctx, false, (msg) => ctx.explain(msg));
    if (!m) { skip(report, 'no constant float32 2-D weight'); continue; }
    if (keptFloat(node, q.keepFloat)) { skip(report, 'keepFloat'); continue; }
    if (m.k * m.n < MIN_WEIGHT_ELEMENTS) {
      ctx.explain(`${node}: weight ${m.k}x${m.n} < ${MIN_WEIGHT_ELEMENTS} elements: left float`);
      skip(report, `weight < ${MIN_WEIGHT_ELEMENTS} elements`);
      continue;
    }
    if (!ctx.allowRewrite(`quantize-int4 at ${node}`)) break;
    const { w, k, n } = weightKN(m.weight.initializer!, m.transB);
    const bits = eightBit.has(node) ? 8 : 4;
    const qb = bits === 8
      ? quantizeInt8Blocks((col, kk) => w[kk * n + col]!, k, n, blockSize)
      : quantizeInt4Blocks((col, kk) => w[kk * n + col]!, k, n, blockSize, symmetric);
    if (m.alpha !== 1) for (let i = 0; i < qb.scales.length; i++) qb.scales[i] = qb.scales[i]! * m.alpha;
    const patch = ctx.patch(graph);
    const base = m.weight.name;
    const bq = patch.constant(Tensor.fromTypedArray(DataType.UINT8, [n, qb.nBlocks, (blockSize * bits) / 8], qb.packed), `${base}_q${bits}`);
    const scales = patch.constant(Tensor.float32(qb.scales, [n * qb.nBlocks]), `${base}_scales`);
    const zp = qb.zeroPoints ? patch.constant(Tensor.fromTypedArray(DataType.UINT8, [qb.zeroPoints.length], qb.zeroPoints), `${base}_zero_points`) : undefined;
    const bias = m.bias ? patch.constant(Tensor.float32(m.bias, [n]), `${base}_bias`) : undefined;
    let y: Value;
    try {
      const inputs: (Value | undefined)[] = [m.a, bq, scales, zp];
      if (bias) inputs.push(undefined, bias);
      y = patch.add('MatMulNBits', inputs, { K: k, N: n, bits, block_size: blockSize, accuracy_level: accuracyLevel }, { domain: 'com.microsoft', name: `${node.name || node.opType}_q${bits}` });
      if (m.addC) y = patch.add('Add', [y, m.addC]);
    } catch (err) {
      if (!(err instanceof UnsupportedOpError)) throw err;
      skip(report, 'target cannot run the quantized ops');
      continue;
    }
    patch.replace(m.last.outputs[0]!, y);
    changes += patch.commit();
    report.quantized++;
    report.nodes.push(node.name);
    report.weightBytesBefore += k * n * 4;
    report.weightBytesAfter += qb.packed.length + qb.scales.length * 4 + (qb.zeroPoints?.length ?? 0);
  }
  return changes;
}

export const quantizeInt4: Pass = {
  name: 'quantize-int4',
  description: 'block-wise 4-bit weights: MatMul/Gemm with constant weights -> MatMulNBits, embedding Gathers -> GatherBlockQuantized',
  level: 3,
  // main graph only: weights live there; a loop body's MatMul stays float (see quantize-dynamic)
  subgraphs: 'skip',
  emits: ['com.microsoft::MatMulNBits'],
  run(graph, ctx) {
    if (ctx.options.quantize?.mode !== 'int4') return 0;
    const report = newReport({ mode: 'int4', minWeightElements: MIN_WEIGHT_ELEMENTS, embeddings: 0 });
    const changes = runOnGraph(graph, ctx, report);
    publish(ctx, 'quantize-int4', report);
    return changes;
  },
};
