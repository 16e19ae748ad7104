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
import { generateOptionsFromCli, runGenerateBench } from '../bench/generate.js';
import { compareResults, formatCompareMarkdown, parseThreshold, ThresholdError, type Thresholds } from '../bench/gate.js';
import { renderReportHtml } from '../bench/html.js';
import { formatJUnit } from '../bench/junit.js';
import { buildReport, formatReportMarkdown, loadBenchResult, loadPrices, ReportUsageError, type Report } from '../bench/report.js';
import { bisect, TOLERANCES, validate } from '../bench/validate.js';
import { intInputRanges, syntheticInputs } from '../inputs.js';
import { readInputSets } from '../node/inputs.js';
import { readModel, writeModel, writeTextAtomic } from '../node/files.js';
import { onnxruntimeNode } from '../node/ort.js';
import { hostTarget, detectHost } from '../node/host.js';
import { checkPlacement, summarizeCpuPlaced, summarizeWithCasts } from '../../targets/capabilities/check.js';
import { findTarget, TARGETS } from '../../targets/index.js';
import { registerCompile } from './compile-command.js';
import { atStage, OptionError, RetargetError } from '../errors.js';
import { collect, parseDimsOrUsage, toJson, UsageError } from './shared.js';
import { registerSplit } from './split-command.js';
import { registerPlayground } from './playground-command.js';
import { formatBytes, formatShapes, formatSummary, inferForInspect, summarize } from './inspect.js';


