/**
 * The table in passes/README.md, made from the registry and the targets' pipelines: which folder
 * holds each pass, its level, and which targets (or --quantize modes) run it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { PASSES } from '../../passes/index.js';
import { QUANTIZE_STAGES } from '../../targets/lib/pipelines.js';
import { TARGETS } from '../../targets/index.js';
import type { PipelineSpec, Target } from '../../src/target.js';

export const PASSES_DIR = path.resolve(import.meta.dirname, '../../passes');
export const GROUPS = ['precision', 'lower', 'cleanup', 'fold', 'fuse', 'layout', 'quantize'] as const;

/** pass name -> the folder its file is in */
export function folders(): Map<string, string> {
  const out = new Map<string, string>();
  for (const g of GROUPS) for (const f of fs.readdirSync(path.join(PASSES_DIR, g))) if (f.endsWith('.ts')) out.set(f.slice(0, -3), g);
  return out;
}

const steps = (t: Target): string[] => (t.pipeline as PipelineSpec[]).flatMap((s) => (typeof s === 'string' ? [s] : s.fixedPoint));

export function passMap(): string {
  const where = folders();
  const rows = [...PASSES]
    .sort((a, b) => GROUPS.indexOf(where.get(a.name) as typeof GROUPS[number]) - GROUPS.indexOf(where.get(b.name) as typeof GROUPS[number]) || a.name.localeCompare(b.name))
    .map((p) => {
      const ts = TARGETS.filter((t) => steps(t).includes(p.name)).map((t) => t.name);
      const modes = Object.entries(QUANTIZE_STAGES).filter(([, s]) => s.pass === p.name).map(([m]) => `--quantize ${m}`);
      const who = [ts.length === TARGETS.length ? 'every target' : ts.join(', '), ...modes].filter(Boolean).join('; ');
      return `| ${where.get(p.name) ?? '?'}/ | \`${p.name}\` | ${p.level} | ${who} |`;
    });
  return ['| folder | pass | level | run by |', '|---|---|---|---|', ...rows].join('\n');
}
