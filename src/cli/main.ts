#!/usr/bin/env node
/**
 * The `retarget` command. Exit codes: 0 ok, 1 failure (bad model, unreadable file, ...), 2 usage.
 * Errors are one line naming the file and the problem; `--verbose` adds the stack trace.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError } from 'commander';
import { BenchOptionError, benchOptionsFromCli, runBench } from '../bench/bench.js';
import { formatBenchMarkdown, formatBenchTable, progressBar } from '../bench/format.js';
import { compareResults, formatCompareMarkdown, parseThreshold, ThresholdError, type Thresholds } from '../bench/gate.js';
import { renderReportHtml } from '../bench/html.js';
import { formatJUnit } from '../bench/junit.js';
import { buildReport, formatReportMarkdown, loadBenchResult, loadPrices, ReportUsageError, type Report } from '../bench/report.js';
import { bisect, TOLERANCES, validate, type Tolerance, type ValidationResult } from '../bench/validate.js';
import { compile, CompileError } from '../compile.js';
import { intInputRanges, syntheticInputs } from '../inputs.js';
import { cloneModel } from '../ir/clone.js';
import { readInputSets } from '../node/inputs.js';
import { readModel, writeModel, writeTextAtomic } from '../node/files.js';
import { onnxruntimeNode } from '../node/ort.js';
import { loadPlugin } from '../node/plugins.js';
import { hostTarget, detectHost } from '../node/host.js';
import type { QuantizeOptions } from '../pass/pass.js';
import { inputLayoutPass } from '../../passes/apply-input-layout.js';
import { checkCapabilities } from '../../targets/capabilities/check.js';
import { findTarget, TARGETS } from '../../targets/index.js';
import { analyzeSplit, buildSplit, calibrateRanges, chooseCut, compareComposed, DEFAULT_HARDWARE, formatCutTable, parseBandwidth, rankCuts, splitRecord, SplitError, WIRE_FORMATS, type Hardware, type WireFormat } from '../split/index.js';
import { DimSpecError, parseDims } from './dims.js';
import { formatBytes, formatShapes, formatSummary, inferForInspect, summarize } from './inspect.js';

class UsageError extends Error {}

function packageVersion(): string {
  try {
    const pkg = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../package.json');
    return (JSON.parse(fs.readFileSync(pkg, 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

function toJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v), 2);
}

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('retarget')
    .description('Compile ONNX models for the hardware they will run on, with proof.')
    .version(packageVersion())
    .option('--verbose', 'print stack traces with errors')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();

  program
    .command('inspect')
    .description('print what a model holds: IR version, opsets, inputs/outputs, op histogram, parameters')
    .argument('<model>', 'ONNX model file')
    .option('--json', 'print JSON instead of text')
    .option('--shapes', "infer and print every value's type and shape")
    .option('--dim <name=size,...>', 'pin symbolic dims for --shapes, e.g. batch=1,seq=64 (repeatable)', (v: string, prev: string[]) => [...prev, v], [] as string[])
    .action((file: string, opts: { json?: boolean; shapes?: boolean; dim: string[] }) => {
      const dims = parseDimsOrUsage(opts.dim);
      if (opts.dim.length && !opts.shapes) throw new UsageError('--dim needs --shapes');
      const loaded = readModel(file);
      const summary = summarize(loaded.model, file, loaded.fileSize, loaded.externalFiles);
      if (!opts.shapes) {
        process.stdout.write(`${opts.json ? toJson(summary) : formatSummary(summary)}\n`);
        return;
      }
      const shapes = inferForInspect(loaded.model, dims);
      if (opts.json) process.stdout.write(`${toJson({ ...summary, ...shapes })}\n`);
      else process.stdout.write(`${formatSummary(summary)}\n${formatShapes(shapes)}\n`);
    });

  program
    .command('convert')
    .description('read a model into the IR and write it back (a lossless round trip)')
    .argument('<input>', 'ONNX model file')
    .requiredOption('-o, --output <file>', 'output model file')
    .option('--external-data [file]', 'write tensor data to a separate file (default: OUTPUT.data next to the output)')
    .option('--external-threshold <bytes>', 'tensors smaller than this stay inline with --external-data', '1024')
    .action((input: string, opts: { output: string; externalData?: boolean | string; externalThreshold: string }) => {
      const threshold = Number(opts.externalThreshold);
      if (!Number.isInteger(threshold) || threshold < 0) throw new UsageError(`--external-threshold: '${opts.externalThreshold}' is not a byte count`);
      if (typeof opts.externalData === 'string' && (path.isAbsolute(opts.externalData) || opts.externalData.includes('..') || opts.externalData.includes('/'))) {
        throw new UsageError(`--external-data: '${opts.externalData}' must be a file name (it is written next to the output)`);
      }
      const dataName = typeof opts.externalData === 'string' ? opts.externalData : opts.externalData ? `${path.basename(opts.output)}.data` : undefined;
      if (dataName !== undefined) {
        const dataPath = path.resolve(path.dirname(opts.output), dataName);
        if (dataPath === path.resolve(input)) throw new UsageError(`--external-data: '${dataName}' would overwrite the input model`);
        if (dataPath === path.resolve(opts.output)) throw new UsageError(`--external-data: '${dataName}' is the output model itself`);
      }
      const loaded = readModel(input);
      const written = writeModel(loaded.model, opts.output, {
        ...(opts.externalData !== undefined ? { externalData: opts.externalData } : {}),
        externalThreshold: threshold,
      });
      const data = written.dataPath ? ` + ${written.dataPath} (${formatBytes(written.dataSize ?? 0)})` : '';
      process.stderr.write(`wrote ${written.path} (${formatBytes(written.size)})${data}\n`);
    });

  program
    .command('compile')
    .description("run a target's passes on a model and write the result")
    .argument('<model>', 'ONNX model file')
    .requiredOption('-o, --output <file>', 'output model file')
    .option('-t, --target <name>', `target (${TARGETS.map((t) => t.name).join(', ')})`, 'portable')
    .option('--report <file>', 'write a JSON report: each pass with time and changes, before/after stats')
    .option('--dim <name=size,...>', 'fix symbolic dims, e.g. batch=1,seq=64 (repeatable)', collect, [] as string[])
    .option('--plugin <file>', 'load passes/targets from an ESM module (repeatable)', collect, [] as string[])
    .option('--passes <a,b,c>', 'run exactly these passes, in this order')
    .option('--disable-pass <name>', 'leave a pass out of the pipeline (repeatable)', collect, [] as string[])
    .option('--verify-each', 'verify the IR after every pass')
    .option('--dump-after <pass>', 'print the IR to stderr after this pass (repeatable)', collect, [] as string[])
    .option('--stop-after-rewrites <n>', 'stop after N rewrites (bisect a rewrite that breaks a model)')
    .option('--explain', 'print why rewrites did not fire, and why passes were skipped for the target')
    .option('--explain-fusions', 'the same as --explain (why a fusion did not fire: which condition failed, at which node)')
    .option('--no-validate', 'do not check the compiled model against the original')
    .option('--tolerance <kind>', `validation tolerance: ${Object.keys(TOLERANCES).join(', ')}`, 'fp32')
    .option('--validate-inputs <dir>', 'validate on these inputs (test_data_set_* or .npy) instead of synthetic ones')
    .option('--quantize <mode>', 'lower precision: dynamic, static, int4, fp16 (the target decides the format)')
    .option('--calibration <dir>', '--quantize static: calibration inputs (test_data_set_* folders or .npy); default: synthetic, with a warning')
    .option('--calibration-method <m>', 'minmax, percentile or entropy', 'minmax')
    .option('--keep-float <names>', 'nodes (names or op types) that stay float, comma separated')
    .option('--block-size <n>', '--quantize int4: block size along K', '32')
    .option('--asymmetric', '--quantize int4: store zero points')
    .option('--fp16-io', '--quantize fp16: float16 model inputs and outputs too')
    .option('--debug-quant', '--quantize static: a per-layer error table in the report')
    .option('--accuracy-budget <cosine>', 'lowest cosine similarity accepted for a quantized model (default: int8 0.99, int4 0.98)')
    .option('--input-layout <layout>', 'NHWC: image inputs arrive channels-last (NAME=NHWC for one input)')
    .option('--external-data [file]', 'write tensor data to a separate file')
    .action(async (file: string, opts: CompileCliOptions) => {
      const dims = parseDimsOrUsage(opts.dim);
      let stopAfter: number | undefined;
      if (opts.stopAfterRewrites !== undefined) {
        stopAfter = Number(opts.stopAfterRewrites);
        if (!Number.isInteger(stopAfter) || stopAfter < 0) throw new UsageError(`--stop-after-rewrites: '${opts.stopAfterRewrites}' is not a count`);
      }
      const plugins = [];
      for (const p of opts.plugin) plugins.push(await loadPlugin(p));
      const pluginPasses = plugins.flatMap((p) => p.passes);
      const target = opts.target === 'host' ? hostTarget() : findTarget(opts.target, plugins.flatMap((p) => p.targets));
      if (!target) throw new UsageError(`unknown target '${opts.target}' (known: ${[...TARGETS.map((t) => t.name), 'host'].join(', ')})`);
      const quantize = quantizeFromCli(opts);
      const layouts = inputLayoutsFromCli(opts.inputLayout);
      const calibration = opts.calibration && quantize ? readInputSets(readModel(file).model, opts.calibration).map((s) => s.feeds) : undefined;
      if (calibration && quantize) quantize.calibration = calibration;
      if (!(opts.tolerance in TOLERANCES)) throw new UsageError(`--tolerance: '${opts.tolerance}' is not one of ${Object.keys(TOLERANCES).join(', ')}`);
      const loaded = readModel(file);
      const original = opts.validate ? cloneModel(loaded.model) : undefined;
      let report;
      try {
        report = await compile(loaded.model, target, {
          dims,
          ...(quantize ? { quantize } : {}),
          ...(layouts ? { before: [inputLayoutPass(layouts)] } : {}),
          runtime: onnxruntimeNode,
          ...(opts.passes ? { passes: opts.passes.split(',').map((s) => s.trim()).filter(Boolean) } : {}),
          disablePasses: opts.disablePass,
          plugins: pluginPasses,
          verifyEach: !!opts.verifyEach,
          dumpAfter: opts.dumpAfter,
          onDump: (pass, text) => process.stderr.write(`--- IR after ${pass}\n${text}\n`),
          ...(stopAfter !== undefined ? { stopAfterRewrites: stopAfter } : {}),
          ...(opts.explain || opts.explainFusions ? { onExplain: (pass: string, msg: string) => process.stderr.write(`[${pass}] ${msg}\n`) } : {}),
        });
      } catch (e) {
        if (e instanceof CompileError && /unknown pass|allows level|cannot run --quantize/.test(e.message)) throw new UsageError(e.message);
        throw new Error(`${file}: ${(e as Error).message}`);
      }
      if (report.violations.length) {
        const v = report.violations;
        if (opts.report) writeTextAtomic(opts.report, `${toJson({ input: file, output: opts.output, ...report })}\n`);
        throw new Error(`${file}: ${v.length} node(s) target '${target.name}' cannot run: ${v.slice(0, 3).map((x) => `${x.node} ${x.domain}::${x.op} (${x.reason})`).join('; ')}${v.length > 3 ? '; ...' : ''}; nothing written`);
      }
      let validation: ValidationResult | undefined;
      if (original && !opts.inputLayout) {
        validation = await validate(original, loaded.model, onnxruntimeNode, {
          dims,
          tolerance: toleranceFor(opts.tolerance, quantize?.mode, opts.accuracyBudget),
          ...(opts.validateInputs ? { inputs: readInputSets(original, opts.validateInputs) } : {}),
        });
      }
      const fullReport = { input: file, output: opts.output, ...report, ...(validation ? { validation } : {}) };
      if (validation && !validation.ok) {
        if (opts.report) writeTextAtomic(opts.report, `${toJson(fullReport)}\n`);
        const w = validation.worst!;
        const why = `output '${w.output}' on ${w.source}: ${w.problem}`;
        if (quantize) {
          // a quantized model that misses its accuracy budget is kept aside for inspection
          const rejected = writeModel(loaded.model, `${opts.output}.rejected`, opts.externalData !== undefined ? { externalData: opts.externalData } : {});
          throw new Error(`${file}: the ${quantize.mode} model misses its accuracy budget (${validation.tolerance.name}): ${why}; written to ${rejected.path} instead (--accuracy-budget sets the budget)`);
        }
        throw new Error(`${file}: the compiled model fails validation (${validation.tolerance.name}): ${why}; nothing written (--no-validate writes it anyway; 'retarget validate --bisect' finds the first diverging value)`);
      }
      const written = writeModel(loaded.model, opts.output, opts.externalData !== undefined ? { externalData: opts.externalData } : {});
      if (opts.report) writeTextAtomic(opts.report, `${toJson(fullReport)}\n`);
      const b = report.before, a = report.after;
      process.stderr.write(`compiled for ${target.name}: ${b.nodes} -> ${a.nodes} nodes, ${formatBytes(b.parameterBytes)} -> ${formatBytes(a.parameterBytes)} parameters, ${report.rewrites} rewrites in ${report.timeMs} ms; wrote ${written.path}\n`);
      if (report.stoppedAt) process.stderr.write(`stopped after ${report.rewrites} rewrites; the last one: ${report.stoppedAt}\n`);
      for (const w of report.warnings) process.stderr.write(`warning: ${w}\n`);
      for (const p of report.passes) if (p.skipped && (opts.explain || opts.explainFusions)) process.stderr.write(`skipped ${p.name}: ${p.skipped}\n`);
      if (validation) process.stderr.write(`validated (${validation.tolerance.name}) on ${validation.cases.length} input set(s): worst output '${validation.worst?.output}' max abs error ${validation.worst?.maxAbsError.toExponential(2)}, cosine ${validation.worst?.cosine.toFixed(7)}\n`);
    });

  program
    .command('validate')
    .description('run two models on the same inputs and compare every output')
    .argument('<reference>', 'the reference model (e.g. the original)')
    .argument('<candidate>', 'the model to check (e.g. the compiled one)')
    .option('--inputs <dir>', 'test_data_set_* folders (input_N.pb) or .npy files; default: seeded synthetic inputs')
    .option('--dim <name=size,...>', 'pin symbolic dims (repeatable); others are swept over two sizes', collect, [] as string[])
    .option('--seed <n>', 'seed of the synthetic inputs', '0')
    .option('--tolerance <kind>', `${Object.keys(TOLERANCES).join(', ')}`, 'fp32')
    .option('--bisect', 'if an output differs, find the first intermediate value that diverges')
    .option('--json <file>', 'write the result as JSON')
    .action(async (refFile: string, candFile: string, opts: { inputs?: string; dim: string[]; seed: string; tolerance: string; bisect?: boolean; json?: string }) => {
      const dims = parseDimsOrUsage(opts.dim);
      if (!(opts.tolerance in TOLERANCES)) throw new UsageError(`--tolerance: '${opts.tolerance}' is not one of ${Object.keys(TOLERANCES).join(', ')}`);
      const seed = Number(opts.seed);
      if (!Number.isInteger(seed)) throw new UsageError(`--seed: '${opts.seed}' is not an integer`);
      const ref = readModel(refFile).model;
      const cand = readModel(candFile).model;
      const inputs = opts.inputs ? readInputSets(ref, opts.inputs) : undefined;
      const result = await validate(ref, cand, onnxruntimeNode, { dims, seed, tolerance: opts.tolerance, ...(inputs ? { inputs } : {}) });
      const lines: string[] = [];
      for (const c of result.cases) {
        lines.push(`${c.ok ? 'ok  ' : 'FAIL'} ${c.source}`);
        for (const o of c.outputs) {
          const top = o.top1 !== undefined ? `  top1 ${(o.top1 * 100).toFixed(1)}%  top5 ${(o.top5! * 100).toFixed(1)}%` : '';
          lines.push(`     ${o.ok ? 'ok  ' : 'FAIL'} ${o.name} [${o.shape.join(',')}]  max|err| ${o.maxAbsError.toExponential(2)}  mean|err| ${o.meanAbsError.toExponential(2)}  cos ${o.cosine.toFixed(7)}  snr ${Number.isFinite(o.snrDb) ? `${o.snrDb.toFixed(1)} dB` : 'inf'}${top}${o.problem ? `  (${o.problem})` : ''}`);
        }
      }
      let bisected;
      if (!result.ok && opts.bisect) {
        const failing = result.cases.find((c) => !c.ok)!;
        const feeds = inputs?.find((s) => s.source === failing.source)?.feeds
          ?? syntheticInputs(ref, { seed, dims: failing.dims, intRanges: intInputRanges(ref) });
        bisected = await bisect(ref, cand, onnxruntimeNode, feeds, opts.tolerance);
        lines.push(bisected
          ? `first divergence: '${bisected.value}' (reference ${bisected.refNode}, candidate ${bisected.candNode}): ${bisected.metrics.problem} (${bisected.compared} shared values compared)`
          : 'bisect: every value both models share agrees; the difference is in values only the candidate has');
      }
      process.stdout.write(`${lines.join('\n')}\n${result.ok ? 'PASS' : 'FAIL'} (${result.tolerance.name})\n`);
      if (opts.json) writeTextAtomic(opts.json, `${toJson({ reference: refFile, candidate: candFile, ...result, ...(bisected ? { bisect: bisected } : {}) })}\n`);
      if (!result.ok) process.exitCode = 1;
    });

  program
    .command('bench')
    .description('time models with onnxruntime (CPU), interleaved: latency percentiles, throughput, GFLOP/s, ratios vs the first model')
    .argument('<models...>', 'ONNX model files; the first is the baseline for ratios')
    .option('--runs <n>', 'timed rounds, each running every model once', '50')
    .option('--warmup <n>', 'untimed runs per model before timing', '5')
    .option('--time-budget <seconds>', 'stop timing after this long (after at least 5 rounds)')
    .option('--session-runs <n>', 'session creations per model, each timed', '3')
    .option('--threads <n>', 'intra-op threads (default: all cores)')
    .option('--dim <name=size,...>', 'symbolic input dims, e.g. batch=1,sequence=64 (repeatable)', collect, [] as string[])
    .option('--inputs <dir>', 'inputs from a folder (test_data_set_*/input_N.pb, input_N.pb or .npy) instead of synthetic ones')
    .option('--seed <n>', 'seed of the synthetic inputs and of the bootstrap', '0')
    .option('--json <file>', 'write the results as JSON (schema retarget-bench/1)')
    .option('--markdown <file>', 'write a Markdown table (for a pull-request comment)')
    .option('--machine <label>', 'label for this machine (default: the host name)')
    .option('--target <name>', 'the target the models were compiled for (recorded only)')
    .option('--name <a,b,...>', 'labels for the models, in order (default: file names)')
    .option('--tolerance <kind>', 'how outputs are judged against the first model: fp32, fp16, int8, int4', 'fp32')
    .action(async (files: string[], opts: Parameters<typeof benchOptionsFromCli>[0] & { dim: string[]; json?: string; markdown?: string }) => {
      const dims = parseDimsOrUsage(opts.dim);
      let parsed;
      try {
        parsed = benchOptionsFromCli(opts);
      } catch (e) {
        if (e instanceof BenchOptionError) throw new UsageError(e.message);
        throw e;
      }
      const bar = process.stderr.isTTY ? progressBar(process.stderr) : undefined;
      let result;
      try {
        result = await runBench(files, { ...parsed, dims, ...(bar ? { onProgress: bar.update } : {}) });
      } catch (e) {
        if (e instanceof BenchOptionError) throw new UsageError(e.message);
        throw e;
      } finally {
        bar?.done();
      }
      process.stdout.write(`${formatBenchTable(result)}\n`);
      if (opts.json) writeTextAtomic(opts.json, `${JSON.stringify(result, null, 2)}\n`);
      if (opts.markdown) writeTextAtomic(opts.markdown, formatBenchMarkdown(result));
    });

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
      if (check.minCosine < tolerance.minCosine || (wire === 'fp32' && check.maxAbsError > 1e-3)) {
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

  program
    .command('targets')
    .description('list the targets (host: the one this machine gets)')
    .option('--json', 'print JSON')
    .action((opts: { json?: boolean }) => {
      const host = detectHost();
      if (opts.json) {
        const slim = TARGETS.map(({ capabilities, ...t }) => ({ ...t, ...(capabilities ? { capabilities: { source: capabilities.source, domains: capabilities.domains, ops: Object.keys(capabilities.kernels).length } } : {}) }));
        process.stdout.write(`${toJson({ targets: slim, host: { chosen: host.chosen, why: host.why } })}\n`);
        return;
      }
      for (const t of TARGETS) process.stdout.write(`${t.name.padEnd(12)} ${t.description}\n`);
      process.stdout.write(`${'host'.padEnd(12)} this machine: ${host.chosen} (${host.why})\n`);
    });

  program
    .command('check')
    .description("check that a target can run every node of a model (its capability table)")
    .argument('<model>', 'ONNX model file')
    .requiredOption('-t, --target <name>', 'target')
    .option('--json', 'print JSON')
    .action((file: string, opts: { target: string; json?: boolean }) => {
      const target = opts.target === 'host' ? hostTarget() : findTarget(opts.target);
      if (!target) throw new UsageError(`unknown target '${opts.target}' (known: ${[...TARGETS.map((t) => t.name), 'host'].join(', ')})`);
      const { model } = readModel(file);
      const violations = target.capabilities ? checkCapabilities(model, target.capabilities) : [];
      if (opts.json) process.stdout.write(`${toJson({ model: file, target: target.name, source: target.capabilities?.source ?? null, ok: violations.length === 0, violations })}\n`);
      else {
        for (const v of violations) process.stdout.write(`${v.node}  ${v.domain}::${v.op}  ${v.reason}\n`);
        process.stdout.write(violations.length ? `${violations.length} node(s) ${target.name} cannot run\n` : `ok: ${target.name} can run every node${target.capabilities ? '' : ' (no capability table: any standard op)'}\n`);
      }
      if (violations.length) process.exitCode = 1;
    });

  program
    .command('compare')
    .description('compare two `retarget bench --json` results (a CI gate): exit 1 on a regression beyond noise')
    .argument('<baseline>', 'the baseline bench result (JSON)')
    .argument('<current>', 'the current bench result (JSON)')
    .option('--max-regression <t>', 'latency: a regression when the 95% CI of current/baseline is entirely above 1 + t (5% or 0.05)', '5%')
    .option('--max-size-growth <t>', 'model size: a regression when it grows by more than t', '5%')
    .option('--max-accuracy-drop <t>', 'accuracy (when both runs measured it): a regression when the cosine drops by more than t, or outputs stop being ok', '0.001')
    .option('--markdown <file>', 'also write the Markdown summary to a file')
    .option('--junit <file>', 'write JUnit XML (one testcase per model and check) for CI test reporters')
    .action((baselineFile: string, currentFile: string, opts: { maxRegression: string; maxSizeGrowth: string; maxAccuracyDrop: string; markdown?: string; junit?: string }) => {
      let thresholds: Thresholds;
      try {
        thresholds = {
          maxRegression: parseThreshold(opts.maxRegression, '--max-regression'),
          maxSizeGrowth: parseThreshold(opts.maxSizeGrowth, '--max-size-growth'),
          maxAccuracyDrop: parseThreshold(opts.maxAccuracyDrop, '--max-accuracy-drop'),
        };
      } catch (e) {
        if (e instanceof ThresholdError) throw new UsageError(e.message);
        throw e;
      }
      const comparison = compareResults(loadBenchResult(baselineFile), loadBenchResult(currentFile), thresholds);
      if (comparison.environmentDifferences.length) {
        process.stderr.write(`warning: the environments differ (${comparison.environmentDifferences.join('; ')}): the ratios compare different hardware or settings\n`);
      }
      const markdown = formatCompareMarkdown(comparison, { baseline: baselineFile, current: currentFile });
      process.stdout.write(markdown);
      if (opts.markdown) writeTextAtomic(opts.markdown, markdown);
      if (opts.junit) writeTextAtomic(opts.junit, formatJUnit(comparison));
      const n = comparison.failures.length;
      if (n) throw new Error(`${n} regression${n === 1 ? '' : 's'}: ${comparison.failures.join('; ')}`);
    });

  program
    .command('report')
    .description('merge bench results from several machines and targets: latency, throughput, cost per million inferences, energy, savings')
    .argument('<results...>', 'bench results (JSON) from `retarget bench --json`')
    .option('--prices <file>', 'JSON keyed by environment.machine: { "c7g.xlarge": { "usdPerHour": 0.145, "watts": 30 } }')
    .option('--baseline <machine>', "the machine that savings are computed against (default: the first file's)")
    .option('--markdown <file>', 'also write the Markdown report to a file')
    .option('--html <file>', 'write a self-contained HTML page (tables, SVG charts; no scripts)')
    .action((files: string[], opts: { prices?: string; baseline?: string; markdown?: string; html?: string }) => {
      const prices = opts.prices ? loadPrices(opts.prices) : {};
      const inputs = files.map((file) => ({ file, result: loadBenchResult(file) }));
      let report: Report;
      try {
        report = buildReport(inputs, prices, opts.baseline !== undefined ? { baseline: opts.baseline } : {});
      } catch (e) {
        if (e instanceof ReportUsageError) throw new UsageError(e.message);
        throw e;
      }
      for (const w of report.warnings) process.stderr.write(`warning: ${w}\n`);
      const markdown = formatReportMarkdown(report);
      process.stdout.write(markdown);
      if (opts.markdown) writeTextAtomic(opts.markdown, markdown);
      if (opts.html) writeTextAtomic(opts.html, renderReportHtml(report, { generatedAt: new Date().toISOString() }));
    });

  return program;
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

interface CompileCliOptions {
  output: string;
  target: string;
  report?: string;
  dim: string[];
  plugin: string[];
  passes?: string;
  disablePass: string[];
  verifyEach?: boolean;
  dumpAfter: string[];
  stopAfterRewrites?: string;
  explain?: boolean;
  explainFusions?: boolean;
  validate: boolean;
  tolerance: string;
  validateInputs?: string;
  quantize?: string;
  calibration?: string;
  calibrationMethod: string;
  keepFloat?: string;
  blockSize: string;
  asymmetric?: boolean;
  fp16Io?: boolean;
  debugQuant?: boolean;
  accuracyBudget?: string;
  inputLayout?: string;
  externalData?: boolean | string;
}

const QUANT_MODES = ['dynamic', 'static', 'int4', 'fp16'] as const;

function quantizeFromCli(opts: CompileCliOptions): QuantizeOptions | undefined {
  if (opts.quantize === undefined) {
    if (opts.calibration || opts.debugQuant || opts.fp16Io || opts.accuracyBudget) throw new UsageError('--calibration, --debug-quant, --fp16-io and --accuracy-budget need --quantize');
    return undefined;
  }
  const mode = opts.quantize as QuantizeOptions['mode'];
  if (!QUANT_MODES.includes(mode)) throw new UsageError(`--quantize: '${opts.quantize}' is not one of ${QUANT_MODES.join(', ')}`);
  const method = opts.calibrationMethod as NonNullable<QuantizeOptions['method']>;
  if (!['minmax', 'percentile', 'entropy'].includes(method)) throw new UsageError(`--calibration-method: '${method}' is not minmax, percentile or entropy`);
  const blockSize = Number(opts.blockSize);
  if (!Number.isInteger(blockSize) || blockSize < 16 || (blockSize & (blockSize - 1)) !== 0) throw new UsageError(`--block-size: '${opts.blockSize}' is not a power of two >= 16`);
  return {
    mode,
    method,
    blockSize,
    symmetric: !opts.asymmetric,
    ...(opts.keepFloat ? { keepFloat: opts.keepFloat.split(',').map((s) => s.trim()).filter(Boolean) } : {}),
    ...(opts.fp16Io ? { fp16Io: true } : {}),
    ...(opts.debugQuant ? { debug: true } : {}),
    report: {},
  };
}

/** The validation tolerance: the one asked for, or the quantization mode's, with --accuracy-budget as its cosine floor. */
function toleranceFor(asked: string, mode: QuantizeOptions['mode'] | undefined, budget: string | undefined): Tolerance {
  const base = TOLERANCES[mode === 'dynamic' || mode === 'static' ? 'int8' : mode === 'int4' ? 'int4' : mode === 'fp16' ? 'fp16' : asked]!;
  if (budget === undefined) return base;
  const c = Number(budget);
  if (!(c > 0 && c <= 1)) throw new UsageError(`--accuracy-budget: '${budget}' is not a cosine similarity in (0, 1]`);
  const { atol: _a, rtol: _r, ...rest } = base;
  return { ...rest, name: `${base.name}, cosine >= ${c}`, minCosine: c };
}

/** --input-layout NHWC (every 4-D float input) or NAME=NHWC,... */
function inputLayoutsFromCli(spec: string | undefined): Record<string, 'NHWC' | 'NCHW'> | undefined {
  if (spec === undefined) return undefined;
  const out: Record<string, 'NHWC' | 'NCHW'> = {};
  for (const part of spec.split(',')) {
    const [name, layout] = part.includes('=') ? part.split('=') as [string, string] : ['*', part];
    const l = layout.trim().toUpperCase();
    if (l !== 'NHWC' && l !== 'NCHW') throw new UsageError(`--input-layout: '${part}' is not NHWC, NCHW or NAME=NHWC`);
    out[name.trim()] = l;
  }
  return out;
}

/**
 * Errors from deep inside (onnxruntime's own messages, say) do not name the model: prefix the file
 * the command was given, unless the message already names it or it is a usage error.
 */
function namingFile<O>(action: (file: string, opts: O) => Promise<void>): (file: string, opts: O) => Promise<void> {
  return async (file, opts) => {
    try {
      await action(file, opts);
    } catch (e) {
      if (e instanceof UsageError || !(e instanceof Error) || e.message.includes(file)) throw e;
      throw new Error(`${file}: ${e.message}`);
    }
  };
}

function collect(v: string, prev: string[]): string[] {
  return [...prev, v];
}

function parseDimsOrUsage(specs: string[]): Record<string, number> {
  try {
    return parseDims(specs);
  } catch (e) {
    if (e instanceof DimSpecError) throw new UsageError(e.message);
    throw e;
  }
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  const verbose = argv.includes('--verbose');
  try {
    await program.parseAsync(argv, { from: 'user' });
    // a command may report failure without an error (validate: outputs differ)
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      // help and version exit with 0; commander has already printed usage errors
      return e.exitCode === 0 ? 0 : 2;
    }
    if (e instanceof UsageError) {
      process.stderr.write(`retarget: ${e.message}\n`);
      return 2;
    }
    const err = e as Error;
    process.stderr.write(`retarget: ${err.message.split('\n')[0]}\n`);
    if (verbose && err.stack) process.stderr.write(`${err.stack}\n`);
    return 1;
  }
}

const invoked = process.argv[1] ? fs.realpathSync(process.argv[1]) : '';
if (invoked === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).then((code) => { process.exitCode = code; });
}
