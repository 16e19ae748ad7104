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
import { DataType } from '../src/ir/dtype.js';
import type { Graph, Node, Value } from '../src/ir/graph.js';
import { Tensor } from '../src/ir/tensor.js';
import type { Pass, PassContext } from '../src/pass/pass.js';
import { UnsupportedOpError } from '../src/pass/patch.js';
import { floatConstant, intAttr, keptFloat, matchWeighted, MIN_WEIGHT_ELEMENTS, newReport, publish, skip, weightKN, type QuantReport } from './quantize-dynamic.js';

/** MatMulNBits accuracy_level by default: 4 = int8 compute (see the comment above); quantize.accuracyLevel overrides it. */
export const ACCURACY_LEVEL = 4;

/**
 * Symmetric scales tried per block, as fractions of max|w| / 8: the one with the least squared error
 * wins (ties: the first). A data-free improvement on plain round-to-nearest (as llama.cpp's and
 * ORT's newer quantizers do), measured on GPT-2 small: see bench/quantize.ts.
 */
export const SCALE_SEARCH = [1, 0.95, 0.9, 0.85, 0.8, 0.75];

export interface Int4Blocks {
  /** [N, nBlocks, blockSize / 2] packed codes */
  packed: Uint8Array;
  /** [N * nBlocks] */
  scales: Float32Array;
  /** [N * ceil(nBlocks / 2)] packed, only for asymmetric */
  zeroPoints?: Uint8Array;
  nBlocks: number;
}

/**
 * Quantize the columns of a [K, N] matrix given as an accessor (so that [K, N] MatMul weights and
 * [V, D] embedding rows share the code): `at(n, k)` is element k of column n.
 */
export function quantizeInt4Blocks(at: (n: number, k: number) => number, k: number, n: number, blockSize: number, symmetric: boolean): Int4Blocks {
  if (blockSize < 16 || (blockSize & (blockSize - 1)) !== 0) throw new Error(`int4 block size ${blockSize}: must be a power of 2, at least 16`);
  const nBlocks = Math.ceil(k / blockSize);
  const blob = blockSize / 2;
  const packed = new Uint8Array(n * nBlocks * blob);
  const scales = new Float32Array(n * nBlocks);
  const zpBytes = Math.ceil(nBlocks / 2);
  const zeroPoints = symmetric ? undefined : new Uint8Array(n * zpBytes);
  const codes = new Uint8Array(blockSize);
  for (let col = 0; col < n; col++) {
    for (let b = 0; b < nBlocks; b++) {
      const k0 = b * blockSize;
      const len = Math.min(blockSize, k - k0);
      let scale: number, zp: number;
      if (symmetric) {
        let m = 0;
        for (let i = 0; i < len; i++) {
          const x = at(col, k0 + i);
          if (Math.abs(x) > Math.abs(m)) m = x;
        }
        // round-to-nearest with the largest value on the grid is not the least-error grid: try
        // shrinking the scale (clipping the largest values a little) and keep the least squared error
        scale = Math.fround(m / -8);
        zp = 8;
        let best = Infinity;
        for (const f of SCALE_SEARCH) {
          const s = Math.fround((m / -8) * f);
          const inv = s !== 0 ? 1 / s : 0;
          let err = 0;
          for (let i = 0; i < len; i++) {
            const x = at(col, k0 + i);
            const c = Math.min(15, Math.max(0, Math.round(x * inv) + 8));
            const d = x - (c - 8) * s;
            err += d * d;
          }
          if (err < best) {
            best = err;
            scale = s;
          }
        }
      } else {
        let lo = 0, hi = 0;
        for (let i = 0; i < len; i++) {
          const x = at(col, k0 + i);
          if (x < lo) lo = x;
          if (x > hi) hi = x;
        }
        scale = hi > lo ? Math.fround((hi - lo) / 15) : 1;
        zp = Math.min(15, Math.max(0, Math.round(-lo / scale)));
      }
      const inv = scale !== 0 ? 1 / scale : 0;
      codes.fill(zp);
      for (let i = 0; i < len; i++) codes[i] = Math.min(15, Math.max(0, Math.round(at(col, k0 + i) * inv) + zp));
      const base = (col * nBlocks + b) * blob;
      for (let j = 0; j < blob; j++) packed[base + j] = (codes[2 * j]! & 0xf) | ((codes[2 * j + 1]! & 0xf) << 4);
      scales[col * nBlocks + b] = scale;
      if (zeroPoints) {
        const idx = col * zpBytes + (b >> 1);
        zeroPoints[idx] = (b & 1) === 0 ? (zeroPoints[idx]! & 0xf0) | zp : (zeroPoints[idx]! & 0x0f) | (zp << 4);
      }
    }
  }
  return { packed, scales, ...(zeroPoints ? { zeroPoints } : {}), nBlocks };
}

