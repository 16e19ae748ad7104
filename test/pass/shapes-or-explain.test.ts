/** ctx.shapesOrExplain(): the one way a pass does without shapes when inference fails. */
import { expect, test } from 'vitest';
import { ModelBuilder } from '../../src/ir/builder.js';
import { PassManager } from '../../src/pass/manager.js';
import type { Pass } from '../../src/pass/pass.js';

test('inference that fails: undefined, said once to each pass that asks, not recomputed; inference that works: the shapes', async () => {
  const b = new ModelBuilder({ opset: 17 });
  // [2, 3] + [4, 5] cannot broadcast: inference fails
  b.output(b.node('Add', [b.input('a', 'float32', [2, 3]), b.input('b', 'float32', [4, 5])]), 'y');
  const seen: unknown[] = [];
  const asking = (name: string): Pass => ({ name, description: 'asks three times', level: 1, run(_g, ctx) { for (let i = 0; i < 3; i++) seen.push(ctx.shapesOrExplain()); return 0; } });
  const explained: [string, string][] = [];
  await new PassManager([asking('one'), asking('two')], { onExplain: (p, m) => explained.push([p, m]) }).run(b.build());
  expect(seen).toEqual([undefined, undefined, undefined, undefined, undefined, undefined]);
  expect(explained.map(([p]) => p)).toEqual(['one', 'two']);
  for (const [, m] of explained) expect(m).toMatch(/^shape inference failed: /);

  const ok = new ModelBuilder({ opset: 17 });
  ok.output(ok.node('Relu', [ok.input('x', 'float32', [2, 3])]), 'y');
  const got: unknown[] = [];
  await new PassManager([{ name: 'p', description: '', level: 1, run(_g, ctx) { got.push(ctx.shapesOrExplain()); return 0; } }]).run(ok.build());
  expect(got[0]).toBeDefined();
});
