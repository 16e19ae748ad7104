/**
 * Plugins: a user's ESM module that exports passes (and targets) with the same interfaces our own
 * use. Accepted shapes: `export const passes = [...]`, `export const targets = [...]`, a default
 * export `{ passes, targets }`, or named exports that are passes or targets themselves.
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Pass } from '../pass/pass.js';
import type { Target } from '../target.js';

export class PluginError extends Error {}

export interface Plugin { file: string; passes: Pass[]; targets: Target[] }

function isPass(x: unknown): x is Pass {
  const p = x as Pass;
  return !!p && typeof p === 'object' && typeof p.name === 'string' && typeof p.run === 'function';
}

function isTarget(x: unknown): x is Target {
  const t = x as Target;
  return !!t && typeof t === 'object' && typeof t.name === 'string' && Array.isArray(t.pipeline);
}

function checkPass(p: Pass, file: string): Pass {
  const problems: string[] = [];
  if (!/^[a-z0-9][a-z0-9-]*$/.test(p.name)) problems.push('a kebab-case name');
  if (![1, 2, 3].includes(p.level)) problems.push('level 1, 2 or 3');
  if (!['recurse', 'skip', 'self'].includes(p.subgraphs)) problems.push("subgraphs: 'recurse' | 'skip' | 'self'");
  if (typeof p.description !== 'string') problems.push('a description');
  if (problems.length) throw new PluginError(`${file}: pass '${p.name}' needs ${problems.join(', ')}`);
  return p;
}

export async function loadPlugin(file: string): Promise<Plugin> {
  const url = pathToFileURL(path.resolve(file)).href;
  let mod: Record<string, unknown>;
  try {
    mod = (await import(url)) as Record<string, unknown>;
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes(path.resolve(file))) throw new PluginError(`${file}: no such plugin file`);
    throw new PluginError(`${file}: cannot load plugin: ${String(err.message).split('\n')[0]}`);
  }
  const sources: unknown[] = [];
  const def = mod.default as Record<string, unknown> | undefined;
  for (const m of [mod, def && typeof def === 'object' ? def : {}]) {
    for (const [k, val] of Object.entries(m)) {
      if (k === 'default') continue;
      if ((k === 'passes' || k === 'targets') && Array.isArray(val)) sources.push(...val);
      else sources.push(val);
    }
  }
  const passes = [...new Set(sources.filter(isPass))].map((p) => checkPass(p, file));
  const targets = [...new Set(sources.filter(isTarget))];
  if (passes.length === 0 && targets.length === 0) throw new PluginError(`${file}: exports no passes or targets`);
  return { file, passes, targets };
}