/** Dequantize what quantizeInt4Blocks made, back to column accessors' order: out[col * k + kk]. */
export function dequantizeInt4Blocks(q: Int4Blocks, k: number, n: number, blockSize: number): Float32Array {
  const out = new Float32Array(n * k);
  const blob = blockSize / 2;
  const zpBytes = Math.ceil(q.nBlocks / 2);
  for (let col = 0; col < n; col++) {
    for (let kk = 0; kk < k; kk++) {
      const b = Math.floor(kk / blockSize), i = kk % blockSize;
      const byte = q.packed[(col * q.nBlocks + b) * blob + (i >> 1)]!;
      const code = (i & 1) === 0 ? byte & 0xf : byte >> 4;
      const zpByte = q.zeroPoints ? q.zeroPoints[col * zpBytes + (b >> 1)]! : 0x88;
      const zp = (b & 1) === 0 ? zpByte & 0xf : zpByte >> 4;
      out[col * k + kk] = (code - zp) * q.scales[col * q.nBlocks + b]!;
    }
  }
  return out;
}

/**
 * 8-bit blocks for MatMulNBits (bits = 8): symmetric, code = round(w / scale) + 128 with
 * scale = max|w| / 127 per block; no zero points (the default for 8 bits is 128).
 * B is uint8 [N, n_blocks, block_size].
 */
export function quantizeInt8Blocks(at: (n: number, k: number) => number, k: number, n: number, blockSize: number): Int4Blocks {
  const nBlocks = Math.ceil(k / blockSize);
  const packed = new Uint8Array(n * nBlocks * blockSize).fill(128);
  const scales = new Float32Array(n * nBlocks);
  for (let col = 0; col < n; col++) {
    for (let b = 0; b < nBlocks; b++) {
      const k0 = b * blockSize;
      const len = Math.min(blockSize, k - k0);
      let m = 0;
      for (let i = 0; i < len; i++) m = Math.max(m, Math.abs(at(col, k0 + i)));
      const s = Math.fround(m / 127);
      scales[col * nBlocks + b] = s;
      const inv = s !== 0 ? 1 / s : 0;
      const base = (col * nBlocks + b) * blockSize;
      for (let i = 0; i < len; i++) packed[base + i] = Math.min(255, Math.max(1, Math.round(at(col, k0 + i) * inv) + 128));
    }
  }
  return { packed, scales, nBlocks };
}

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
      const table = floatConstant(node.inputs[0]);
      if (!canGather || !table || table.dims.length !== 2 || intAttr(node, 'axis', 0) !== 0) continue;
      const [v, d] = table.dims as [number, number];
      if (v * d < MIN_WEIGHT_ELEMENTS || d < 16) continue;
      if (keptFloat(node, q.keepFloat)) { skip(report, 'keepFloat'); continue; }
      if (d % blockSize !== 0) {
        // the kernel derives the row length from the packed width: a padded row would be longer than D
        skip(report, 'embedding width not a multiple of the block size');
        continue;
      }
      if (!ctx.allowRewrite(`quantize-int4 at ${node}`)) break;
      const e = table.toTypedArray() as Float32Array;
      const bits = int8Budget(ctx) > 0 ? EMBEDDING_BITS : 4;
      const qb = bits === 8
        ? quantizeInt8Blocks((row, kk) => e[row * d + kk]!, d, v, blockSize)
        : quantizeInt4Blocks((row, kk) => e[row * d + kk]!, d, v, blockSize, symmetric);
      const patch = ctx.patch(graph);
      const base = node.inputs[0]!.name;
      const data = patch.constant(Tensor.fromTypedArray(DataType.UINT8, [v, (d * bits) / 8], qb.packed), `${base}_q${bits}`);
      const scales = patch.constant(Tensor.float32(qb.scales, [v, qb.nBlocks]), `${base}_scales`);
      const zp = qb.zeroPoints ? patch.constant(Tensor.fromTypedArray(DataType.UINT8, [v, Math.ceil(qb.nBlocks / 2)], qb.zeroPoints), `${base}_zero_points`) : undefined;
      try {
        const y = patch.add('GatherBlockQuantized', [data, node.inputs[1], scales, zp], { bits, block_size: blockSize, gather_axis: 0, quantize_axis: 1 }, { domain: 'com.microsoft', name: `${node.name || 'Gather'}_q${bits}` });
        patch.replace(node.outputs[0]!, y);
      } catch (err) {
        if (!(err instanceof UnsupportedOpError)) throw err;
        skip(report, 'target cannot run GatherBlockQuantized');
        continue;
      }
      changes += patch.commit();
      report.embeddings = ((report.embeddings as number | undefined) ?? 0) + 1;
      report.nodes.push(node.name);
      report.weightBytesBefore += v * d * 4;
      report.weightBytesAfter += qb.packed.length + qb.scales.length * 4 + (qb.zeroPoints?.length ?? 0);
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
