/**
 * The interface a compiled model is validated through: a compiled model whose inputs or outputs
 * changed float type (--io-type float32, --fp16-io) is run on the original's inputs and compared
 * with its outputs behind Casts that give it the original's interface. Used by `compile`'s
 * validation (src/cli/compile-command.ts) and the playground's worker (web/worker.ts).
 */
import { elemTypeOf } from '../analysis/query.js';
import { DataType } from '../ir/dtype.js';
import type { Value } from '../ir/graph.js';
import type { Model } from '../ir/model.js';
import { castOutput, castUses } from '../pass/casts.js';
import { Patch } from '../pass/patch.js';

/**
 * A copy of `model` that takes and returns the element types `reference` does, through Casts at the
 * interface (names kept), where the two differ between float types: how a model compiled with
 * --io-type float32 (or --fp16-io) is run on the original's inputs and compared with its outputs.
 * undefined when the interfaces already agree.
 */
export function withInterfaceOf(model: Model, reference: Model, clone: (m: Model) => Model): Model | undefined {
  const floats = new Set<number | undefined>([DataType.FLOAT, DataType.FLOAT16, DataType.BFLOAT16, DataType.DOUBLE]);
  const want = (vs: Value[]): Map<string, number> => new Map(vs.map((v) => [v.name, elemTypeOf(undefined, v)]).filter((e): e is [string, number] => e[1] !== undefined));
  const refIn = want(reference.graph.inputs), refOut = want(reference.graph.outputs);
  const differs = (v: Value, ref: Map<string, number>): number | undefined => {
    const t = elemTypeOf(undefined, v), r = ref.get(v.name);
    return t !== r && floats.has(t) && floats.has(r) ? r : undefined;
  };
  if (!model.graph.inputs.some((v) => differs(v, refIn) !== undefined) && !model.graph.outputs.some((v) => differs(v, refOut) !== undefined)) return undefined;
  const copy = clone(model);
  const g = copy.graph;
  // not a pass (validation adapts a copy, for no target): a Patch of its own, no target to check
  const patch = new Patch(g);
  for (const v of g.inputs) {
    const r = differs(v, refIn);
    if (r === undefined || v.type?.kind !== 'tensor') continue;
    const own = v.type.elemType;
    v.type = { ...v.type, elemType: r };
    if (v.uses.length) castUses(patch, v, own);
  }
  const done = new Set<Value>();
  g.outputs.forEach((v) => {
    const r = differs(v, refOut);
    if (r !== undefined && !done.has(v)) { done.add(v); castOutput(patch, v, r); }
  });
  patch.commit();
  g.toposort();
  return copy;
}
