/** compile progress: the PassManager's onProgress callback, and the one-line TTY display the CLI draws from it. */
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { formatElapsed, passProgress } from '../src/bench/format.js';
import { compile } from '../src/compile.js';
import { readModel } from '../src/node/files.js';
import { PassManager } from '../src/pass/manager.js';
import type { Pass } from '../src/pass/pass.js';
import { TARGETS } from '../targets/index.js';

const CNN = path.resolve(import.meta.dirname, '../fixtures/models/cnn-tiny-op13/model.onnx');

describe('PassManager onProgress', () => {
  test('each pass start: its 1-based position, the pipeline length, its name, elapsed ms; fixed-point groups go round', async () => {
    let changesLeft = 1;
    const p = (name: string, run: Pass['run'] = () => 0): Pass => ({ name, description: name, level: 1, subgraphs: 'skip', run });
    // b renames an inner value once (a real change), so the group runs a second round
    const renameOnce: Pass['run'] = (g) => {
      if (changesLeft-- <= 0) return 0;
      const v = g.nodes[0]!.outputs[0]!;
      g.rename(v, `${v.name}_renamed`);
      return 1;
    };
    const steps = [p('a'), { fixedPoint: [p('b', renameOnce), p('c')] }, p('d')];
    const seen: [number, number, string][] = [];
    const elapsed: number[] = [];
    await new PassManager(steps, { onProgress: (i, n, name, ms) => { seen.push([i, n, name]); elapsed.push(ms); } }).run(readModel(CNN).model);
    expect(seen).toEqual([[1, 4, 'a'], [2, 4, 'b'], [3, 4, 'c'], [2, 4, 'b'], [3, 4, 'c'], [4, 4, 'd']]);
    expect(elapsed.every((ms, i) => ms >= 0 && (i === 0 || ms >= elapsed[i - 1]!))).toBe(true);
  });

  test('compile() passes it through: every pass of the target pipeline is announced', async () => {
    const seen: string[] = [];
    let total = 0;
    const report = await compile(readModel(CNN).model, TARGETS.find((t) => t.name === 'portable')!, { onProgress: (_i, n, name) => { seen.push(name); total = n; } });
    expect(new Set(seen)).toEqual(new Set(report.passes.map((s) => s.name)));
    expect(total).toBeGreaterThanOrEqual(new Set(seen).size);
  });
});

describe('passProgress', () => {
  const fakeTty = (columns = 80) => {
    const writes: string[] = [];
    return { writes, stream: { columns, write: (s: string) => { writes.push(s); return true; } } as unknown as NodeJS.WriteStream };
  };

  test('draws "pass N/M name elapsed" in place, clipped to the terminal, and clears it', () => {
    const { writes, stream } = fakeTty(60);
    const bar = passProgress(stream);
    bar.update(1, 4, 'fold-constants', 12);
    bar.update(3, 4, 'eliminate-common-subexpressions-with-a-very-long-name', 3400);
    bar.done();
    expect(writes[0]).toBe('\r[........................] pass 1/4 fold-constants  12 ms');
    expect(writes[1]!.startsWith('\r[############............] pass 3/4 eliminate-common')).toBe(true);
    expect(writes[1]!.length).toBe(60); // \r + 59 columns
    expect(writes[2]).toBe(`\r${' '.repeat(59)}\r`);
  });

  test('formatElapsed', () => {
    expect(formatElapsed(850.4)).toBe('850 ms');
    expect(formatElapsed(12_345)).toBe('12.3 s');
    expect(formatElapsed(125_000)).toBe('2 min 05 s');
  });
});
