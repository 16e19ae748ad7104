/**
 * The registry of built-in passes: an explicit list, in no particular order (targets decide the
 * order). Plugins add theirs at run time (src/pass/plugins.ts).
 */
import type { Pass } from '../src/pass/pass.js';
import { eliminateIdentity } from './eliminate-identity.js';

export const PASSES: readonly Pass[] = [
  eliminateIdentity,
];

export function findPass(name: string, extra: readonly Pass[] = []): Pass | undefined {
  return [...extra, ...PASSES].find((p) => p.name === name);
}
