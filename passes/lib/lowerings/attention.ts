/**
 * Attention-family contrib ops in standard ONNX: Attention, MultiHeadAttention, GroupQueryAttention,
 * RotaryEmbedding (com.microsoft).
 */
import type { Lowering } from './lowering.js';

export const ATTENTION_LOWERINGS: Lowering[] = [];
