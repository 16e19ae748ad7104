import { describe, expect, test } from 'vitest';
import { timeInterleaved } from '../../src/bench/interleave.js';

describe('timeInterleaved', () => {
  test('blocks of timed runs per task, rotating order, settling runs after every switch', async () => {
    const log: string[] = [];
    const task = (name: string) => async () => { log.push(name); };
    const r = await timeInterleaved([task('A'), task('B')], { runs: 4, block: 2, settleMs: 0 });
    expect(r.timed.map((t) => t.length)).toEqual([4, 4]);
    expect(r.transition.map((t) => t.length)).toEqual([2, 2]);
    // round 0: A (1 settle + 2 timed), B (same); round 1 starts with B
    expect(log.join('')).toBe('AAABBBBBBAAA');
  });

  test('a short last block, and early stop once shouldStop says so', async () => {
    let calls = 0;
    const r = await timeInterleaved([async () => { calls++; }], { runs: 5, block: 2, settleMs: 0 });
    expect(r.timed[0]).toHaveLength(5);
    expect(calls).toBe(5 + 3);
    const stopped = await timeInterleaved([async () => {}, async () => {}], { runs: 100, block: 5, settleMs: 0, shouldStop: (n) => n >= 10 });
    expect(stopped.timed.map((t) => t.length)).toEqual([10, 10]);
  });

  test('settling lasts at least settleMs after each switch (and at least one run)', async () => {
    const sleep = () => new Promise((res) => setTimeout(res, 2));
    const r = await timeInterleaved([sleep], { runs: 1, block: 1, settleMs: 20 });
    const settled = r.transition[0]!.reduce((a, b) => a + b, 0);
    expect(settled).toBeGreaterThanOrEqual(19);
    expect(r.transition[0]!.length).toBeGreaterThan(1);
  });
});
