/**
 * Casts at a graph's interface, written through a Patch: an input its users read as another element
 * type, an output returned as another under its own name. widen-to-float32 keeps a model's
 * half-precision interface with them; validation (src/bench/interface.ts) gives a compiled copy the
 * original's interface with them.
 */
import { attr } from '../ir/attribute.js';
import { DataType } from '../ir/dtype.js';
import type { Value } from '../ir/graph.js';
import type { Patch } from './patch.js';

const F32 = DataType.FLOAT;

/**
 * Make `v` (a graph input of `patch`'s graph, used by nodes) read as `elemType` by its users: a Cast
 * after it, every use moved to the Cast (an input that is also an output stays one). Returns the Cast's output.
 */
export function castUses(patch: Patch, v: Value, elemType: number): Value {
  const to = elemType === F32 ? 'float32' : 'half';
  const out = patch.insertAfter(v, 'Cast', [attr.int('to', elemType)], { name: `${v.name}_to_${to}`, outputNames: [`${v.name}_${to}`] });
  if (v.type?.kind === 'tensor') out.type = { ...v.type, elemType };
  return out;
}

/**
 * Graph output `v` becomes a Cast of `v` to `elemType`, under the output's name (`v` is renamed).
 * Returns the new output value.
 */
export function castOutput(patch: Patch, v: Value, elemType: number): Value {
  const name = v.name;
  const out = patch.add('Cast', [v], [attr.int('to', elemType)], { name: `${name}_cast`, outputNames: [`${name}_cast`] });
  patch.replaceOutput(v, out, { renameFrom: `${name}_${elemType === F32 ? 'half' : 'float32'}` });
  if (v.type?.kind === 'tensor') out.type = { ...v.type, elemType };
  return out;
}
