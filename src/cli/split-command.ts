/** `retarget split`: cut a model between a device and the cloud. */
import type { Command } from 'commander';
import fs from 'node:fs';
import path from 'node:path';
import { TOLERANCES } from '../bench/validate.js';
import { compile } from '../compile.js';
import { intInputRanges, syntheticInputs } from '../inputs.js';
import { readInputSets } from '../node/inputs.js';
import { readModel, writeModel, writeTextAtomic } from '../node/files.js';
import { onnxruntimeNode } from '../node/ort.js';
import { hostTarget } from '../node/host.js';
import { findTarget, TARGETS } from '../../targets/index.js';
import { analyzeSplit, buildSplit, calibrateRanges, chooseCut, compareComposed, DEFAULT_HARDWARE, formatCutTable, parseBandwidth, rankCuts, splitRecord, SplitError, WIRE_FORMATS, type Cut, type Hardware, type SplitAnalysis, type SplitModels, type SplitRecord, type WireFormat } from '../split/index.js';
import { asReported, RefusedError, RetargetError } from '../errors.js';
import type { Target } from '../target.js';
import type { Tensor } from '../ir/tensor.js';
import { collect, namingFile, parseDimsOrUsage, toJson, UsageError } from './shared.js';

export function registerSplit(program: Command): void {
  program
    .command('split')
    .description('split a model between a device (edge) and the cloud, where little crosses the network')
    .argument('<model>', 'ONNX model file')
    .option('--edge-target <name>', 'target of the device part')
    .option('--cloud-target <name>', 'target of the cloud part')
    .option('-o, --output <dir>', 'output folder: edge.onnx, cloud.onnx, split.json')
    .option('--dim <name=size,...>', 'pin symbolic dims, e.g. batch=1,sequence=64 (repeatable; unpinned dims count as 1)', collect, [] as string[])
    .option('--edge-gflops <g>', 'device speed, GFLOP/s', String(DEFAULT_HARDWARE.edgeGflops))
    .option('--cloud-gflops <g>', 'cloud speed, GFLOP/s', String(DEFAULT_HARDWARE.cloudGflops))
    .option('--bandwidth <rate[,rate]>', 'uplink, e.g. 20Mbit/s or 1Gbit/s; with --list, several give one column each (the first chooses)', '20Mbit/s')
    .option('--rtt <ms>', 'network round trip, ms', String(DEFAULT_HARDWARE.rttMs))
    .option('--at <value[,value]>', 'cut at these values instead of choosing')
    .option('--max-edge-flops <n>', 'the best cut whose device part needs at most N FLOPs')
    .option('--list', 'print the best candidate cuts as a table and write nothing')
    .option('--top <n>', 'rows of --list', '10')
    .option('--wire <format>', `format of the crossing tensors: ${WIRE_FORMATS.join(', ')}`, 'fp32')
    .option('--inputs <dir>', 'inputs for validation and int8 calibration (test_data_set_* or .npy); default: seeded synthetic inputs')
    .action(namingFile(async (file: string, opts: SplitCliOptions) => {
      const settings = splitSettings(opts);
      const { model } = readModel(file);
      const analysis = analyzeSplit(model, settings.dims);
      if (opts.list) {
        listCuts(file, analysis, settings);
        return;
      }
      const cut = pickCut(file, analysis, settings);
      const inputs = opts.inputs
        ? readInputSets(model, opts.inputs)
        : [0, 1].map((seed) => ({ source: `synthetic seed ${seed}`, feeds: syntheticInputs(model, { seed, dims: settings.dims, intRanges: intInputRanges(model) }) }));
      const source = opts.inputs ?? 'synthetic (seeds 0, 1)';
      const { parts, record } = await buildParts(file, analysis, cut, settings, inputs, source);
      await compileParts(file, parts, settings);
      const check = await checkComposed(file, analysis, parts, settings.wire, inputs);
      record.validation = { maxAbsError: check.maxAbsError, minCosine: check.minCosine, inputs: source, tolerance: check.tolerance };
      writeSplit(opts.output!, parts, record, settings);
      const crossing = cut.crossing.map((c) => `${c.name}${c.graphInput ? ' (graph input)' : ''}`).join(', ');
      process.stderr.write(`split at ${crossing}: ${record.wire.bytes} bytes cross (${settings.wire}), edge ${(cut.edgeFlops / 1e9).toFixed(3)} GFLOPs, cloud ${(cut.cloudFlops / 1e9).toFixed(3)} GFLOPs, estimated ${record.estimate.totalMs.toFixed(1)} ms; validated edge -> cloud: max abs error ${check.maxAbsError.toExponential(2)}, cosine ${check.minCosine.toFixed(6)}; wrote ${record.edge!.file}, ${record.cloud!.file}, ${path.join(opts.output!, 'split.json')}\n`);
    }));

}

