/** `--dim batch=1,seq=64` (repeatable) -> { batch: 1, seq: 64 } */
import { UsageError } from '../errors.js';

/** A --dim spec that is not NAME=SIZE: a usage error. */
export class DimSpecError extends UsageError {}

export function parseDims(specs: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const spec of specs) {
    for (const part of spec.split(',')) {
      const m = /^\s*([^=\s]+)\s*=\s*(\d+)\s*$/.exec(part);
      if (!m) throw new DimSpecError(`--dim: '${part}' is not NAME=SIZE (e.g. batch=1,seq=64)`);
      const n = Number(m[2]);
      if (!Number.isSafeInteger(n)) throw new DimSpecError(`--dim: size of '${m[1]}' is too large`);
      out[m[1]!] = n;
    }
  }
  return out;
}
