import { modelFromProto } from './from-proto.js';
import type { Model } from './model.js';
import { modelToProto } from './to-proto.js';

/**
 * A deep copy of a model (graphs, nodes, values, attributes). Tensor data is shared: it is
 * immutable, so sharing is safe and a 500 MB model is not copied.
 */
export function cloneModel(m: Model): Model {
  return modelFromProto(modelToProto(m));
}
