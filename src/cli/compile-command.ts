/** `retarget compile`: a target's pipeline, optional precision lowering, legality check, validation. */
import type { Command } from 'commander';
import { describeValidation, TOLERANCES, validate, validationInputs, type PreparedInputs, type Tolerance, type ValidationResult } from '../bench/validate.js';
import { compile, type CompileReport } from '../compile.js';
import { RefusedError, RetargetError, ValidationError } from '../errors.js';
import type { Model } from '../ir/model.js';
import type { Tensor } from '../ir/tensor.js';
import { modelFolderTestData } from '../node/testdata.js';
import { cloneModel } from '../ir/clone.js';
import { readInputSets } from '../node/inputs.js';
import { readModel, writeModel, writeTextAtomic } from '../node/files.js';
import { onnxruntimeNode } from '../node/ort.js';
import { loadPlugin } from '../node/plugins.js';
import { hostTarget } from '../node/host.js';
import type { Pass, QuantizeOptions } from '../pass/pass.js';
import type { Target } from '../target.js';
import { inputLayoutPass } from '../../passes/layout/apply-input-layout.js';
import { findTarget, TARGETS } from '../../targets/index.js';
import { DataType } from '../ir/dtype.js';
import { halfFloatTypes, integerProducts, runtimeQuantization } from '../../passes/lib/model-precision.js';
import { withInterfaceOf } from '../bench/interface.js';
import { formatBytes } from './inspect.js';
import { passProgress } from '../bench/format.js';
import { summarizeCpuPlaced, summarizeWithCasts } from '../../targets/capabilities/check.js';
import { collect, parseDimsOrUsage, toJson, UsageError } from './shared.js';

export function registerCompile(program: Command): void {
  const command = program
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
    .option('--validate-inputs <dir>', "validate on these inputs (test_data_set_* or .npy); default: the model folder's test_data_set_*, else synthetic inputs the original accepts")
    .option('--input-value <name=value>', 'fill an input with one value in synthetic validation inputs, e.g. sr=16000 (repeatable)', collect, [] as string[]);
  addPrecisionOptions(command)
    .option('--io-type <kind>', 'keep (default): a float16 model compiled to compute in float32 keeps its float16 inputs and outputs (a Cast at each); float32: they become float32 too', 'keep')
    .option('--input-layout <layout>', 'NHWC: image inputs arrive channels-last (NAME=NHWC for one input)')
    .option('--external-data [file]', 'write tensor data to a separate file')
    .action(async (file: string, opts: CompileCliOptions, cmd: Command) => {
      try {
        await runCompile(file, opts, cmd);
      } catch (e) {
        // failures from deep inside (a pass, validation) name the model they happened to
        if (e instanceof RetargetError) throw e.inFile(file);
        throw e;
      }
    });
}

function addPrecisionOptions(command: Command): Command {
  return command
    .option('--quantize <mode>', 'lower precision: dynamic, static, int4, fp16 (the target decides the format)')
    .option('--calibration <dir>', '--quantize static: calibration inputs (test_data_set_* folders or .npy); default: synthetic, with a warning')
    .option('--calibration-method <m>', 'minmax, percentile or entropy', 'minmax')
    .option('--keep-float <names>', 'nodes (names or op types) that stay float, comma separated')
    .option('--block-size <n>', '--quantize int4: block size along K', '32')
    .option('--asymmetric', '--quantize int4: store zero points')
    .option('--accuracy-level <n>', '--quantize int4: MatMulNBits accuracy_level, the activations\' compute precision (0: fp32, 4: int8 per block; default 4)')
    .option('--fp16-io', '--quantize fp16: float16 model inputs and outputs too')
    .option('--debug-quant', '--quantize static: a per-layer error table in the report')
    .option('--accuracy-budget <cosine>', 'lowest cosine similarity accepted for a quantized model (default: int8 0.99, int4 0.98)');
}

/** What the command line asks for, checked: every mistake is a UsageError, found before any work. */
interface CompileSettings {
  verbose: boolean;
  dims: Record<string, number>;
  values: Record<string, number>;
  stopAfter?: number;
  pluginPasses: Pass[];
  target: Target;
  quantize?: QuantizeOptions;
  layouts?: Record<string, 'NHWC' | 'NCHW'>;
  ioType: 'keep' | 'float32';
}

