/**
 * The cost report: merge `retarget bench --json` results from several machines and targets into one
 * table per (machine, target, model) with p50 latency, throughput, cost per million inferences
 * (from an hourly price per machine), energy per inference (from a power figure per machine) and
 * the savings against a baseline machine.
 *
 * Cost model: one inference stream at the benchmark's settings (batch, threads) keeps the machine
 * busy, so cost per inference = price per second / throughput:
 *   usd per million = usdPerHour / 3600 / throughputPerSec * 1e6
 *   joules per inference = watts / throughputPerSec   (= watts * latency at batch 1)
 * A machine that could run several streams side by side would cost less than this: the figure is
 * an upper bound, and fair across machines benchmarked the same way.
 */
import fs from 'node:fs';
import { FileAccessError, UsageError } from '../errors.js';
import { fmtNum, mdEscape, parseBenchResult, ResultFileError } from './gate.js';
import type { BenchResult } from './types.js';

export interface MachinePrice {
  usdPerHour: number;
  /** average power draw under this load, watts (optional: energy is shown where given) */
  watts?: number;
}

/** prices.json: `{ "c7g.xlarge": { "usdPerHour": 0.145, "watts": 30 } }`, keyed by environment.machine */
export type Prices = Record<string, MachinePrice>;

/** A mistake in the command line (e.g. --baseline names no machine in the results): exit 2. */
export class ReportUsageError extends UsageError {}

export function parsePrices(text: string, file: string): Prices {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ResultFileError(`${file}: not JSON (${(e as Error).message})`, { cause: e });
  }
  if (!json || typeof json !== 'object' || Array.isArray(json)) throw new ResultFileError(`${file}: expected an object keyed by machine, e.g. { "c7g.xlarge": { "usdPerHour": 0.145 } }`);
  const out: Prices = {};
  for (const [machine, v] of Object.entries(json as Record<string, unknown>)) {
    const p = v as Partial<MachinePrice> | null;
    if (!p || typeof p !== 'object' || typeof p.usdPerHour !== 'number' || !(p.usdPerHour >= 0)) {
      throw new ResultFileError(`${file}: "${machine}": usdPerHour must be a non-negative number`);
    }
    if (p.watts !== undefined && (typeof p.watts !== 'number' || !(p.watts >= 0))) throw new ResultFileError(`${file}: "${machine}": watts must be a non-negative number`);
    out[machine] = { usdPerHour: p.usdPerHour, ...(p.watts !== undefined ? { watts: p.watts } : {}) };
  }
  return out;
}

function readText(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new FileAccessError(file, 'read', code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : (e as Error).message, { cause: e });
  }
}

/** Read and check a `retarget bench --json` file. */
export function loadBenchResult(file: string): BenchResult {
  return parseBenchResult(readText(file), file);
}

export function loadPrices(file: string): Prices {
  return parsePrices(readText(file), file);
}

/** USD per million inferences for a machine at `usdPerHour` running `throughputPerSec`. */
export function costPerMillion(usdPerHour: number, throughputPerSec: number): number {
  return (usdPerHour / 3600 / throughputPerSec) * 1e6;
}

/** Joules per inference for a machine drawing `watts` while running `throughputPerSec`. */
export function joulesPerInference(watts: number, throughputPerSec: number): number {
  return watts / throughputPerSec;
}

export interface ReportRow {
  machine: string;
  /** environment.target, or '' when the run did not say */
  target: string;
  model: string;
  file: string;
  batch: number;
  p50Ms: number;
  throughputPerSec: number;
  /** 'token' for `bench --generate` results: p50 is ms per decoded token, throughput tokens/s, cost per million tokens */
  unit: 'inference' | 'token';
  usdPerHour?: number;
  watts?: number;
  costPerMillionUsd?: number;
  joulesPerInference?: number;
  /** against the same model on the baseline machine (absent on the baseline machine itself) */
  vsBaseline?: {
    /** baseline p50 / this p50: above 1 is faster */
    speedup: number;
    /** baseline cost - this cost, USD per million (when both have prices) */
    savingsUsdPerMillion?: number;
    /** savings / baseline cost, percent */
    savingsPercent?: number;
  };
}

