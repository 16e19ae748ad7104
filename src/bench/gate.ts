/**
 * The CI gate: compare a current `retarget bench --json` result against a baseline one.
 *
 * Latency is judged on the bootstrap 95% confidence interval of the ratio of medians
 * (current / baseline), never on a point estimate: a model is a REGRESSION only when the whole
 * interval lies above 1 + threshold, an IMPROVEMENT only when it lies below 1 - threshold. Run-to-run
 * noise widens the interval instead of failing the build. Size and accuracy are deterministic and
 * are compared directly.
 *
 * Pure functions (no file system): the CLI reads the files and writes the outputs.
 */
import { bootstrapRatioCI, median } from './stats.js';
import { RetargetError, UsageError } from '../errors.js';
import { BENCH_SCHEMA, type BenchEnvironment, type BenchResult, type ModelBenchResult } from './types.js';

/** A threshold the user wrote that is not one ('5%' and '0.05' are; '5', '-1%', 'x' are not): a usage error. */
export class ThresholdError extends UsageError {}

/** A results or prices file that is not what it should be (the message names the file and where in it). */
export class ResultFileError extends RetargetError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(undefined, message, {}, options);
  }
}

/**
 * Parse '5%' or '0.05' into 0.05. A bare number above 1 is refused as ambiguous (did '5' mean 5%
 * or 500%?): write it with a '%'.
 */
export function parseThreshold(text: string, flag: string): number {
  const s = text.trim();
  const m = /^(\d+(?:\.\d*)?|\.\d+)(%?)$/.exec(s);
  if (!m) throw new ThresholdError(`${flag}: '${text}' is not a threshold (write 5% or 0.05)`);
  const n = Number(m[1]);
  if (m[2] === '%') return n / 100;
  if (n > 1) throw new ThresholdError(`${flag}: '${text}' is ambiguous: write ${n}% or ${n / 100}`);
  return n;
}

export interface Thresholds {
  /** latency: fail when the CI of current/baseline is entirely above 1 + this */
  maxRegression: number;
  /** size: fail when current/baseline - 1 is above this */
  maxSizeGrowth: number;
  /** accuracy: fail when the cosine similarity drops by more than this (absolute) */
  maxAccuracyDrop: number;
}

export const DEFAULT_THRESHOLDS: Thresholds = { maxRegression: 0.05, maxSizeGrowth: 0.05, maxAccuracyDrop: 0.001 };

// ---------------------------------------------------------------------------------------------
// Reading results

/** Check that parsed JSON is a bench result (schema and the fields compare/report read). */
export function parseBenchResult(text: string, file: string): BenchResult {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ResultFileError(`${file}: not JSON (${(e as Error).message})`, { cause: e });
  }
  const r = json as Partial<BenchResult> | null;
  if (!r || typeof r !== 'object' || r.schema !== BENCH_SCHEMA) {
    throw new ResultFileError(`${file}: not a retarget bench result (schema is ${JSON.stringify(r && typeof r === 'object' ? r.schema : undefined)}, expected "${BENCH_SCHEMA}")`);
  }
  if (!r.environment || typeof r.environment !== 'object') throw new ResultFileError(`${file}: no environment`);
  if (!Array.isArray(r.models)) throw new ResultFileError(`${file}: no models list`);
  for (const [i, m] of r.models.entries()) {
    const where = `${file}: models[${i}]`;
    if (!m || typeof m.name !== 'string') throw new ResultFileError(`${where}: no name`);
    if (!Array.isArray(m.latencyMs) || m.latencyMs.some((x) => typeof x !== 'number')) throw new ResultFileError(`${where} (${m.name}): latencyMs is not a list of numbers`);
    if (!m.stats || typeof m.stats.p50Ms !== 'number') throw new ResultFileError(`${where} (${m.name}): no stats.p50Ms`);
    if (typeof m.sizeBytes !== 'number') throw new ResultFileError(`${where} (${m.name}): no sizeBytes`);
  }
  return r as BenchResult;
}

// ---------------------------------------------------------------------------------------------
// Comparing

export type Verdict = 'regression' | 'improvement' | 'unchanged';

export interface LatencyComparison {
  baselineP50Ms: number;
  currentP50Ms: number;
  /** current / baseline, ratio of medians */
  ratio: number;
  ci95: [number, number];
  /** false when a side had fewer than 2 samples: the interval is the point estimate */
  bootstrapped: boolean;
  verdict: Verdict;
}

