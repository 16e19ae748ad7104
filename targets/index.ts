/** The registry of built-in targets (explicit list). Plugins may add more at run time. */
import type { Target } from '../src/target.js';
import { portable } from './portable.js';

export const TARGETS: readonly Target[] = [portable];

export function findTarget(name: string, extra: readonly Target[] = []): Target | undefined {
  return [...extra, ...TARGETS].find((t) => t.name === name);
}