async function compileSettings(file: string, opts: CompileCliOptions, command: Command): Promise<CompileSettings> {
  const verbose = !!(command.optsWithGlobals() as { verbose?: boolean }).verbose;
  const dims = parseDimsOrUsage(opts.dim);
  const values = parseInputValues(opts.inputValue);
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
  if (opts.calibration && quantize) quantize.calibration = readInputSets(readModel(file).model, opts.calibration).map((s) => s.feeds);
  if (!(opts.tolerance in TOLERANCES)) throw new UsageError(`--tolerance: '${opts.tolerance}' is not one of ${Object.keys(TOLERANCES).join(', ')}`);
  if (opts.ioType !== 'keep' && opts.ioType !== 'float32') throw new UsageError(`--io-type: '${opts.ioType}' is not keep or float32`);
  return { verbose, dims, values, ...(stopAfter !== undefined ? { stopAfter } : {}), pluginPasses, target, ...(quantize ? { quantize } : {}), ...(layouts ? { layouts } : {}), ioType: opts.ioType };
}

/** The command: settings, validation inputs, the pipeline, the target check, validation, the output. */
async function runCompile(file: string, opts: CompileCliOptions, command: Command): Promise<void> {
  const s = await compileSettings(file, opts, command);
  const loaded = readModel(file);
  // a float16 / bfloat16 model is judged within fp16's tolerance unless --tolerance says otherwise:
  // its original computes in half precision, and the compiled model may not (widen-to-float32)
  const tolerance = command.getOptionValueSource('tolerance') === 'default' && halfFloatTypes(loaded.model).length ? 'fp16' : opts.tolerance;
  const original = opts.validate ? cloneModel(loaded.model) : undefined;
  // inputs the original accepts, chosen (and run on it) before compiling: a model that cannot be
  // validated is refused before any pass runs, in the stage that failed
  const prepared = original ? await prepareValidation(file, original, opts, s) : undefined;
  const report = await runPipeline(loaded.model, opts, s);
  refuseViolations(file, report, opts, s.target);
  // nodes the target's EP lacks but its runtime's CPU fallback runs: a warning, and the compile goes on
  if (report.cpuPlaced.length) process.stderr.write(`warning: ${summarizeCpuPlaced(report.cpuPlaced, formatBytes)} ('retarget check' lists them)\n`);
  if (report.withCasts.length) process.stderr.write(`warning: ${summarizeWithCasts(report.withCasts)}, inserted by the runtime on every run ('retarget check' lists them)\n`);
  let validation: ValidationResult | undefined;
  if (original) {
    // a model whose inputs/outputs changed float type (--io-type float32, --fp16-io) is run behind
    // Casts to the original's types, on the original's inputs
    validation = await validate(original, withInterfaceOf(loaded.model, original, cloneModel) ?? loaded.model, onnxruntimeNode, {
      dims: s.dims,
      tolerance: toleranceFor(dequantized(command, original, loaded.model) ? 'int8' : inputBudget(command, original) ?? tolerance, s.quantize?.mode, opts.accuracyBudget),
      ...(prepared ? { prepared } : {}),
    });
  }
  const fullReport = { input: file, output: opts.output as string | null, status: 'written', ...report, ...(validation ? { validation } : {}) };
  if (validation && !validation.ok) refuseInvalid(file, loaded.model, validation, fullReport, opts, s.quantize);
  const written = writeModel(loaded.model, opts.output, opts.externalData !== undefined ? { externalData: opts.externalData } : {});
  if (opts.report) writeTextAtomic(opts.report, `${toJson(fullReport)}\n`);
  printSummary(report, written.path, validation, opts, s);
}

/** Validation inputs the original accepts: --validate-inputs, the model folder's test data, or synthetic ones. */
async function prepareValidation(file: string, original: Model, opts: CompileCliOptions, s: CompileSettings): Promise<PreparedInputs> {
  const given = opts.validateInputs ?? modelFolderTestData(file, original.graph.inputs.filter((v) => !v.initializer).map((v) => v.name));
  // with --dim the compiled model takes only those sizes: sets of other sizes are left out
  const sets = given ? readInputSets(original, given).filter((x) => fitsDims(original, x.feeds, s.dims)) : undefined;
  if (opts.validateInputs && sets?.length === 0) throw new ValidationError('validate-original', `no input set in ${opts.validateInputs} has the sizes --dim fixes`, { file });
  return validationInputs(original, onnxruntimeNode, { dims: s.dims, values: s.values, ...(sets?.length ? { inputs: sets } : {}) });
}

