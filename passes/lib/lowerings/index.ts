/**
 * The lowerings lower-contrib-ops knows, one per (domain, op): an explicit list, like the pass
 * registry. Each file holds one family.
 */
import { ATTENTION_LOWERINGS } from './attention.js';
import type { Lowering } from './lowering.js';

export const LOWERINGS: readonly Lowering[] = [
  ...ATTENTION_LOWERINGS,
];

const byKey = new Map(LOWERINGS.map((l) => [`${l.domain}::${l.op}`, l]));

/** The lowering for `domain::op`, if there is one. */
export function lowering(domain: string, op: string): Lowering | undefined {
  return byKey.get(`${domain}::${op}`);
}
