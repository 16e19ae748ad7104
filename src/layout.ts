/**
 * Input layouts a compiled model was given (`retarget compile --input-layout NHWC`): recorded in its
 * metadata, so that tools feeding it data made for the original (validation, bench) can lay the
 * data out the same way.
 */
import type { Model } from './ir/model.js';
import { Tensor } from './ir/tensor.js';

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

/** [N, C, H, W] -> [N, H, W, C], any fixed-size element type (moves whole elements as bytes). */
export function toChannelsLast(t: Tensor): Tensor {
  if (t.dims.length !== 4) throw new Error(`toChannelsLast: rank ${t.dims.length}, expected 4`);
  const [n, c, h, w] = t.dims as [number, number, number, number];
  const src = t.rawBytes();
  const count = n * c * h * w;
  const size = count ? src.length / count : 1;
  const out = new Uint8Array(src.length);
  for (let b = 0; b < n; b++) {
    for (let ch = 0; ch < c; ch++) {
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++) {
          const from = (((b * c + ch) * h + y) * w + x) * size;
          const to = (((b * h + y) * w + x) * c + ch) * size;
          out.set(src.subarray(from, from + size), to);
        }
      }
    }
  }
  return Tensor.fromRaw(t.dataType, [n, h, w, c], out);
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