export interface SizeComparison {
  baselineBytes: number;
  currentBytes: number;
  /** current / baseline - 1 */
  growth: number;
  verdict: Verdict;
}

export interface AccuracyComparison {
  baseline: { cosine: number; maxAbsError: number; ok: boolean };
  current: { cosine: number; maxAbsError: number; ok: boolean };
  /** baseline cosine - current cosine */
  cosineDrop: number;
  verdict: Verdict;
  reason?: string;
}

/**
 * `bench --generate` results on both sides: tokens/s, current / baseline, from the same per-token
 * samples and bootstrap as the latency comparison (ratio and CI inverted). A regression when the
 * whole CI lies below 1 - threshold, an improvement when it lies above 1 + threshold.
 */
export interface TokensPerSecondComparison {
  baseline: number;
  current: number;
  ratio: number;
  ci95: [number, number];
  bootstrapped: boolean;
  verdict: Verdict;
}

/** Greedy-token agreement with the first model of each run (`bench --generate`). */
export interface TokensComparison {
  baselineAgrees: boolean;
  currentAgrees: boolean;
  /** first differing token in the current run */
  firstMismatch?: number;
  verdict: Verdict;
}

export interface ModelComparison {
  name: string;
  /** with tokensPerSecond, its verdict is the tokens/s one (the same samples: one check, not two) */
  latency: LatencyComparison;
  size: SizeComparison;
  /** only when both runs measured accuracy */
  accuracy?: AccuracyComparison;
  /** only when both runs are `bench --generate` results */
  tokensPerSecond?: TokensPerSecondComparison;
  /** only when both runs compared this model's greedy tokens with their first model's */
  tokens?: TokensComparison;
  /** any check regressed */
  regressed: boolean;
}

export interface Comparison {
  baselineEnvironment: BenchEnvironment;
  currentEnvironment: BenchEnvironment;
  thresholds: Thresholds;
  models: ModelComparison[];
  onlyInBaseline: string[];
  onlyInCurrent: string[];
  /** environment fields that differ ("machine: a vs b"): ratios then compare different hardware */
  environmentDifferences: string[];
  /** one line per failed check, e.g. "resnet: latency x1.150 (95% CI 1.121-1.180)" */
  failures: string[];
}

/** Fields whose difference makes latency ratios compare different hardware or settings. */
export function environmentDifferences(a: BenchEnvironment, b: BenchEnvironment): string[] {
  const out: string[] = [];
  const fields: (keyof BenchEnvironment)[] = ['machine', 'cpuModel', 'threads', 'arch'];
  for (const f of fields) {
    if (a[f] !== b[f]) out.push(`${f}: ${JSON.stringify(a[f])} vs ${JSON.stringify(b[f])}`);
  }
  return out;
}

function compareLatency(base: ModelBenchResult, cur: ModelBenchResult, t: Thresholds, seed: number, iterations: number): LatencyComparison {
  const bootstrapped = base.latencyMs.length >= 2 && cur.latencyMs.length >= 2;
  let ratio: number;
  let ci95: [number, number];
  if (bootstrapped) {
    ({ ratio, ci95 } = bootstrapRatioCI(base.latencyMs, cur.latencyMs, { seed, iterations }));
  } else {
    ratio = cur.stats.p50Ms / base.stats.p50Ms;
    ci95 = [ratio, ratio];
  }
  const verdict: Verdict = ci95[0] > 1 + t.maxRegression ? 'regression' : ci95[1] < 1 - t.maxRegression ? 'improvement' : 'unchanged';
  return {
    baselineP50Ms: bootstrapped ? median(base.latencyMs) : base.stats.p50Ms,
    currentP50Ms: bootstrapped ? median(cur.latencyMs) : cur.stats.p50Ms,
    ratio, ci95, bootstrapped, verdict,
  };
}

function compareSize(base: ModelBenchResult, cur: ModelBenchResult, t: Thresholds): SizeComparison {
  const growth = base.sizeBytes > 0 ? cur.sizeBytes / base.sizeBytes - 1 : cur.sizeBytes > 0 ? Infinity : 0;
  const verdict: Verdict = growth > t.maxSizeGrowth ? 'regression' : growth < -t.maxSizeGrowth ? 'improvement' : 'unchanged';
  return { baselineBytes: base.sizeBytes, currentBytes: cur.sizeBytes, growth, verdict };
}

