/**
 * passes/README.md's map cannot go stale: its table is the one the registry and the pipelines make
 * (UPDATE_PASS_MAP=1 rewrites it), and every file in a pass folder is a registered pass.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { PASSES } from '../../passes/index.js';
import { folders, passMap, PASSES_DIR } from '../helpers/pass-map.js';

const README = path.join(PASSES_DIR, 'README.md');
const BEGIN = '<!-- pass-map: begin (test/passes/pass-map.test.ts) -->';
const END = '<!-- pass-map: end -->';

describe('passes/README.md', () => {
  test('its table is the registry and the pipelines', () => {
    const text = fs.readFileSync(README, 'utf8');
    const [head, rest] = text.split(BEGIN);
    const [, tail] = rest!.split(END);
    const want = `${head}${BEGIN}\n${passMap()}\n${END}${tail}`;
    if (process.env.UPDATE_PASS_MAP) fs.writeFileSync(README, want);
    expect(text).toBe(want);
  });

  test('one pass per file: every file in a pass folder is a registered pass, and every pass has its file', () => {
    const files = [...folders().keys()].sort();
    // apply-input-layout is made per call from --input-layout (not in the registry)
    expect(files.filter((f) => f !== 'apply-input-layout')).toEqual(PASSES.map((p) => p.name).sort());
  });
});
