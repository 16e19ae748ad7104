/** `retarget bench` output: a terminal table, a Markdown table (for a PR comment), a progress bar. */
import type { BenchResult, ModelBenchResult } from './types.js';
import type { BenchProgress } from './bench.js';

/** milliseconds with about 3 significant digits */
export function formatMs(ms: number): string {
  if (!Number.isFinite(ms)) return String(ms);
  const a = Math.abs(ms);
  return ms.toFixed(a >= 100 ? 0 : a >= 10 ? 1 : a >= 1 ? 2 : 3);
}

export function formatSize(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes, u = 0;
  while (Math.abs(v) >= 1024 && u < units.length - 1) { v /= 1024; u++; }
  return u === 0 ? `${v} B` : `${v.toFixed(v >= 100 ? 0 : v >= 10 ? 1 : 2)} ${units[u]}`;
}

function formatNumber(x: number): string {
  const a = Math.abs(x);
  if (a === 0) return '0';
  if (a >= 1000) return Math.round(x).toLocaleString('en-US');
  if (a >= 100) return x.toFixed(0);
  if (a >= 10) return x.toFixed(1);
  if (a >= 0.01) return x.toFixed(2);
  return x.toPrecision(2);
}

function medianOf(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const h = (s.length - 1) / 2;
  return (s[Math.floor(h)]! + s[Math.ceil(h)]!) / 2;
}

function ratioCell(m: ModelBenchResult, index: number): string {
  if (index === 0) return 'baseline';
  if (!m.ratioVsFirst) return '';
  const r = m.ratioVsFirst;
  return `${r.p50.toFixed(3)}x [${r.ci95[0].toFixed(3)}, ${r.ci95[1].toFixed(3)}]`;
}

const HEADERS = ['model', 'size', 'batch', 'create ms', 'min ms', 'p50 ms', 'p90 ms', 'p99 ms', 'mean ± sd ms', 'inf/s', 'GFLOPs', 'GFLOP/s', 'peak RSS', 'p50 vs first (95% CI)'];
/** columns that hold text (left-aligned); the rest are numbers (right-aligned) */
const TEXT_COLUMNS = new Set([0, 13]);

function rows(result: BenchResult): string[][] {
  return result.models.map((m, i) => [
    m.name,
    formatSize(m.sizeBytes),
    String(m.batch),
    formatMs(medianOf(m.sessionCreateMs)),
    formatMs(m.stats.minMs),
    formatMs(m.stats.p50Ms),
    formatMs(m.stats.p90Ms),
    formatMs(m.stats.p99Ms),
    `${formatMs(m.stats.meanMs)} ± ${formatMs(m.stats.stdevMs)}`,
    formatNumber(m.throughputPerSec),
    m.gflops !== undefined ? formatNumber(m.gflops) : '-',
    m.achievedGflopsPerSec !== undefined ? formatNumber(m.achievedGflopsPerSec) : '-',
    m.peakRssBytes !== undefined ? formatSize(m.peakRssBytes) : '-',
    ratioCell(m, i),
  ]);
}

function environmentLine(result: BenchResult): string {
  const e = result.environment;
  const flags = e.cpuFlags.length ? ` [${e.cpuFlags.join(' ')}]` : '';
  return `${e.machine}: ${e.cpuModel}${flags}, ${e.cores} cores, ${e.threads} threads; ${e.platform}-${e.arch}, node ${e.node}, ${e.runtime ?? `onnxruntime ${e.onnxruntime}`}, retarget ${e.retarget}${e.target ? `, target ${e.target}` : ''}`;
}

function runLine(result: BenchResult): string {
  const rounds = result.models[0]?.latencyMs.length ?? 0; // timed runs per model
  const o = result.options;
  const all = new Map<string, number>();
  for (const m of result.models) for (const [k, v] of Object.entries(m.dims)) if (!all.has(k)) all.set(k, v);
  const dims = all.size ? `, dims ${[...all].map(([k, v]) => `${k}=${v}`).join(',')}` : '';
  const budget = o.timeBudgetMs !== undefined ? ` (of ${o.runs}, time budget ${o.timeBudgetMs / 1000} s)` : '';
  const blocks = o.block !== undefined ? ` in blocks of ${o.block} (settled after each switch)` : '';
  return `${rounds} timed runs per model, interleaved${blocks}${budget}, ${o.warmup} warm-up runs, seed ${o.seed}${dims}; create ms is the median of ${result.models[0]?.sessionCreateMs.length ?? 0} session creations`;
}

