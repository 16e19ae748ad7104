/**
 * Input layouts a compiled model was given (`retarget compile --input-layout NHWC`): recorded in its
 * metadata, so that tools feeding it data made for the original (validation, bench) can lay the
 * data out the same way.
 */
import type { Model } from './ir/model.js';
import { type Tensor, transposeTensor } from './ir/tensor.js';

export type InputLayout = 'NHWC' | 'NCHW';

/** Metadata key: JSON { inputName: 'NHWC' | 'NCHW' } of the inputs apply-input-layout changed. */
export const INPUT_LAYOUT_KEY = 'retarget.input_layout';

/** Inputs given a layout by apply-input-layout (from the model's metadata). */
export function appliedInputLayouts(model: Model): Record<string, InputLayout> {
  const text = model.metadata(INPUT_LAYOUT_KEY);
  if (!text) return {};
  try {
    const v = JSON.parse(text) as unknown;
    return v && typeof v === 'object' ? (v as Record<string, InputLayout>) : {};
  } catch {
    return {};
  }
}

/** [N, C, H, W] -> [N, H, W, C], any fixed-width element type of 8 bits or more. */
export function toChannelsLast(t: Tensor): Tensor {
  const out = t.dims.length === 4 ? transposeTensor(t, [0, 2, 3, 1]) : undefined;
  if (!out) throw new Error(`toChannelsLast: cannot transpose a rank-${t.dims.length} ${t.dataType} tensor`);
  return out;
}

/**
 * Feeds made for the original model, laid out as `model`'s inputs expect (NHWC where its metadata
 * says so). A feed that already fits the input's shape (data given channels-last) is left as it is;
 * one is transposed only when it does not fit and its channels-last form does.
 */
export function feedsForLayouts(model: Model, feeds: Record<string, Tensor>): Record<string, Tensor> {
  const layouts = appliedInputLayouts(model);
  const out = { ...feeds };
  for (const [name, layout] of Object.entries(layouts)) {
    const t = out[name];
    if (layout !== 'NHWC' || !t || t.dims.length !== 4) continue;
    const v = model.graph.inputs.find((x) => x.name === name);
    const shape = v?.type?.kind === 'tensor' ? v.type.shape : undefined;
    const fits = (dims: readonly number[]): boolean =>
      !shape || (shape.length === dims.length && shape.every((d, i) => typeof d !== 'number' || d === dims[i]));
    const [n, c, h, w] = t.dims as [number, number, number, number];
    if (!fits(t.dims) && fits([n, h, w, c])) out[name] = toChannelsLast(t);
    else if (!shape) out[name] = toChannelsLast(t);
  }
  return out;
}
