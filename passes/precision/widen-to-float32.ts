/**
 * widen-to-float32 (level 3; precision family; in the pipelines of targets without fast float16 compute)
 *
 * Before:  a model that computes in float16 (or bfloat16), as a GPU export leaves it: half-precision
 *          initializers and Constant / ConstantOfShape tensors, Casts to float16, float16 inputs and outputs
 * After:   the same model computing in float32: initializers and Constant / ConstantOfShape tensors
 *          converted once, here (exactly: every float16 and bfloat16 number is a float32); Cast `to`
 *          and the dtype attributes of EyeLike / Random* / Bernoulli / window ops / DequantizeLinear
 *          retargeted to float32; every half-precision value typed float32. The model's inputs and
 *          outputs keep their types, with one Cast at each (names kept), unless ctx.options.ioType is
 *          'float32', which changes them too.
 * Why:     ONNX Runtime's CPU EP (x86, arm64 as its kernel table lists it, and the WASM EP, which is the
 *          CPU EP) has float32-only kernels for Conv, MatMul, Relu, ... It still runs a float16 model, by
 *          inserting a Cast pair around every node it lacks a float16 kernel for: paid on every
 *          inference, and every intermediate rounded to float16 between nodes. Converting once at
 *          compile time does neither. Targets that run float16 fast (cuda, tensorrt, webgpu) do not
 *          list this pass; portable keeps the model's own precision.
 * Conditions:
 *   - Nothing to do without a float16 / bfloat16 value, tensor or dtype attribute (explained).
 *   - The whole graph or nothing (a half-converted graph has mismatched types): one allowRewrite per graph.
 *   - Subgraphs and function bodies are converted alike ('recurse'); their inputs and outputs are not
 *     the model's interface and are retyped. Outer values they read are converted in their own graph.
 *   - Values that only compute shapes in float16 (Shape -> Cast(float16) -> ... -> Cast(int64)) become
 *     float32: exact where float16 was, and exact for more sizes.
 *   - A Constant with a sparse_value of a half type is not converted: the graph is left as it is (explained).
 */
import { attrInt, type Attribute } from '../../src/ir/attribute.js';
import { DataType, isHalfFloat } from '../../src/ir/dtype.js';
import type { Graph, Value } from '../../src/ir/graph.js';
import { fromBfloat16Bits, fromFloat16Bits } from '../../src/ir/half.js';
import { Tensor } from '../../src/ir/tensor.js';
import type { ValueType } from '../../src/ir/types.js';
import type { Pass } from '../../src/pass/pass.js';
import { castOutput, castUses } from '../../src/pass/casts.js';
import type { Patch } from '../../src/pass/patch.js';
import { elemTypeOf } from '../lib/query.js';

const F32 = DataType.FLOAT;
const F16 = DataType.FLOAT16;


/** Attributes that name an output element type, by op (default domain). */
const DTYPE_ATTRIBUTES: Record<string, string> = {
  Cast: 'to', EyeLike: 'dtype', RandomNormal: 'dtype', RandomUniform: 'dtype', RandomNormalLike: 'dtype',
  RandomUniformLike: 'dtype', Bernoulli: 'dtype', HannWindow: 'output_datatype', HammingWindow: 'output_datatype',
  BlackmanWindow: 'output_datatype', DequantizeLinear: 'output_dtype',
};

let f16Table: Float32Array | undefined;

/** A float16 or bfloat16 tensor as float32 (exact). */
export function widenTensor(t: Tensor): Tensor {
  const bits = t.toTypedArray() as Uint16Array;
  const out = new Float32Array(bits.length);
  if (t.dataType === F16) {
    if (!f16Table) {
      f16Table = new Float32Array(65536);
      for (let h = 0; h < 65536; h++) f16Table[h] = fromFloat16Bits(h);
    }
    for (let i = 0; i < bits.length; i++) out[i] = f16Table[bits[i]!]!;
  } else {
    for (let i = 0; i < bits.length; i++) out[i] = fromBfloat16Bits(bits[i]!);
  }
  const { segment: _segment, ...extra } = t.extra as Record<string, unknown>;
  return new Tensor(F32, [...t.dims], { kind: 'raw', bytes: new Uint8Array(out.buffer) }, extra, t.name);
}

/** `t` with every half-precision element type made float32; undefined when it has none. */
export function widenType(t: ValueType | undefined): ValueType | undefined {
  if (!t) return undefined;
  switch (t.kind) {
    case 'tensor':
    case 'sparse_tensor':
      return isHalfFloat(t.elemType) ? { ...t, elemType: F32 } : undefined;
    case 'sequence':
    case 'optional': {
      const e = widenType(t.elem);
      return e ? { ...t, elem: e } : undefined;
    }
    case 'map': {
      const v = widenType(t.value);
      return v ? { ...t, value: v } : undefined;
    }
    default:
      return undefined;
  }
}