function packageVersion(): string {
  try {
    const pkg = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../package.json');
    return (JSON.parse(fs.readFileSync(pkg, 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}


export function buildProgram(): Command {
  const program = new Command();
  program
    .name('retarget')
    .description('Compile ONNX models for the hardware they will run on, with proof.')
    .version(packageVersion())
    .option('--verbose', 'print stack traces with errors, and more detail (inspect: every subgraph)')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();

  program
    .command('inspect')
    .description('print what a model holds: IR version, opsets, inputs/outputs, op histogram, parameters')
    .argument('<model>', 'ONNX model file')
    .option('--json', 'print JSON instead of text')
    .option('--shapes', "infer and print every value's type and shape")
    .option('--dim <name=size,...>', 'pin symbolic dims for --shapes, e.g. batch=1,seq=64 (repeatable)', (v: string, prev: string[]) => [...prev, v], [] as string[])
    .action((file: string, opts: { json?: boolean; shapes?: boolean; dim: string[] }, command: Command) => {
      const verbose = !!(command.optsWithGlobals() as { verbose?: boolean }).verbose;
      const dims = parseDimsOrUsage(opts.dim);
      if (opts.dim.length && !opts.shapes) throw new UsageError('--dim needs --shapes');
      const loaded = readModel(file);
      const summary = summarize(loaded.model, file, loaded.fileSize, loaded.externalFiles);
      if (!opts.shapes) {
        process.stdout.write(`${opts.json ? toJson(summary) : formatSummary(summary, { verbose })}\n`);
        return;
      }
      let shapes;
      try {
        shapes = inferForInspect(loaded.model, dims);
      } catch (e) {
        throw atStage(e, 'shapes', { file });
      }
      if (opts.json) process.stdout.write(`${toJson({ ...summary, ...shapes })}\n`);
      else process.stdout.write(`${formatSummary(summary, { verbose })}\n${formatShapes(shapes)}\n`);
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

  registerCompile(program);

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
      let result;
      try {
        result = await validate(ref, cand, onnxruntimeNode, { dims, seed, tolerance: opts.tolerance, ...(inputs ? { inputs } : {}) });
      } catch (e) {
        if (e instanceof RetargetError) throw e.inFile(e.stage === 'validate-compiled' ? candFile : refFile);
        throw e;
      }
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
    .description('time models with onnxruntime (CPU), interleaved in blocks: latency percentiles, throughput, GFLOP/s, ratios vs the first model')
    .argument('<models...>', 'ONNX model files; the first is the baseline for ratios')
    .option('--runs <n>', 'timed runs per model', '50')
    .option('--block <n>', 'timed runs per model in a row, interleaved A..A B..B; the first run after another model is not timed (cold caches, the other session\'s threads still spinning)', '5')
    .option('--warmup <n>', 'untimed runs per model before timing', '5')
    .option('--time-budget <seconds>', 'stop timing after this long (after at least 5 timed runs per model)')
    .option('--session-runs <n>', 'session creations per model, each timed', '3')
    .option('--threads <n>', 'intra-op threads (default: all cores)')
    .option('--session-config <key=value>', 'an ONNX Runtime session config entry for every model, e.g. optimization.disable_specified_optimizers=SkipLayerNormFusion (what the CPU targets recommend; repeatable)', collect, [] as string[])
    .option('--dim <name=size,...>', 'symbolic input dims, e.g. batch=1,sequence=64 (repeatable)', collect, [] as string[])
    .option('--inputs <dir>', 'inputs from a folder (test_data_set_*/input_N.pb, input_N.pb or .npy) instead of synthetic ones')
    .option('--seed <n>', 'seed of the synthetic inputs and of the bootstrap', '0')
    .option('--json <file>', 'write the results as JSON (schema retarget-bench/1)')
    .option('--markdown <file>', 'write a Markdown table (for a pull-request comment)')
    .option('--machine <label>', 'label for this machine (default: the host name)')
    .option('--target <name>', 'the target the models were compiled for (recorded only)')
    .option('--name <a,b,...>', 'labels for the models, in order (default: file names)')
    .option('--tolerance <kind>', 'how outputs are judged against the first model: fp32, fp16, int8, int4', 'fp32')
    .option('--runtime <name>', 'node: onnxruntime-node, CPU EP; web: onnxruntime-web\'s WebAssembly EP in Node (SIMD, --threads wasm threads), what wasm and browser targets run on', 'node')
    .option('--generate', 'decoders with a KV cache: greedy generation with present fed back as past; prefill ms, decode ms/token, tokens/s, % of the memory-bandwidth limit, token agreement (--runs, --block, --warmup count generations: default 5, 1, 1)')
    .option('--prompt <n>', 'with --generate: prefill length, tokens (default 64)')
    .option('--new-tokens <n>', 'with --generate: decode steps per generation (default 32)')
    .option('--past <n>', 'with --generate: start the decode from a cache of N positions (0 or at least --prompt; default 0: the prompt\'s)')
    .option('--bandwidth <GB/s>', 'with --generate: memory bandwidth for the roofline instead of measuring it')
    .action(async (files: string[], opts: Parameters<typeof benchOptionsFromCli>[0] & Parameters<typeof generateOptionsFromCli>[0] & { dim: string[]; json?: string; markdown?: string; generate?: boolean }, command: Command) => {
      const dims = parseDimsOrUsage(opts.dim);
      let parsed, generate;
      try {
        parsed = benchOptionsFromCli(opts);
        const flag = (['prompt', 'newTokens', 'past', 'bandwidth'] as const).find((k) => opts[k] !== undefined);
        if (!opts.generate && flag) throw new BenchOptionError(`--${flag.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} needs --generate`);
        if (opts.generate && parsed.runtime === 'web') throw new BenchOptionError('--generate runs on onnxruntime-node only (--runtime node)');
        if (opts.generate) generate = generateOptionsFromCli(opts, parsed, (k) => command.getOptionValueSource(k) === 'default');
      } catch (e) {
        if (e instanceof BenchOptionError) throw new UsageError(e.message);
        throw e;
      }
      const bar = process.stderr.isTTY ? progressBar(process.stderr) : undefined;
      let result;
      try {
        const onProgress = bar ? { onProgress: bar.update } : {};
        result = generate ? await runGenerateBench(files, { ...generate, ...onProgress }) : await runBench(files, { ...parsed, dims, ...onProgress });
      } catch (e) {
        if (e instanceof BenchOptionError) throw new UsageError(e.message);
        if (e instanceof RetargetError) throw e;
        // bench errors name the model they came from when they know it
        const named = files.find((f) => (e as Error).message.includes(f));
        throw new RetargetError('bench', named ? (e as Error).message.replace(`${named}: `, '') : (e as Error).message, named ? { file: named } : {}, { cause: e });
      } finally {
        bar?.done();
      }
      process.stdout.write(`${formatBenchTable(result)}\n`);
      if (opts.json) writeTextAtomic(opts.json, `${JSON.stringify(result, null, 2)}\n`);
      if (opts.markdown) writeTextAtomic(opts.markdown, formatBenchMarkdown(result));
    });

  registerSplit(program);
  registerPlayground(program);

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
      // nodes the target's EP lacks but its runtime's CPU fallback runs are a warning, not a refusal
      // so are nodes the runtime runs only through Casts it inserts around them (float16 on ORT's CPU EP)
      const { violations, cpuPlaced, withCasts } = target.capabilities ? checkPlacement(model, target.capabilities) : { violations: [], cpuPlaced: [], withCasts: [] };
      if (opts.json) process.stdout.write(`${toJson({ model: file, target: target.name, source: target.capabilities?.source ?? null, ok: violations.length === 0, violations, cpuPlaced, withCasts })}\n`);
      else {
        if (withCasts.length) {
          process.stdout.write(`warning: ${summarizeWithCasts(withCasts)} (ONNX Runtime inserts them: they run, converting on every run)\n`);
          for (const c of withCasts) process.stdout.write(`  cast  ${c.node}  ${c.domain}::${c.op}  ${c.from} -> ${c.to}\n`);
        }
        if (cpuPlaced.length) {
          process.stdout.write(`warning: ${summarizeCpuPlaced(cpuPlaced, formatBytes)} (ONNX Runtime places them there; they run, with copies between devices)\n`);
          for (const c of cpuPlaced) process.stdout.write(`  cpu  ${c.node}  ${c.domain}::${c.op}  ${c.reason}; crosses ${typeof c.crossBytes === 'number' ? formatBytes(c.crossBytes) : 'unknown (symbolic shape)'}\n`);
        }
        for (const v of violations) process.stdout.write(`${v.node}  ${v.domain}::${v.op}  ${v.reason}\n`);
        const fallback = [cpuPlaced.length ? `${cpuPlaced.length} of them on the CPU EP` : '', withCasts.length ? `${withCasts.length} with casts` : ''].filter(Boolean).map((x) => `, ${x}`).join('');
        process.stdout.write(violations.length ? `${violations.length} node(s) ${target.name} cannot run\n` : `ok: ${target.name} can run every node${fallback}${target.capabilities ? '' : ' (no capability table: any standard op)'}\n`);
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
    if (e instanceof OptionError) {
      process.stderr.write(`retarget: ${e.message}\n`);
      return 2;
    }
    if (e instanceof RetargetError) {
      process.stderr.write(`retarget: ${e.format()}\n`);
      if (verbose && e.stack) process.stderr.write(`${e.stack}\n`);
      return 1;
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
