/** What a fusion asks of the target beyond an op name (Patch checks names only). */
import { dataTypeName } from '../../../src/ir/dtype.js';
import type { PassContext } from '../../../src/pass/pass.js';
import { kernelFor, kernelTakes } from '../../../src/target.js';

/**
 * Whether the target's own kernel table takes `domain::Op` with first-input element type `elemType`
 * (true without a target or table; a type list of null takes any type), at the opset the model
 * imports for the domain (`kernelFor`'s rule). A kernel only the CPU fallback has (ORT CUDA's float32
 * GroupQueryAttention) does not count: it would run on the CPU.
 */
export function targetTakesType(ctx: PassContext, key: string, elemType: number): boolean {
  const caps = ctx.options.target?.capabilities;
  if (!caps) return true;
  const [domain, op] = key.split('::') as [string, string];
  const row = kernelFor(caps, op, domain, ctx.model.opsetVersion(domain));
  return row !== undefined && kernelTakes(row, dataTypeName(elemType));
}