/** Does this graph (not its subgraphs) hold a half-precision value, tensor or dtype attribute? */
function hasHalf(graph: Graph): boolean {
  for (const v of graph.definedValues()) if (isHalfFloat(v.initializer?.dataType) || widenType(v.type)) return true;
  for (const n of graph.nodes) {
    for (const a of n.attributes.values()) {
      if (a.type === 'tensor' && isHalfFloat(a.value.dataType)) return true;
      if (a.type === 'int' && n.domain === '' && DTYPE_ATTRIBUTES[n.opType] === a.name && isHalfFloat(attrInt(a))) return true;
    }
  }
  return false;
}

export const widenToFloat32: Pass = {
  name: 'widen-to-float32',
  description: 'float16/bfloat16 models compute in float32 (weights converted once), for targets without fast float16 kernels; inputs/outputs keep their types unless --io-type float32',
  level: 3,
  subgraphs: 'recurse',
  emits: ['ai.onnx::Cast'],
  run(graph, ctx) {
    if (!hasHalf(graph)) {
      if (graph === ctx.model.graph) ctx.explain('no float16 or bfloat16 value, tensor or dtype attribute: the model already computes in float32 (or wider)');
      return 0;
    }
    for (const n of graph.nodes) {
      const sparse = n.opType === 'Constant' && n.domain === '' ? n.attr('sparse_value') : undefined;
      if (sparse) {
        ctx.explain(`${n} holds a sparse constant: not converted, so the graph keeps its half-precision types`);
        return 0;
      }
    }
    if (!ctx.allowRewrite(`widen-to-float32: graph '${graph.name}'`)) return 0;
    const main = graph === ctx.model.graph;
    const keepIo = main && ctx.options.ioType !== 'float32';

    // the model's half-precision inputs keep their type (keepIo): their users read a Cast of them
    const pinned = new Set<Value>(keepIo ? graph.inputs.filter((v) => isHalfFloat(elemTypeOf(undefined, v))) : []);
    // the outputs' types before, to cast back to (inferred where the model does not declare them)
    let inferred: ReturnType<typeof ctx.shapes>['types'] | undefined;
    // without shapes, outputs without a declared type become float32
    if (keepIo && graph.outputs.some((v) => elemTypeOf(undefined, v) === undefined)) inferred = ctx.shapesOrExplain()?.types;
    const outputTypes = graph.outputs.map((v) => {
      const t = inferred?.get(v);
      return elemTypeOf(undefined, v) ?? (t?.kind === 'tensor' ? t.elemType : undefined);
    });

    return widenValues(ctx.patch(graph), pinned) + widenNodes(graph) + castInterface(ctx.patch(graph), pinned, keepIo ? outputTypes : undefined);
  },
};

/** Every half-precision value of the patch's graph but `pinned` becomes float32 (initializers converted here, once). */
function widenValues(patch: Patch, pinned: Set<Value>): number {
  let changes = 0;
  for (const v of patch.graph.definedValues()) {
    if (pinned.has(v)) continue;
    if (v.initializer && isHalfFloat(v.initializer.dataType)) {
      const wide = widenTensor(v.initializer);
      patch.setInitializer(v, wide);
      v.type = v.type?.kind === 'tensor' ? { ...v.type, elemType: F32 } : { kind: 'tensor', elemType: F32, shape: [...wide.dims] };
      changes++;
      continue;
    }
    const t = widenType(v.type);
    if (t) { v.type = t; changes++; }
  }
  patch.commit();
  return changes;
}

/** Tensors (Constant, ConstantOfShape) and dtype attributes of the graph's nodes become float32. */
function widenNodes(graph: Graph): number {
  let changes = 0;
  for (const n of graph.nodes) {
      if (n.domain !== '') continue;
      if (n.opType === 'Constant' || n.opType === 'ConstantOfShape') {
        const a = n.attr('value');
        if (a?.type === 'tensor' && isHalfFloat(a.value.dataType)) {
          const next: Attribute = { ...a, value: widenTensor(a.value) };
          n.attributes.set('value', next);
          changes++;
        }
        continue;
      }
      const name = DTYPE_ATTRIBUTES[n.opType];
      const a = name ? n.attr(name) : undefined;
      if (a?.type === 'int' && isHalfFloat(attrInt(a))) {
        n.attributes.set(name!, { ...a, value: F32 });
        changes++;
      }
    }
  return changes;
}

/**
 * The interface: half inputs (`pinned`) read through a Cast to float32, and outputs that were half
 * (`outputTypes`, by slot; none when the interface changes too) cast back to their type.
 */
function castInterface(patch: Patch, pinned: Set<Value>, outputTypes: (number | undefined)[] | undefined): number {
  let changes = 0;
  for (const v of pinned) {
    if (v.uses.length) { castUses(patch, v, F32); changes++; }
  }
  const done = new Set<Value>();
  patch.graph.outputs.forEach((v, i) => {
    const was = outputTypes?.[i];
    if (!isHalfFloat(was) || pinned.has(v) || done.has(v) || (elemTypeOf(undefined, v) ?? F32) === was) return;
    done.add(v);
    castOutput(patch, v, was!);
    changes++;
  });
  patch.commit();
  return changes;
}
