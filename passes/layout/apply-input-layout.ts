/**
 * apply-input-layout  (made by inputLayoutPass(layouts); `retarget compile --input-layout NHWC`)
 *
 * Before:  input x: [N, C, H, W];  ... = Op(x)
 * After:   input x: [N, H, W, C];  x_nchw = Transpose(x, perm=[0, 3, 1, 2]);  ... = Op(x_nchw)
 *          then propagate-transposes sinks that Transpose as far as it goes (through Relu, Add of a
 *          constant, ...; it stops at Conv, which the NCHW-preferring CPU EP wants anyway)
 * Conditions: the named inputs (or, for the key '*', every 4-D floating-point input) are 4-D
 *   tensors of the main graph, not graph outputs themselves. 'NCHW' leaves an input as it is.
 *   The model's metadata records what was changed (key `retarget.input_layout`), so running the
 *   pass again, or compiling the compiled model again with the same flag, changes nothing more.
 *   The model's interface changes on purpose: validation and bench transpose the original's feeds
 *   for it (src/layout.ts, from that metadata).
 * subgraphs: 'skip': only the main graph has the model's inputs.
 */
import { attr } from '../../src/ir/attribute.js';
import { DataType } from '../../src/ir/dtype.js';
import type { Value } from '../../src/ir/graph.js';
import type { Patch } from '../../src/pass/patch.js';
import type { Pass, PassContext } from '../../src/pass/pass.js';
import { propagateTransposes } from './propagate-transposes.js';
import { appliedInputLayouts, INPUT_LAYOUT_KEY, type InputLayout } from '../../src/layout.js';

export { appliedInputLayouts, INPUT_LAYOUT_KEY, type InputLayout };

const FLOATS = new Set<number>([DataType.FLOAT, DataType.FLOAT16, DataType.BFLOAT16, DataType.DOUBLE]);

/** Input `v` becomes channels-last; its readers (nodes and subgraphs returning it) read a Transpose back to NCHW. */
function channelsLast(patch: Patch, v: Value): void {
  const t = v.type;
  if (t?.kind !== 'tensor' || !t.shape) throw new Error(`input '${v.name}' has no shape`);
  const nchw = { ...t, shape: [...t.shape], ...(t.dimDenotations ? { dimDenotations: [...t.dimDenotations] } : {}) };
  const toNhwc = <T>(a: T[]): T[] => [a[0]!, a[2]!, a[3]!, a[1]!];
  v.type = { ...t, shape: toNhwc(t.shape), ...(t.dimDenotations ? { dimDenotations: toNhwc(t.dimDenotations) } : {}) };
  const out = patch.insertAfter(v, 'Transpose', [attr.ints('perm', [0, 3, 1, 2])], { name: `${v.name}_to_nchw`, outputNames: [`${v.name}_nchw`] });
  out.type = nchw;
}

/**
 * A pass that feeds the given inputs channels-last: `{ image: 'NHWC' }`, or `{ '*': 'NHWC' }` for
 * every 4-D floating-point input. Level 1 (standard ops only).
 */
export function inputLayoutPass(layouts: Record<string, InputLayout>): Pass {
  return {
    name: 'apply-input-layout',
    description: 'feed 4-D image inputs channels-last (NHWC): change the input type and transpose it back inside the model',
    level: 1,
    subgraphs: 'skip',
    async run(graph, ctx: PassContext) {
      const model = ctx.model;
      if (graph !== model.graph) return 0;
      const applied = appliedInputLayouts(model);
      const inputs = graph.inputs.filter((v) => !v.initializer);
      for (const name of Object.keys(layouts)) {
        if (name !== '*' && !inputs.some((v) => v.name === name)) {
          throw new Error(`--input-layout: the model has no input '${name}' (inputs: ${inputs.map((v) => v.name).join(', ')})`);
        }
      }
      let changes = 0;
      const patch = ctx.patch(graph);
      for (const v of inputs) {
        const named = layouts[v.name];
        const layout = named ?? layouts['*'];
        if (layout !== 'NHWC') continue;
        if (applied[v.name] === 'NHWC') {
          ctx.explain(`input '${v.name}' is already channels-last`);
          continue;
        }
        const t = v.type;
        const rank4 = t?.kind === 'tensor' && t.shape?.length === 4;
        if (!rank4 || !FLOATS.has(t.elemType)) {
          if (named) throw new Error(`--input-layout: input '${v.name}' is not a 4-D floating-point tensor`);
          ctx.explain(`input '${v.name}' is not a 4-D floating-point tensor: left as it is`);
          continue;
        }
        if (v.isGraphOutput) {
          if (named) throw new Error(`--input-layout: input '${v.name}' is also a graph output`);
          ctx.explain(`input '${v.name}' is also a graph output: left as it is`);
          continue;
        }
        if (!ctx.allowRewrite(`apply-input-layout: '${v.name}' NCHW -> NHWC`)) break;
        channelsLast(patch, v);
        applied[v.name] = 'NHWC';
        changes++;
      }
      patch.commit();
      if (changes === 0) return 0;
      model.setMetadata(INPUT_LAYOUT_KEY, JSON.stringify(applied));
      ctx.invalidate();
      graph.toposort();
      // sink the new Transposes now, so the result does not depend on the target's pipeline
      changes += await propagateTransposes.run(graph, ctx);
      return changes;
    },
  };
}
