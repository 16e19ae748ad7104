/**
 * Interleaved timing in blocks, for comparing models in one process.
 *
 * Each round runs every task `block` times in a row, after untimed settling runs (at least one, and
 * until `settleMs` have passed). The runs right after a switch follow another model's: they pay for
 * caches the other model evicted (a 500 MB transformer is the size of a large L3) and compete with
 * the other session's worker threads, which ONNX Runtime lets spin-wait after a run. Neither is the
 * model's own steady-state latency. Measured here (2 cores, ORT 1.30, mobilenet_v2 fp32, median by
 * position after a switch): 11.0, 10.4, 6.6, 6.4, 6.1 ... ms; strict A B A B alternation showed
 * mobilenet_v2 int8 as no faster than fp32 (0.99x) where settled blocks show 1.9x. Rounds rotate
 * the order (A B C, B C A, ...), so drift of the machine (clock, thermals, neighbours) still hits
 * every task alike.
 */
export interface InterleaveOptions {
  /** timed runs per task */
  runs: number;
  /** timed runs per task in a row (default 5) */
  block?: number;
  /** untimed runs before each block until this long has passed since the switch (default 50 ms; at least one run) */
  settleMs?: number;
  /** asked after each round with the timed runs per task so far; true stops early */
  shouldStop?: (timedPerTask: number) => boolean;
  onRound?: (timedPerTask: number) => void;
}

export interface InterleaveResult {
  /** per task: the timed (steady-state) runs, ms */
  timed: number[][];
  /** per task: the untimed settling runs of each block (just after another task), ms */
  transition: number[][];
}

export async function timeInterleaved(tasks: readonly (() => Promise<unknown>)[], opts: InterleaveOptions): Promise<InterleaveResult> {
  const block = Math.max(1, Math.floor(opts.block ?? 5));
  const settle = opts.settleMs ?? 50;
  const timed = tasks.map(() => [] as number[]);
  const transition = tasks.map(() => [] as number[]);
  let done = 0;
  for (let round = 0; done < opts.runs; round++) {
    const n = Math.min(block, opts.runs - done);
    for (let j = 0; j < tasks.length; j++) {
      const k = (round + j) % tasks.length;
      const task = tasks[k]!;
      const switched = performance.now();
      do {
        const t0 = performance.now();
        await task();
        transition[k]!.push(performance.now() - t0);
      } while (performance.now() - switched < settle);
      for (let i = 0; i < n; i++) {
        const t0 = performance.now();
        await task();
        timed[k]!.push(performance.now() - t0);
      }
    }
    done += n;
    opts.onRound?.(done);
    if (opts.shouldStop?.(done)) break;
  }
  return { timed, transition };
}
