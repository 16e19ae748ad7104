/** What a fusion asks of the target beyond an op name (Patch checks names only). */
import { dataTypeName } from '../../../src/ir/dtype.js';
import type { PassContext } from '../../../src/pass/pass.js';

/**
 * Whether the target's own kernel table takes `domain::Op` with first-input element type `elemType`
 * (true without a target or table; a type list of null takes any type). A kernel only the CPU
 * fallback has (ORT CUDA's float32 GroupQueryAttention) does not count: it would run on the CPU.
 */
export function targetTakesType(ctx: PassContext, key: string, elemType: number): boolean {
  const caps = ctx.options.target?.capabilities;
  if (!caps) return true;
  const ranges = caps.kernels[key];
  if (!ranges) return false;
  return ranges.some((r) => r[2] === null || r[2].includes(dataTypeName(elemType)));
}