/** compile() with the command line's pipeline options, and pass N/M on a TTY stderr. */
async function runPipeline(model: Model, opts: CompileCliOptions, s: CompileSettings): Promise<CompileReport> {
  // not when --explain or --dump-after write to stderr themselves
  const progress = process.stderr.isTTY && !opts.explain && !opts.explainFusions && !opts.dumpAfter.length ? passProgress(process.stderr) : undefined;
  try {
    return await compile(model, s.target, {
      dims: s.dims,
      ...(s.quantize ? { quantize: s.quantize } : {}),
      ioType: s.ioType,
      ...(s.layouts ? { before: [inputLayoutPass(s.layouts)] } : {}),
      runtime: onnxruntimeNode,
      ...(opts.passes ? { passes: opts.passes.split(',').map((x) => x.trim()).filter(Boolean) } : {}),
      disablePasses: opts.disablePass,
      plugins: s.pluginPasses,
      verifyEach: !!opts.verifyEach,
      dumpAfter: opts.dumpAfter,
      onDump: (pass, text) => process.stderr.write(`--- IR after ${pass}\n${text}\n`),
      ...(s.stopAfter !== undefined ? { stopAfterRewrites: s.stopAfter } : {}),
      ...(opts.explain || opts.explainFusions ? { onExplain: (pass: string, msg: string) => process.stderr.write(`[${pass}] ${msg}\n`) } : {}),
      ...(progress ? { onProgress: progress.update } : {}),
    });
  } finally {
    progress?.done();
  }
}

/** Nodes the target cannot run: the compile is refused (the report, if asked for, says so and lists them). */
function refuseViolations(file: string, report: CompileReport, opts: CompileCliOptions, target: Target): void {
  const v = report.violations;
  if (!v.length) return;
  const why = `${v.length} node(s) target '${target.name}' cannot run: ${v.slice(0, 3).map((x) => `${x.node} ${x.domain}::${x.op} (${x.reason})`).join('; ')}${v.length > 3 ? '; ...' : ''}; nothing written`;
  // the report says what happened: refused, no output (the violations list every node)
  if (opts.report) writeTextAtomic(opts.report, `${toJson({ input: file, output: null, status: 'refused', reasons: [why], ...report })}\n`);
  throw new RefusedError('check', why, { file, node: v[0]!.node });
}

/**
 * A compiled model that differs from the original is refused (nothing written); a quantized one that
 * misses its accuracy budget is rejected (written aside as OUT.rejected, for inspection).
 */
function refuseInvalid(file: string, model: Model, validation: ValidationResult, fullReport: Record<string, unknown>, opts: CompileCliOptions, quantize: QuantizeOptions | undefined): never {
  const w = validation.worst!;
  const why = `output '${w.output}' on ${w.source}: ${w.problem}`;
  // a refused compile's report names no output: status 'refused' (or 'rejected': kept aside) with the reason
  const refuse = (status: 'refused' | 'rejected', message: string, extra: Record<string, unknown> = {}): RefusedError => {
    if (opts.report) writeTextAtomic(opts.report, `${toJson({ ...fullReport, output: null, status, reasons: [message], ...extra })}\n`);
    return new RefusedError('validate-compiled', message, { file });
  };
  if (quantize) {
    const rejected = writeModel(model, `${opts.output}.rejected`, opts.externalData !== undefined ? { externalData: opts.externalData } : {});
    throw refuse('rejected', `the ${quantize.mode} model misses its accuracy budget (${validation.tolerance.name}): ${why}; written to ${rejected.path} instead (--accuracy-budget sets the budget)`, { rejectedOutput: rejected.path });
  }
  throw refuse('refused', `it differs from the original (${validation.tolerance.name}): ${why}; nothing written (--no-validate writes it anyway; 'retarget validate --bisect' finds the first diverging value)`);
}

