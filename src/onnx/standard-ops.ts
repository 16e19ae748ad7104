/**
 * Standard ONNX, for targets without a capability table that promise standard ops only (maxLevel 1:
 * portable). ONNX Runtime registers a few of its own ops in the ONNX domain; they look standard by
 * domain and are not, or not at the model's opset: a portable model holding them loads in ORT only.
 */

/** ORT ops in the ONNX domain, with the opset where ONNX made them standard (undefined: never). */
const ORT_OPS_IN_ONNX_DOMAIN: Record<string, number | undefined> = {
  SimplifiedLayerNormalization: undefined,
  LayerNormalization: 17,
  Gelu: 20,
  RMSNormalization: 23,
};

/** Is `domain::op` standard ONNX at default-domain opset `opset`? */
export function isStandardOp(domain: string, op: string, opset: number): boolean {
  if (domain !== '' && domain !== 'ai.onnx' && domain !== 'ai.onnx.ml') return false;
  if (domain === 'ai.onnx.ml' || !(op in ORT_OPS_IN_ONNX_DOMAIN)) return true;
  const since = ORT_OPS_IN_ONNX_DOMAIN[op];
  return since !== undefined && opset >= since;
}