// ---------------------------------------------------------------------------------------------
// bench --generate

const GEN_HEADERS = ['model', 'size', 'prefill ms', 'prefill tok/s', 'decode ms/tok p50', 'p90', 'tok/s', 'tok/s vs first (95% CI)', 'weights/tok', 'limit tok/s', '% of limit', 'tokens'];
const GEN_TEXT_COLUMNS = new Set([0, 7, 11]);

function tokensCell(m: ModelBenchResult, index: number): string {
  const g = m.generate!;
  const own = g.consistent ? '' : ' (varies between runs)';
  if (index === 0) return `reference${own}`;
  if (g.agreesWithFirst === undefined) return own.trim();
  return g.agreesWithFirst ? `same${own}` : `DIFFER at ${g.firstMismatch ?? '?'}${own}`;
}

function generateRows(result: BenchResult): string[][] {
  return result.models.map((m, i) => {
    const g = m.generate;
    if (!g) return [m.name, formatSize(m.sizeBytes), ...new Array<string>(GEN_HEADERS.length - 2).fill('-')];
    const r = g.tokensPerSecondRatioVsFirst;
    return [
      m.name,
      formatSize(m.sizeBytes),
      formatMs(g.prefillStats.p50Ms),
      formatNumber(g.prefillTokensPerSecond),
      formatMs(g.decodeMsPerToken.p50Ms),
      formatMs(g.decodeMsPerToken.p90Ms),
      formatNumber(g.tokensPerSecond),
      i === 0 ? 'baseline' : r ? `${r.ratio.toFixed(3)}x [${r.ci95[0].toFixed(3)}, ${r.ci95[1].toFixed(3)}]` : '',
      formatSize(g.bytesPerToken),
      formatNumber(g.rooflineTokensPerSecond),
      `${g.rooflinePct.toFixed(1)}%`,
      tokensCell(m, i),
    ];
  });
}

function generateRunLines(result: BenchResult): string[] {
  const o = result.options;
  const g = o.generate!;
  const gens = result.models[0]?.generate?.generations ?? 0;
  const budget = o.timeBudgetMs !== undefined ? ` (of ${o.runs}, time budget ${o.timeBudgetMs / 1000} s)` : '';
  const start = g.past > g.prompt ? `a cache of ${g.past} positions (the prompt's, extended by untimed runs)` : `the prompt's cache (${g.past} positions)`;
  return [
    `${gens} generations per model${budget}, interleaved in blocks of ${o.block ?? 1} (settled after each switch), ${o.warmup} warm-up, seed ${o.seed}: prefill of ${g.prompt} tokens over an empty cache, then ${g.newTokens} greedy decode steps from ${start}, present fed back as past; batch 1`,
    `roofline: memory bandwidth ${g.bandwidth.gbPerSec.toFixed(1)} GB/s (${g.bandwidth.method}) / weight bytes per token (initializers read by nodes, less tables read only through Gather; the KV cache not counted)`,
  ];
}

function formatGenerateTable(result: BenchResult): string {
  const body = generateRows(result);
  const widths = GEN_HEADERS.map((h, c) => Math.max(h.length, ...body.map((r) => r[c]!.length)));
  const line = (cells: string[]): string => cells
    .map((s, c) => (GEN_TEXT_COLUMNS.has(c) ? s.padEnd(widths[c]!) : s.padStart(widths[c]!)))
    .join('  ')
    .trimEnd();
  const differ = result.models.filter((m) => m.generate?.agreesWithFirst === false).map((m) => m.name);
  return [
    environmentLine(result),
    ...generateRunLines(result),
    '',
    line(GEN_HEADERS),
    line(widths.map((w) => '-'.repeat(w))),
    ...body.map(line),
    ...(differ.length ? ['', `warning: ${differ.join(', ')} generated different tokens from ${result.models[0]!.name}`] : []),
  ].join('\n');
}

function formatGenerateMarkdown(result: BenchResult): string {
  const body = generateRows(result);
  const align = GEN_HEADERS.map((_h, c) => (GEN_TEXT_COLUMNS.has(c) ? '---' : '---:'));
  const row = (cells: string[]): string => `| ${cells.map(mdCell).join(' | ')} |`;
  return [
    '### retarget bench --generate',
    '',
    row(GEN_HEADERS),
    `|${align.join('|')}|`,
    ...body.map(row),
    '',
    `<sub>${generateRunLines(result).map(mdCell).join('. ')}. ${mdCell(environmentLine(result))}. Ratios: tokens/s vs the first model, bootstrap 95% CI over the per-token samples (above 1 is faster).</sub>`,
    '',
  ].join('\n');
}

