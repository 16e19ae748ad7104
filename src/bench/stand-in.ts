/**
 * CPU stand-ins for ops only a GPU runtime has.
 *
 * A model compiled for a GPU target may hold ops the CPU runtime that validates it has no kernel
 * for, although their meaning is a composition of standard ops. Validation runs a copy with those
 * ops written as that composition, and says so in its result. The compiled model itself is not
 * touched. Today:
 *
 *   com.microsoft NhwcConv(x, W, B)   (ONNX Runtime's CUDA EP; x and y NHWC, W [M, kH, kW, C/group])
 *   = Transpose(Conv(Transpose(x, [0,3,1,2]), Transpose(W, [0,3,1,2]), B), [0,2,3,1])
 */
import { cloneModel } from '../ir/clone.js';
import type { Model } from '../ir/model.js';
import { Patch } from '../pass/patch.js';
import { Emitter } from '../../passes/lib/emit.js';
import { nhwcConvAsConv } from '../../passes/lib/lowerings/conv.js';

/** Op keys ('domain::op') this module can stand in for. */
export const STAND_INS: readonly string[] = ['com.microsoft::NhwcConv'];

/** The model with every stood-in op rewritten (a copy), and how many of each; the model itself when there are none. */
export function cpuStandIn(model: Model): { model: Model; replaced: Record<string, number> } {
  const has = (m: Model): boolean => m.graph.nodes.some((n) => n.domain === 'com.microsoft' && n.opType === 'NhwcConv');
  if (!has(model)) return { model, replaced: {} };
  const copy = cloneModel(model);
  const g = copy.graph;
  let count = 0;
  for (const n of [...g.nodes]) {
    if (n.removed || n.domain !== 'com.microsoft' || n.opType !== 'NhwcConv') continue;
    const patch = new Patch(g);
    patch.replace(n.outputs[0]!, nhwcConvAsConv(new Emitter(patch, copy.opsetVersion('') ?? 13, n.name || 'NhwcConv'), n));
    patch.commit();
    count++;
  }
  return { model: copy, replaced: { 'com.microsoft::NhwcConv': count } };
}