function compareAccuracy(base: ModelBenchResult, cur: ModelBenchResult, t: Thresholds): AccuracyComparison | undefined {
  if (!base.accuracy || !cur.accuracy) return undefined;
  const b = base.accuracy, c = cur.accuracy;
  const cosineDrop = b.cosine - c.cosine;
  let verdict: Verdict = 'unchanged';
  let reason: string | undefined;
  if (b.ok && !c.ok) {
    verdict = 'regression';
    reason = `outputs no longer within tolerance (max abs error ${fmtNum(c.maxAbsError)}, was ${fmtNum(b.maxAbsError)})`;
  } else if (cosineDrop > t.maxAccuracyDrop) {
    verdict = 'regression';
    reason = `cosine ${fmtNum(c.cosine)}, was ${fmtNum(b.cosine)} (drop ${fmtNum(cosineDrop)} > ${fmtNum(t.maxAccuracyDrop)})`;
  } else if (!b.ok && c.ok) {
    verdict = 'improvement';
  }
  return { baseline: { ...b }, current: { ...c }, cosineDrop, verdict, ...(reason ? { reason } : {}) };
}

function compareTokensPerSecond(base: ModelBenchResult, cur: ModelBenchResult, latency: LatencyComparison, t: Thresholds): TokensPerSecondComparison | undefined {
  if (!base.generate || !cur.generate) return undefined;
  const ratio = 1 / latency.ratio;
  const ci95: [number, number] = [1 / latency.ci95[1], 1 / latency.ci95[0]];
  const verdict: Verdict = ci95[1] < 1 - t.maxRegression ? 'regression' : ci95[0] > 1 + t.maxRegression ? 'improvement' : 'unchanged';
  return { baseline: 1000 / latency.baselineP50Ms, current: 1000 / latency.currentP50Ms, ratio, ci95, bootstrapped: latency.bootstrapped, verdict };
}

function compareTokens(base: ModelBenchResult, cur: ModelBenchResult): TokensComparison | undefined {
  const b = base.generate?.agreesWithFirst, c = cur.generate?.agreesWithFirst;
  if (b === undefined || c === undefined) return undefined;
  const verdict: Verdict = b && !c ? 'regression' : !b && c ? 'improvement' : 'unchanged';
  const mismatch = cur.generate?.firstMismatch;
  return { baselineAgrees: b, currentAgrees: c, ...(mismatch !== undefined ? { firstMismatch: mismatch } : {}), verdict };
}

export function tokensPerSecondMessage(x: TokensPerSecondComparison, t: Thresholds): string {
  const ci = x.bootstrapped ? `95% CI ${x.ci95[0].toFixed(3)}-${x.ci95[1].toFixed(3)}` : 'no samples: point estimate';
  const what = x.verdict === 'regression' ? `slower beyond ${fmtPct(t.maxRegression, false)}` : x.verdict === 'improvement' ? `faster beyond ${fmtPct(t.maxRegression, false)}` : `within ${fmtPct(t.maxRegression, false)} or not significant`;
  return `tokens/s x${x.ratio.toFixed(3)} (${ci}; ${fmtNum(x.baseline)} -> ${fmtNum(x.current)} tok/s), ${what}`;
}

export interface CompareOptions {
  /** bootstrap iterations (default 2000) */
  iterations?: number;
  /** bootstrap seed (default 1): the same files always give the same verdicts */
  seed?: number;
}

