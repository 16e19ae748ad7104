/**
 * The registry of built-in targets (explicit list). `host` is not here: it is chosen at run time
 * from the machine's CPU (src/node/host.ts). Plugins may add targets.
 */
import type { Target } from '../src/target.js';
import { arm64 } from './arm64.js';
import { cuda } from './cuda.js';
import { portable } from './portable.js';
import { tensorrt } from './tensorrt.js';
import { wasm } from './wasm.js';
import { webgpu } from './webgpu.js';
import { x86Avx2 } from './x86-avx2.js';
import { x86Avx512 } from './x86-avx512.js';
import { x86Vnni } from './x86-vnni.js';

export const TARGETS: readonly Target[] = [portable, x86Avx2, x86Avx512, x86Vnni, arm64, cuda, tensorrt, webgpu, wasm];

export function findTarget(name: string, extra: readonly Target[] = []): Target | undefined {
  return [...extra, ...TARGETS].find((t) => t.name === name);
}
