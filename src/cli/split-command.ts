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
import { analyzeSplit, buildSplit, calibrateRanges, chooseCut, compareComposed, DEFAULT_HARDWARE, formatCutTable, parseBandwidth, rankCuts, splitRecord, SplitError, WIRE_FORMATS, type Hardware, type WireFormat } from '../split/index.js';
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
      const wire = opts.wire as WireFormat;
      const top = Number(opts.top);
      if (!Number.isInteger(top) || top < 1) throw new UsageError(`--top: '${opts.top}' is not a count`);
      const maxEdgeFlops = opts.maxEdgeFlops !== undefined ? num(opts.maxEdgeFlops, '--max-edge-flops') : undefined;
      const at = opts.at?.split(',').map((s) => s.trim()).filter(Boolean);
      if (at && maxEdgeFlops !== undefined) throw new UsageError('--at and --max-edge-flops exclude each other');
      if (!opts.list) {
        if (!opts.output) throw new UsageError('-o/--output is required (or --list)');
        if (!opts.edgeTarget || !opts.cloudTarget) throw new UsageError('--edge-target and --cloud-target are required (or --list)');
      }
      const targetOf = (name: string | undefined, flag: string) => {
        if (name === undefined) return undefined;
        const t = name === 'host' ? hostTarget() : findTarget(name);
        if (!t) throw new UsageError(`${flag}: unknown target '${name}' (known: ${[...TARGETS.map((x) => x.name), 'host'].join(', ')})`);
        return t;
      };
      const edgeTarget = targetOf(opts.edgeTarget, '--edge-target');
      const cloudTarget = targetOf(opts.cloudTarget, '--cloud-target');
      const { model } = readModel(file);
      const analysis = analyzeSplit(model, dims);
      if (opts.list) {
        const ranked = rankCuts(analysis, hw, { wire }).filter((c) => maxEdgeFlops === undefined || c.edgeFlops <= maxEdgeFlops);
        if (analysis.unpinned.length) process.stderr.write(`note: dims ${analysis.unpinned.join(', ')} are not pinned (--dim); they count as 1\n`);
        process.stdout.write(`${file}: ${ranked.length} candidate cuts, ${(analysis.totalFlops / 1e9).toFixed(3)} GFLOPs in all; edge ${hw.edgeGflops} GFLOP/s, cloud ${hw.cloudGflops} GFLOP/s, rtt ${hw.rttMs} ms, wire ${wire}; "(input)": a graph input the cloud reads, sent as is\n`);
        process.stdout.write(`${formatCutTable(analysis, ranked.slice(0, top), hw, bandwidths)}\n`);
        return;
      }
      let cut;
      try {
        cut = chooseCut(analysis, hw, { ...(at ? { at } : {}), ...(maxEdgeFlops !== undefined ? { maxEdgeFlops } : {}), wire });
      } catch (e) {
        if (e instanceof SplitError && at) throw new UsageError(e.message);
        throw new Error(`${file}: ${(e as Error).message}`);
      }
      const inputs = opts.inputs
        ? readInputSets(model, opts.inputs)
        : [0, 1].map((seed) => ({ source: `synthetic seed ${seed}`, feeds: syntheticInputs(model, { seed, dims, intRanges: intInputRanges(model) }) }));
      let ranges: Record<string, number> | undefined;
      if (wire === 'int8') {
        const plain = buildSplit(analysis, cut);
        ranges = await calibrateRanges(plain.edge, onnxruntimeNode, inputs.map((s) => s.feeds));
      }
      const parts = buildSplit(analysis, cut, { wire, ...(ranges ? { ranges } : {}) });
      const record = splitRecord(file, analysis, cut, hw, at ? 'at' : maxEdgeFlops !== undefined ? 'max-edge-flops' : 'estimate', wire);
      const scales = Object.fromEntries(parts.wire.filter((w) => w.scale !== undefined).map((w) => [w.value, w.scale!]));
      if (Object.keys(scales).length) record.wire.scales = scales;
      const source = opts.inputs ?? 'synthetic (seeds 0, 1)';
      if (wire !== 'fp32') {
        const plain = await compareComposed(model, parts.edge, parts.cloud, onnxruntimeNode, inputs);
        record.wireError = { maxAbsError: plain.maxAbsError, minCosine: plain.minCosine, inputs: source };
      }
      for (const [part, target] of [[parts.edge, edgeTarget!], [parts.cloud, cloudTarget!]] as const) {
        let report;
        try {
          report = await compile(part, target, { dims, runtime: onnxruntimeNode });
        } catch (e) {
          throw new Error(`${file}: compiling the ${part === parts.edge ? 'edge' : 'cloud'} part for ${target.name}: ${(e as Error).message}`);
        }
        if (report.violations.length) {
          const v = report.violations[0]!;
          throw new Error(`${file}: the ${part === parts.edge ? 'edge' : 'cloud'} part has ${report.violations.length} node(s) target '${target.name}' cannot run (${v.node} ${v.domain}::${v.op}: ${v.reason}); nothing written`);
        }
      }
      const tolerance = TOLERANCES[wire]!;
      const check = await compareComposed(model, parts.edge, parts.cloud, onnxruntimeNode, inputs);
      record.validation = { maxAbsError: check.maxAbsError, minCosine: check.minCosine, inputs: source, tolerance: tolerance.name };
      if ((tolerance.minCosine !== undefined && check.minCosine < tolerance.minCosine) || (wire === 'fp32' && check.maxAbsError > 1e-3)) {
        throw new Error(`${file}: edge -> cloud differs from the original beyond the ${tolerance.name} tolerance (max abs error ${check.maxAbsError.toExponential(2)}, cosine ${check.minCosine.toFixed(6)}); nothing written`);
      }
      fs.mkdirSync(opts.output!, { recursive: true });
      const edgeFile = path.join(opts.output!, 'edge.onnx'), cloudFile = path.join(opts.output!, 'cloud.onnx');
      record.edge = { file: edgeFile, target: edgeTarget!.name };
      record.cloud = { file: cloudFile, target: cloudTarget!.name };
      writeModel(parts.edge, edgeFile);
      writeModel(parts.cloud, cloudFile);
      writeTextAtomic(path.join(opts.output!, 'split.json'), `${toJson(record)}\n`);
      const crossing = cut.crossing.map((c) => `${c.name}${c.graphInput ? ' (graph input)' : ''}`).join(', ');
      process.stderr.write(`split at ${crossing}: ${record.wire.bytes} bytes cross (${wire}), edge ${(cut.edgeFlops / 1e9).toFixed(3)} GFLOPs, cloud ${(cut.cloudFlops / 1e9).toFixed(3)} GFLOPs, estimated ${record.estimate.totalMs.toFixed(1)} ms; validated edge -> cloud: max abs error ${check.maxAbsError.toExponential(2)}, cosine ${check.minCosine.toFixed(6)}; wrote ${edgeFile}, ${cloudFile}, ${path.join(opts.output!, 'split.json')}\n`);
    }));

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