/** What the options ask for, checked (every mistake is a UsageError). */
interface SplitSettings {
  dims: Record<string, number>;
  hw: Hardware;
  bandwidths: number[];
  wire: WireFormat;
  top: number;
  maxEdgeFlops?: number;
  at?: string[];
  edgeTarget?: Target;
  cloudTarget?: Target;
}

function splitSettings(opts: SplitCliOptions): SplitSettings {
  const dims = parseDimsOrUsage(opts.dim);
  const num = (v: string, flag: string, min = 0): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < min || (min === 0 && n === 0 && flag !== '--rtt')) throw new UsageError(`${flag}: '${v}' is not a positive number`);
    return n;
  };
  let bandwidths: number[];
  try {
    bandwidths = opts.bandwidth.split(',').map((b) => parseBandwidth(b));
  } catch (e) {
    if (e instanceof SplitError) throw new UsageError(`--bandwidth: ${e.message}`);
    throw e;
  }
  const hw: Hardware = { edgeGflops: num(opts.edgeGflops, '--edge-gflops'), cloudGflops: num(opts.cloudGflops, '--cloud-gflops'), bandwidth: bandwidths[0]!, rttMs: num(opts.rtt, '--rtt') };
  if (!WIRE_FORMATS.includes(opts.wire as WireFormat)) throw new UsageError(`--wire: '${opts.wire}' is not one of ${WIRE_FORMATS.join(', ')}`);
  const top = Number(opts.top);
  if (!Number.isInteger(top) || top < 1) throw new UsageError(`--top: '${opts.top}' is not a count`);
  const maxEdgeFlops = opts.maxEdgeFlops !== undefined ? num(opts.maxEdgeFlops, '--max-edge-flops') : undefined;
  const at = opts.at?.split(',').map((s) => s.trim()).filter(Boolean);
  if (at && maxEdgeFlops !== undefined) throw new UsageError('--at and --max-edge-flops exclude each other');
  if (!opts.list) {
    if (!opts.output) throw new UsageError('-o/--output is required (or --list)');
    if (!opts.edgeTarget || !opts.cloudTarget) throw new UsageError('--edge-target and --cloud-target are required (or --list)');
  }
  const edgeTarget = targetOf(opts.edgeTarget, '--edge-target');
  const cloudTarget = targetOf(opts.cloudTarget, '--cloud-target');
  return {
    dims, hw, bandwidths, wire: opts.wire as WireFormat, top,
    ...(maxEdgeFlops !== undefined ? { maxEdgeFlops } : {}),
    ...(at ? { at } : {}),
    ...(edgeTarget ? { edgeTarget } : {}),
    ...(cloudTarget ? { cloudTarget } : {}),
  };
}

function targetOf(name: string | undefined, flag: string): Target | undefined {
  if (name === undefined) return undefined;
  const t = name === 'host' ? hostTarget() : findTarget(name);
  if (!t) throw new UsageError(`${flag}: unknown target '${name}' (known: ${[...TARGETS.map((x) => x.name), 'host'].join(', ')})`);
  return t;
}

/** --list: the best candidate cuts as a table; nothing written. */
function listCuts(file: string, analysis: SplitAnalysis, s: SplitSettings): void {
  const { hw, wire, maxEdgeFlops } = s;
  const ranked = rankCuts(analysis, hw, { wire }).filter((c) => maxEdgeFlops === undefined || c.edgeFlops <= maxEdgeFlops);
  if (analysis.unpinned.length) process.stderr.write(`note: dims ${analysis.unpinned.join(', ')} are not pinned (--dim); they count as 1\n`);
  process.stdout.write(`${file}: ${ranked.length} candidate cuts, ${(analysis.totalFlops / 1e9).toFixed(3)} GFLOPs in all; edge ${hw.edgeGflops} GFLOP/s, cloud ${hw.cloudGflops} GFLOP/s, rtt ${hw.rttMs} ms, wire ${wire}; "(input)": a graph input the cloud reads, sent as is\n`);
  process.stdout.write(`${formatCutTable(analysis, ranked.slice(0, s.top), hw, s.bandwidths)}\n`);
}

/** The cut: --at's (a mistake in it is a usage error), or the best estimate (none: the model cannot be split). */
function pickCut(file: string, analysis: SplitAnalysis, s: SplitSettings): Cut {
  try {
    return chooseCut(analysis, s.hw, { ...(s.at ? { at: s.at } : {}), ...(s.maxEdgeFlops !== undefined ? { maxEdgeFlops: s.maxEdgeFlops } : {}), wire: s.wire });
  } catch (e) {
    if (e instanceof SplitError && s.at) throw new UsageError(e.message);
    if (e instanceof SplitError) throw new RefusedError(undefined, e.message, { file }, { cause: e });
    throw e;
  }
}

