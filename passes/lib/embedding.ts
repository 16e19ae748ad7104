/**
 * Embedding tables stored in blocks: e = Gather(E, ids) with E a constant float32 [V, D] table
 * (axis 0) -> com.microsoft::GatherBlockQuantized(Eq, ids, scales, [zero_points]), blocks along D
 * (quantize_axis 1), bits 4 or 8. Used by quantize-int4 and quantize-dynamic: a token reads one row
 * of the table, so its precision costs file size, not decode bandwidth.
 * Layout (uint8 data, as MatMulNBits' B with N = V): rows packed [V, D * bits / 8], scales
 * [V, D / block_size], zero points (4 bits, asymmetric only) [V, ceil(n_blocks / 2)]; without them
 * the zero point is 2^(bits - 1).
 */
import { DataType } from '../../src/ir/dtype.js';
import type { Graph, Node } from '../../src/ir/graph.js';
import { Tensor } from '../../src/ir/tensor.js';
import type { PassContext } from '../../src/pass/pass.js';
import { UnsupportedOpError } from '../../src/pass/patch.js';
import { floatConstant, intAttr, keptFloat, MIN_WEIGHT_ELEMENTS, skip, type QuantReport } from '../quantize/quantize-dynamic.js';
import { quantizeInt4Blocks, quantizeInt8Blocks } from './blocks.js';

export interface EmbeddingCodes { bits: 4 | 8; blockSize: number; symmetric: boolean }

/**
 * Rewrite one Gather of a constant table; returns the changes made (0 when it does not apply, with
 * the reason in the report) or 'stop' when the rewrite budget (--stop-after-rewrites) is spent.
 */
export function quantizeEmbedding(graph: Graph, node: Node, ctx: PassContext, codes: EmbeddingCodes, report: QuantReport): number | 'stop' {
  const { bits, blockSize, symmetric } = codes;
  const table = floatConstant(node.inputs[0]);
  if (!table || table.dims.length !== 2 || intAttr(node, 'axis', 0) !== 0) return 0;
  const [v, d] = table.dims as [number, number];
  if (v * d < MIN_WEIGHT_ELEMENTS || d < 16) return 0;
  if (keptFloat(node, ctx.options.quantize?.keepFloat)) { skip(report, 'keepFloat'); return 0; }
  if (d % blockSize !== 0) {
    // the kernel derives the row length from the packed width: a padded row would be longer than D
    skip(report, 'embedding width not a multiple of the block size');
    return 0;
  }
  if (!ctx.allowRewrite(`${report.mode} embedding at ${node}`)) return 'stop';
  const e = table.toTypedArray() as Float32Array;
  const qb = bits === 8
    ? quantizeInt8Blocks((row, kk) => e[row * d + kk]!, d, v, blockSize)
    : quantizeInt4Blocks((row, kk) => e[row * d + kk]!, d, v, blockSize, symmetric);
  const patch = ctx.patch(graph);
  const base = node.inputs[0]!.name;
  try {
    const data = patch.constant(Tensor.fromTypedArray(DataType.UINT8, [v, (d * bits) / 8], qb.packed), `${base}_q${bits}`);
    const scales = patch.constant(Tensor.float32(qb.scales, [v, qb.nBlocks]), `${base}_scales`);
    const zp = qb.zeroPoints ? patch.constant(Tensor.fromTypedArray(DataType.UINT8, [v, Math.ceil(qb.nBlocks / 2)], qb.zeroPoints), `${base}_zero_points`) : undefined;
    const y = patch.add('GatherBlockQuantized', [data, node.inputs[1], scales, zp], { bits, block_size: blockSize, gather_axis: 0, quantize_axis: 1 }, { domain: 'com.microsoft', name: `${node.name || 'Gather'}_q${bits}` });
    patch.replace(node.outputs[0]!, y);
  } catch (err) {
    patch.abort();
    if (!(err instanceof UnsupportedOpError)) throw err;
    skip(report, 'target cannot run GatherBlockQuantized');
    return 0;
  }
  const changes = patch.commit();
  report.embeddings = ((report.embeddings as number | undefined) ?? 0) + 1;
  report.nodes.push(node.name);
  report.weightBytesBefore += v * d * 4;
  report.weightBytesAfter += qb.packed.length + qb.scales.length * 4 + (qb.zeroPoints?.length ?? 0);
  return changes;
}