export interface MachineInfo {
  machine: string;
  cpuModel: string;
  arch: string;
  cores: number;
  threads: number;
  usdPerHour?: number;
  watts?: number;
}

export interface Report {
  baselineMachine?: string;
  machines: MachineInfo[];
  rows: ReportRow[];
  warnings: string[];
}

export interface ReportInput { file: string; result: BenchResult }

export function buildReport(inputs: ReportInput[], prices: Prices = {}, opts: { baseline?: string } = {}): Report {
  const warnings: string[] = [];
  const rows: ReportRow[] = [];
  const machines = new Map<string, MachineInfo>();
  const seen = new Map<string, string>();
  for (const { file, result } of inputs) {
    const env = result.environment;
    const price = prices[env.machine];
    if (!machines.has(env.machine)) {
      machines.set(env.machine, {
        machine: env.machine, cpuModel: env.cpuModel, arch: env.arch, cores: env.cores, threads: env.threads,
        ...(price ? { usdPerHour: price.usdPerHour, ...(price.watts !== undefined ? { watts: price.watts } : {}) } : {}),
      });
    }
    for (const m of result.models) {
      const target = env.target ?? '';
      const key = `${env.machine}\u0000${target}\u0000${m.name}`;
      const before = seen.get(key);
      if (before !== undefined) warnings.push(`${m.name} on ${env.machine}${target ? ` (${target})` : ''} is in both ${before} and ${file}: both rows kept`);
      seen.set(key, file);
      const throughput = m.throughputPerSec > 0 ? m.throughputPerSec : (m.batch || 1) * 1000 / m.stats.p50Ms;
      const unit = result.options.generate ? 'token' : 'inference';
      const row: ReportRow = { machine: env.machine, target, model: m.name, file, batch: m.batch, p50Ms: m.stats.p50Ms, throughputPerSec: throughput, unit };
      if (price) {
        row.usdPerHour = price.usdPerHour;
        row.costPerMillionUsd = costPerMillion(price.usdPerHour, throughput);
        if (price.watts !== undefined) {
          row.watts = price.watts;
          row.joulesPerInference = joulesPerInference(price.watts, throughput);
        }
      }
      rows.push(row);
    }
  }
  const unpriced = [...machines.keys()].filter((k) => !prices[k]);
  if (Object.keys(prices).length && unpriced.length) warnings.push(`no price for ${unpriced.join(', ')} in the prices file: no cost for ${unpriced.length === 1 ? 'it' : 'them'}`);

  let baselineMachine = opts.baseline;
  if (baselineMachine !== undefined && !machines.has(baselineMachine)) {
    throw new ReportUsageError(`--baseline: no results for machine '${baselineMachine}' (machines: ${[...machines.keys()].join(', ')})`);
  }
  if (baselineMachine === undefined && machines.size > 1) baselineMachine = inputs[0]?.result.environment.machine;
  if (baselineMachine !== undefined) {
    const baseRows = rows.filter((r) => r.machine === baselineMachine);
    for (const r of rows) {
      if (r.machine === baselineMachine) continue;
      // the same model on the baseline machine: same target if there is one, else the only one
      const same = baseRows.filter((b) => b.model === r.model);
      const base = same.find((b) => b.target === r.target) ?? (same.length === 1 ? same[0] : undefined);
      if (!base) continue;
      const vs: NonNullable<ReportRow['vsBaseline']> = { speedup: base.p50Ms / r.p50Ms };
      if (base.costPerMillionUsd !== undefined && r.costPerMillionUsd !== undefined) {
        vs.savingsUsdPerMillion = base.costPerMillionUsd - r.costPerMillionUsd;
        vs.savingsPercent = base.costPerMillionUsd > 0 ? (vs.savingsUsdPerMillion / base.costPerMillionUsd) * 100 : 0;
      }
      r.vsBaseline = vs;
    }
  }
  return { ...(baselineMachine !== undefined ? { baselineMachine } : {}), machines: [...machines.values()], rows, warnings };
}