type InputSets = { source: string; feeds: Record<string, Tensor> }[];

/** The edge and cloud models (int8 wire: calibrated on `inputs`) and the record of the split, with the wire format's own error. */
async function buildParts(file: string, analysis: SplitAnalysis, cut: Cut, s: SplitSettings, inputs: InputSets, source: string): Promise<{ parts: SplitModels; record: SplitRecord }> {
  const { wire } = s;
  let ranges: Record<string, number> | undefined;
  if (wire === 'int8') ranges = await calibrateRanges(buildSplit(analysis, cut).edge, onnxruntimeNode, inputs.map((x) => x.feeds));
  const parts = buildSplit(analysis, cut, { wire, ...(ranges ? { ranges } : {}) });
  const record = splitRecord(file, analysis, cut, s.hw, s.at ? 'at' : s.maxEdgeFlops !== undefined ? 'max-edge-flops' : 'estimate', wire);
  const scales = Object.fromEntries(parts.wire.filter((w) => w.scale !== undefined).map((w) => [w.value, w.scale!]));
  if (Object.keys(scales).length) record.wire.scales = scales;
  if (wire !== 'fp32') {
    const plain = await compareComposed(analysis.model, parts.edge, parts.cloud, onnxruntimeNode, inputs);
    record.wireError = { maxAbsError: plain.maxAbsError, minCosine: plain.minCosine, inputs: source };
  }
  return { parts, record };
}

/** Compile each part for its target; a part its target cannot run is refused. */
async function compileParts(file: string, parts: SplitModels, s: SplitSettings): Promise<void> {
  for (const [part, target] of [[parts.edge, s.edgeTarget!], [parts.cloud, s.cloudTarget!]] as const) {
    const which = part === parts.edge ? 'edge' : 'cloud';
    let report;
    try {
      report = await compile(part, target, { dims: s.dims, runtime: onnxruntimeNode });
    } catch (e) {
      // the part's own error (a pass's, say) is the problem; this says which part
      throw new RetargetError(undefined, `compiling the ${which} part for ${target.name}: ${asReported(e).format()}`, { file }, { cause: e });
    }
    if (report.violations.length) {
      const v = report.violations[0]!;
      throw new RefusedError('check', `the ${which} part has ${report.violations.length} node(s) target '${target.name}' cannot run (${v.node} ${v.domain}::${v.op}: ${v.reason}); nothing written`, { file, node: v.node });
    }
  }
}

/** Edge then cloud against the original, within the wire format's tolerance; otherwise refused. */
async function checkComposed(file: string, analysis: SplitAnalysis, parts: SplitModels, wire: WireFormat, inputs: InputSets): Promise<{ maxAbsError: number; minCosine: number; tolerance: string }> {
  const tolerance = TOLERANCES[wire]!;
  const check = await compareComposed(analysis.model, parts.edge, parts.cloud, onnxruntimeNode, inputs);
  if ((tolerance.minCosine !== undefined && check.minCosine < tolerance.minCosine) || (wire === 'fp32' && check.maxAbsError > 1e-3)) {
    throw new RefusedError('validate-compiled', `edge -> cloud differs from the original beyond the ${tolerance.name} tolerance (max abs error ${check.maxAbsError.toExponential(2)}, cosine ${check.minCosine.toFixed(6)}); nothing written`, { file });
  }
  return { maxAbsError: check.maxAbsError, minCosine: check.minCosine, tolerance: tolerance.name };
}

/** edge.onnx, cloud.onnx and split.json into the output folder. */
function writeSplit(dir: string, parts: SplitModels, record: SplitRecord, s: SplitSettings): void {
  fs.mkdirSync(dir, { recursive: true });
  const edgeFile = path.join(dir, 'edge.onnx'), cloudFile = path.join(dir, 'cloud.onnx');
  record.edge = { file: edgeFile, target: s.edgeTarget!.name };
  record.cloud = { file: cloudFile, target: s.cloudTarget!.name };
  writeModel(parts.edge, edgeFile);
  writeModel(parts.cloud, cloudFile);
  writeTextAtomic(path.join(dir, 'split.json'), `${toJson(record)}\n`);
}

interface SplitCliOptions {
  edgeTarget?: string;
  cloudTarget?: string;
  output?: string;
  dim: string[];
  edgeGflops: string;
  cloudGflops: string;
  bandwidth: string;
  rtt: string;
  at?: string;
  maxEdgeFlops?: string;
  list?: boolean;
  top: string;
  wire: string;
  inputs?: string;
}