/** Compare every model present in both results (matched by name). */
export function compareResults(baseline: BenchResult, current: BenchResult, thresholds: Thresholds = DEFAULT_THRESHOLDS, opts: CompareOptions = {}): Comparison {
  const seed = opts.seed ?? 1;
  const iterations = opts.iterations ?? 2000;
  const byName = new Map(baseline.models.map((m) => [m.name, m]));
  const currentNames = new Set(current.models.map((m) => m.name));
  const models: ModelComparison[] = [];
  const failures: string[] = [];
  for (const cur of current.models) {
    const base = byName.get(cur.name);
    if (!base) continue;
    const latency = compareLatency(base, cur, thresholds, seed, iterations);
    const size = compareSize(base, cur, thresholds);
    const accuracy = compareAccuracy(base, cur, thresholds);
    const tokensPerSecond = compareTokensPerSecond(base, cur, latency, thresholds);
    if (tokensPerSecond) latency.verdict = tokensPerSecond.verdict; // the same samples: gated once, on tokens/s
    const tokens = compareTokens(base, cur);
    const regressed = latency.verdict === 'regression' || size.verdict === 'regression' || accuracy?.verdict === 'regression' || tokens?.verdict === 'regression';
    if (tokensPerSecond?.verdict === 'regression') failures.push(`${cur.name}: ${tokensPerSecondMessage(tokensPerSecond, thresholds)}`);
    else if (latency.verdict === 'regression') failures.push(`${cur.name}: ${latencyMessage(latency, thresholds)}`);
    if (size.verdict === 'regression') failures.push(`${cur.name}: ${sizeMessage(size, thresholds)}`);
    if (accuracy?.verdict === 'regression') failures.push(`${cur.name}: accuracy ${accuracy.reason ?? ''}`);
    if (tokens?.verdict === 'regression') failures.push(`${cur.name}: greedy tokens now differ from the first model's${tokens.firstMismatch !== undefined ? ` (from token ${tokens.firstMismatch})` : ''}`);
    models.push({ name: cur.name, latency, size, ...(accuracy ? { accuracy } : {}), ...(tokensPerSecond ? { tokensPerSecond } : {}), ...(tokens ? { tokens } : {}), regressed });
  }
  return {
    baselineEnvironment: baseline.environment,
    currentEnvironment: current.environment,
    thresholds,
    models,
    onlyInBaseline: baseline.models.filter((m) => !currentNames.has(m.name)).map((m) => m.name),
    onlyInCurrent: current.models.filter((m) => !byName.has(m.name)).map((m) => m.name),
    environmentDifferences: environmentDifferences(baseline.environment, current.environment),
    failures,
  };
}

// ---------------------------------------------------------------------------------------------
// Formatting

export function fmtNum(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  if (x === 0) return '0';
  const a = Math.abs(x);
  if (a >= 100) return x.toFixed(1);
  if (a >= 1) return x.toFixed(3);
  return x.toPrecision(3);
}

export function fmtPct(x: number, signed = true): string {
  if (!Number.isFinite(x)) return x > 0 ? '+inf%' : String(x);
  const s = (x * 100).toFixed(1);
  return `${signed && x >= 0 ? '+' : ''}${s}%`;
}

export function fmtBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let v = n;
  let u = 0;
  while (Math.abs(v) >= 1024 && u < units.length - 1) { v /= 1024; u++; }
  return `${u === 0 ? v : v.toFixed(1)} ${units[u]}`;
}

export function latencyMessage(l: LatencyComparison, t: Thresholds): string {
  const ci = l.bootstrapped ? `95% CI ${l.ci95[0].toFixed(3)}-${l.ci95[1].toFixed(3)}` : 'no samples: point estimate';
  const what = l.verdict === 'regression' ? `slower beyond ${fmtPct(t.maxRegression, false)}` : l.verdict === 'improvement' ? `faster beyond ${fmtPct(t.maxRegression, false)}` : `within ${fmtPct(t.maxRegression, false)} or not significant`;
  return `latency x${l.ratio.toFixed(3)} (${ci}; p50 ${fmtNum(l.baselineP50Ms)} -> ${fmtNum(l.currentP50Ms)} ms), ${what}`;
}

export function sizeMessage(s: SizeComparison, t: Thresholds): string {
  return `size ${fmtBytes(s.baselineBytes)} -> ${fmtBytes(s.currentBytes)} (${fmtPct(s.growth)}, limit ${fmtPct(t.maxSizeGrowth)})`;
}

const MARK: Record<Verdict, string> = { regression: '❌ regression', improvement: '✅ improvement', unchanged: 'unchanged' };

function envLine(e: BenchEnvironment): string {
  return `${e.machine} (${e.cpuModel}, ${e.arch}, ${e.threads} thread${e.threads === 1 ? '' : 's'}${e.target ? `, target ${e.target}` : ''})`;
}

