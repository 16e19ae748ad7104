/**
 * The lowerings lower-contrib-ops knows, one per (domain, op): an explicit list, like the pass
 * registry. Each file holds one family.
 */
import { ATTENTION_LOWERINGS } from './attention.js';
import { ACTIVATION_LOWERINGS } from './activation.js';
import { CONV_LOWERINGS } from './conv.js';
import type { Lowering } from './lowering.js';
import { NORM_LOWERINGS } from './norm.js';
import { QLINEAR_LOWERINGS } from './qlinear.js';
import { QUANTIZED_LOWERINGS } from './quantized.js';

export const LOWERINGS: readonly Lowering[] = [
  ...ACTIVATION_LOWERINGS,
  ...ATTENTION_LOWERINGS,
  ...CONV_LOWERINGS,
  ...NORM_LOWERINGS,
  ...QLINEAR_LOWERINGS,
  ...QUANTIZED_LOWERINGS,
];

const byKey = new Map(LOWERINGS.map((l) => [`${l.domain}::${l.op}`, l]));

/** The lowering for `domain::op`, if there is one. */
export function lowering(domain: string, op: string): Lowering | undefined {
  return byKey.get(`${domain}::${op}`);
}