/** A plain-text table for the terminal, with the environment above it. */
export function formatBenchTable(result: BenchResult): string {
  if (result.options.generate) return formatGenerateTable(result);
  const body = rows(result);
  const widths = HEADERS.map((h, c) => Math.max(h.length, ...body.map((r) => r[c]!.length)));
  const line = (cells: string[]): string => cells
    .map((s, c) => (TEXT_COLUMNS.has(c) ? s.padEnd(widths[c]!) : s.padStart(widths[c]!)))
    .join('  ')
    .trimEnd();
  return [
    environmentLine(result),
    runLine(result),
    '',
    line(HEADERS),
    line(widths.map((w) => '-'.repeat(w))),
    ...body.map(line),
  ].join('\n');
}

function mdCell(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

/** A GitHub-flavoured Markdown table, for a pull-request comment. */
export function formatBenchMarkdown(result: BenchResult): string {
  if (result.options.generate) return formatGenerateMarkdown(result);
  const body = rows(result);
  const align = HEADERS.map((_h, c) => (TEXT_COLUMNS.has(c) ? '---' : '---:'));
  const row = (cells: string[]): string => `| ${cells.map(mdCell).join(' | ')} |`;
  return [
    '### retarget bench',
    '',
    row(HEADERS),
    `|${align.join('|')}|`,
    ...body.map(row),
    '',
    `<sub>${mdCell(runLine(result))}. ${mdCell(environmentLine(result))}. Ratios: p50 latency vs the first model, bootstrap 95% CI of the ratio of medians (below 1 is faster).</sub>`,
    '',
  ].join('\n');
}

/**
 * One status line on a TTY stream, redrawn in place with \r and clipped to the terminal's width;
 * `done()` erases it. Use it only when the stream is a TTY.
 */
export function statusLine(stream: NodeJS.WriteStream): { show: (text: string) => void; done: () => void } {
  let last = '';
  return {
    show(text) {
      const cols = stream.columns || 80;
      const clipped = text.length >= cols ? text.slice(0, cols - 1) : text;
      if (clipped === last) return;
      stream.write(`\r${clipped.padEnd(last.length)}`);
      last = clipped;
    },
    done() {
      if (last) stream.write(`\r${' '.repeat(last.length)}\r`);
      last = '';
    },
  };
}

function bar(frac: number, width = 24): string {
  const fill = Math.round(Math.min(1, Math.max(0, frac)) * width);
  return `[${'#'.repeat(fill)}${'.'.repeat(width - fill)}]`;
}

/**
 * A one-line progress bar on a TTY stream (redrawn with \r); `done()` clears it. Use it only when
 * the stream is a TTY: elsewhere, bench is quiet.
 */
export function progressBar(stream: NodeJS.WriteStream): { update: (p: BenchProgress) => void; done: () => void } {
  let lastPhase = '', lastAt = 0;
  const line = statusLine(stream);
  return {
    update(p) {
      // redraw at most every 100 ms within a phase: writing to the terminal between timed runs is noise
      const now = performance.now();
      if (p.phase === lastPhase && now - lastAt < 100 && p.done < p.total) return;
      lastPhase = p.phase;
      lastAt = now;
      const frac = p.total > 0 ? p.done / p.total : 0;
      const what = p.phase === 'load' ? 'loading' : p.phase === 'create' ? 'creating sessions' : 'timing';
      line.show(`${bar(frac)} ${what} ${p.done}/${p.total}${p.model ? ` ${p.model}` : ''}`);
    },
    done: line.done,
  };
}

/** "850 ms", "12.3 s", "2 min 05 s" */
export function formatElapsed(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
}

/**
 * Compile progress for a TTY stream, shaped as the PassManager's onProgress: "[####....] pass 12/40
 * fold-constants  3.2 s". Every pass start is drawn (no throttling: the line must name the pass that
 * is running now, however long it takes); `done()` clears it.
 */
export function passProgress(stream: NodeJS.WriteStream): { update: (index: number, total: number, pass: string, elapsedMs: number) => void; done: () => void } {
  const line = statusLine(stream);
  return {
    update(index, total, pass, elapsedMs) {
      line.show(`${bar(total > 0 ? (index - 1) / total : 0)} pass ${index}/${total} ${pass}  ${formatElapsed(elapsedMs)}`);
    },
    done: line.done,
  };
}