/** The Markdown summary: a verdict line, a table, and the lists of unmatched models. */
export function formatCompareMarkdown(c: Comparison, files: { baseline?: string; current?: string } = {}): string {
  const t = c.thresholds;
  const lines: string[] = [];
  lines.push('## retarget compare', '');
  lines.push(`- baseline: ${files.baseline ? `\`${files.baseline}\` ` : ''}${envLine(c.baselineEnvironment)}`);
  lines.push(`- current: ${files.current ? `\`${files.current}\` ` : ''}${envLine(c.currentEnvironment)}`);
  lines.push(`- thresholds: latency ${fmtPct(t.maxRegression, false)} (on the 95% CI of the ratio of medians), size ${fmtPct(t.maxSizeGrowth, false)}, cosine drop ${fmtNum(t.maxAccuracyDrop)}`);
  if (c.environmentDifferences.length) lines.push(`- ⚠️ environments differ (${c.environmentDifferences.join('; ')}): ratios compare different hardware or settings`);
  lines.push('');
  const n = c.failures.length;
  const improved = c.models.filter((m) => m.latency.verdict === 'improvement').length;
  lines.push(n ? `**${n} regression${n === 1 ? '' : 's'}** in ${c.models.filter((m) => m.regressed).length} of ${c.models.length} models` : `**No regressions** in ${c.models.length} model${c.models.length === 1 ? '' : 's'}${improved ? `, ${improved} faster` : ''}`);
  lines.push('');
  if (c.models.length) {
    lines.push('| model | baseline p50 (ms) | current p50 (ms) | ratio | 95% CI | latency | size | accuracy |');
    lines.push('|---|---:|---:|---:|---|---|---|---|');
    for (const m of c.models) {
      const l = m.latency;
      const ci = l.bootstrapped ? `${l.ci95[0].toFixed(3)}–${l.ci95[1].toFixed(3)}` : 'n/a (no samples)';
      const size = `${fmtBytes(m.size.currentBytes)} (${fmtPct(m.size.growth)})${m.size.verdict === 'unchanged' ? '' : ` ${MARK[m.size.verdict]}`}`;
      const acc = m.accuracy ? `cos ${m.accuracy.current.cosine.toFixed(6)}${m.accuracy.verdict === 'unchanged' ? (m.accuracy.current.ok ? ' ok' : ' not ok') : ` ${MARK[m.accuracy.verdict]}`}` : '–';
      lines.push(`| ${mdEscape(m.name)} | ${fmtNum(l.baselineP50Ms)} | ${fmtNum(l.currentP50Ms)} | ${l.ratio.toFixed(3)} | ${ci} | ${MARK[l.verdict]} | ${size} | ${acc} |`);
    }
    lines.push('');
  }
  const generated = c.models.filter((m) => m.tokensPerSecond);
  if (generated.length) {
    lines.push('Generation (`bench --generate`: decode tokens/s, gated instead of the latency above; greedy tokens vs the first model):', '');
    lines.push('| model | baseline tok/s | current tok/s | ratio | 95% CI | tokens/s | tokens |');
    lines.push('|---|---:|---:|---:|---|---|---|');
    for (const m of generated) {
      const x = m.tokensPerSecond!;
      const ci = x.bootstrapped ? `${x.ci95[0].toFixed(3)}–${x.ci95[1].toFixed(3)}` : 'n/a (no samples)';
      const tk = m.tokens ? (m.tokens.verdict === 'unchanged' ? (m.tokens.currentAgrees ? 'same' : `differ${m.tokens.firstMismatch !== undefined ? ` at ${m.tokens.firstMismatch}` : ''}`) : `${m.tokens.currentAgrees ? 'same' : 'differ'} ${MARK[m.tokens.verdict]}`) : '–';
      lines.push(`| ${mdEscape(m.name)} | ${fmtNum(x.baseline)} | ${fmtNum(x.current)} | ${x.ratio.toFixed(3)} | ${ci} | ${MARK[x.verdict]} | ${tk} |`);
    }
    lines.push('');
  }
  if (n) {
    lines.push('Failures:', '');
    for (const f of c.failures) lines.push(`- ${mdEscape(f)}`);
    lines.push('');
  }
  if (c.onlyInBaseline.length) lines.push(`Only in the baseline (not compared): ${c.onlyInBaseline.map(mdEscape).join(', ')}`, '');
  if (c.onlyInCurrent.length) lines.push(`Only in the current run (no baseline yet): ${c.onlyInCurrent.map(mdEscape).join(', ')}`, '');
  return lines.join('\n');
}

export function mdEscape(s: string): string {
  return s.replace(/[|\\`*_<]/g, (ch) => `\\${ch}`);
}