/** What was done, on stderr: the summary line, warnings, skipped passes (--explain), validation. */
function printSummary(report: CompileReport, path: string, validation: ValidationResult | undefined, opts: CompileCliOptions, s: CompileSettings): void {
  const b = report.before, a = report.after;
  process.stderr.write(`compiled for ${s.target.name}: ${b.nodes} -> ${a.nodes} nodes, ${formatBytes(b.parameterBytes)} -> ${formatBytes(a.parameterBytes)} parameters, ${report.rewrites} rewrites in ${report.timeMs} ms; wrote ${path}\n`);
  if (report.stoppedAt) process.stderr.write(`stopped after ${report.rewrites} rewrites; the last one: ${report.stoppedAt}\n`);
  for (const w of report.warnings) process.stderr.write(`warning: ${w}\n`);
  for (const p of report.passes) if (p.skipped && (opts.explain || opts.explainFusions)) process.stderr.write(`skipped ${p.name}: ${p.skipped}\n`);
  if (validation && s.verbose && validation.inputs?.tried) {
    for (const t of validation.inputs.tried) process.stderr.write(`validation inputs: ${t.candidate}: ${t.error ? `the original fails (${t.error})` : 'accepted'}\n`);
  }
  if (validation) process.stderr.write(`${describeValidation(validation)}\n`);
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
  inputValue: string[];
  quantize?: string;
  calibration?: string;
  calibrationMethod: string;
  keepFloat?: string;
  blockSize: string;
  asymmetric?: boolean;
  accuracyLevel?: string;
  fp16Io?: boolean;
  debugQuant?: boolean;
  accuracyBudget?: string;
  inputLayout?: string;
  ioType: string;
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
  const accuracyLevel = opts.accuracyLevel === undefined ? undefined : Number(opts.accuracyLevel);
  if (accuracyLevel !== undefined && ![0, 1, 2, 3, 4].includes(accuracyLevel)) throw new UsageError(`--accuracy-level: '${opts.accuracyLevel}' is not 0, 1, 2, 3 or 4`);
  return {
    mode,
    method,
    blockSize,
    symmetric: !opts.asymmetric,
    ...(accuracyLevel !== undefined ? { accuracyLevel } : {}),
    ...(opts.keepFloat ? { keepFloat: opts.keepFloat.split(',').map((s) => s.trim()).filter(Boolean) } : {}),
    ...(opts.fp16Io ? { fp16Io: true } : {}),
    ...(opts.debugQuant ? { debug: true } : {}),
    report: {},
  };
}

/** Whether every input dim that --dim fixes has that size in `feeds`. */
function fitsDims(model: Model, feeds: Record<string, Tensor>, dims: Record<string, number>): boolean {
  for (const v of model.graph.inputs) {
    const t = feeds[v.name];
    if (!t || v.type?.kind !== 'tensor') continue;
    const shape = v.type.shape ?? [];
    if (shape.some((d, i) => typeof d === 'string' && d in dims && t.dims[i] !== dims[d])) return false;
  }
  return true;
}

/** --input-value NAME=V,... : numbers by input name. */
function parseInputValues(specs: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const spec of specs.flatMap((s) => s.split(','))) {
    const m = /^\s*([^=\s]+)\s*=\s*(\S+)\s*$/.exec(spec);
    const v = m ? Number(m[2]) : NaN;
    if (!m || !Number.isFinite(v)) throw new UsageError(`--input-value: '${spec}' is not NAME=NUMBER`);
    out[m[1]!] = v;
  }
  return out;
}

/**
 * Whether the compile re-expressed the model's quantization for the target: integer products taken
 * out (dequantize-integer-ops, for a target without their kernels) or uint8 QDQ made symmetric int8
 * (qdq-to-int8-symmetric, for TensorRT). The result no longer rounds activations as the original
 * does, so it is judged within int8's budget against the model as given, unless --tolerance says
 * otherwise. (CSE merging duplicate DynamicQuantizeLinears changes no result and does not count.)
 */
function dequantized(command: Command, original: Model, compiled: Model): boolean {
  if (command.getOptionValueSource('tolerance') !== 'default') return false;
  const uint8Qdq = (m: Model): number => m.graph.nodes.filter((n) => (n.opType === 'QuantizeLinear' || n.opType === 'DequantizeLinear') && n.domain === ''
    && n.inputs[2]?.initializer?.dataType === DataType.UINT8).length;
  return integerProducts(compiled) < integerProducts(original) || uint8Qdq(compiled) < uint8Qdq(original);
}

/**
 * The budget of a model that quantizes at run time (runtimeQuantization), unless --tolerance says
 * otherwise: its recompilation is judged within that precision against the model as given.
 */
function inputBudget(command: Command, original: Model): string | undefined {
  return command.getOptionValueSource('tolerance') === 'default' ? runtimeQuantization(original) : undefined;
}

/** The validation tolerance: the one asked for, or the quantization mode's, with --accuracy-budget as its cosine floor. */
function toleranceFor(asked: string, mode: QuantizeOptions['mode'] | undefined, budget: string | undefined): Tolerance {
  const base = TOLERANCES[mode === 'dynamic' || mode === 'static' ? 'int8' : mode === 'int4' ? 'int4' : mode === 'fp16' ? 'fp16' : asked]!;
  if (budget === undefined) return base;
  const c = Number(budget);
  if (!(c > 0 && c <= 1)) throw new UsageError(`--accuracy-budget: '${budget}' is not a cosine similarity in (0, 1]`);
  const { atol: _a, rtol: _r, maxScaledError: _s, ...rest } = base;
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