export function fmtUsd(x: number): string {
  const a = Math.abs(x);
  const digits = a >= 100 ? 2 : a >= 1 ? 3 : a >= 0.01 ? 4 : 6;
  return `${x < 0 ? '-' : ''}$${a.toFixed(digits)}`;
}

function fmtJoules(j: number): string {
  return j >= 1 ? `${j.toFixed(3)} J` : j >= 1e-3 ? `${(j * 1e3).toFixed(3)} mJ` : `${(j * 1e6).toFixed(2)} µJ`;
}

export const REPORT_HEADERS = ['machine', 'target', 'model', 'p50 (ms)', 'throughput (/s)', '$ / 1M inferences', 'energy / inference', 'speedup vs baseline', 'savings vs baseline'] as const;

/** The table's cells, as text (shared by Markdown and HTML). */
export function reportCells(r: ReportRow, baselineMachine: string | undefined): string[] {
  const isBase = r.machine === baselineMachine;
  const vs = r.vsBaseline;
  return [
    r.machine,
    r.target || '–',
    r.model,
    `${fmtNum(r.p50Ms)}${r.unit === 'token' ? ' / token' : ''}`,
    `${r.throughputPerSec.toFixed(1)}${r.unit === 'token' ? ' tokens' : ''}`,
    r.costPerMillionUsd !== undefined ? `${fmtUsd(r.costPerMillionUsd)}${r.unit === 'token' ? ' / 1M tokens' : ''}` : 'n/a',
    r.joulesPerInference !== undefined ? `${fmtJoules(r.joulesPerInference)}${r.unit === 'token' ? ' / token' : ''}` : 'n/a',
    isBase ? 'baseline' : vs ? `${vs.speedup.toFixed(2)}x` : '–',
    isBase ? 'baseline' : vs?.savingsUsdPerMillion !== undefined ? `${fmtUsd(vs.savingsUsdPerMillion)} (${vs.savingsPercent!.toFixed(1)}%)` : '–',
  ];
}

/** Rows sorted for reading: by model, then baseline machine first, then cheapest. */
export function sortedRows(r: Report): ReportRow[] {
  return [...r.rows].sort((a, b) =>
    a.model.localeCompare(b.model)
    || Number(b.machine === r.baselineMachine) - Number(a.machine === r.baselineMachine)
    || (a.costPerMillionUsd ?? Infinity) - (b.costPerMillionUsd ?? Infinity)
    || a.p50Ms - b.p50Ms);
}

export function formatReportMarkdown(r: Report): string {
  const lines: string[] = ['## retarget report', ''];
  lines.push('| machine | CPU | arch | cores | threads | $ / hour | watts |', '|---|---|---|---:|---:|---:|---:|');
  for (const m of r.machines) {
    lines.push(`| ${mdEscape(m.machine)}${m.machine === r.baselineMachine ? ' (baseline)' : ''} | ${mdEscape(m.cpuModel)} | ${m.arch} | ${m.cores} | ${m.threads} | ${m.usdPerHour !== undefined ? fmtUsd(m.usdPerHour) : 'n/a'} | ${m.watts ?? 'n/a'} |`);
  }
  lines.push('');
  lines.push(`| ${REPORT_HEADERS.join(' | ')} |`, '|---|---|---|---:|---:|---:|---:|---:|---:|');
  for (const row of sortedRows(r)) lines.push(`| ${reportCells(row, r.baselineMachine).map(mdEscape).join(' | ')} |`);
  lines.push('');
  lines.push('Cost per million inferences = $/hour ÷ 3600 ÷ throughput × 10⁶ (one stream at the benchmarked batch and threads); energy = watts ÷ throughput. Generation results (`bench --generate`) are per decoded token.'
    + (r.baselineMachine ? ` Savings and speedup are against the same model on ${r.baselineMachine}.` : ''));
  lines.push('');
  for (const w of r.warnings) lines.push(`> ⚠️ ${mdEscape(w)}`, '');
  return lines.join('\n');
}
