#!/usr/bin/env node
/**
 * The `retarget` command. Exit codes: 0 ok, 1 failure (bad model, unreadable file, ...), 2 usage.
 * Errors are one line naming the file and the problem; `--verbose` adds the stack trace.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError } from 'commander';
import { compile, CompileError } from '../compile.js';
import { readModel, writeModel, writeTextAtomic } from '../node/files.js';
import { onnxruntimeNode } from '../node/ort.js';
import { loadPlugin } from '../node/plugins.js';
import { findTarget, TARGETS } from '../../targets/index.js';
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
    .option('--explain', 'print why rewrites did not fire')
    .option('--no-runtime-fold', 'fold constants with the TypeScript evaluator only (not onnxruntime)')
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
      const target = findTarget(opts.target, plugins.flatMap((p) => p.targets));
      if (!target) throw new UsageError(`unknown target '${opts.target}' (known: ${TARGETS.map((t) => t.name).join(', ')})`);
      const loaded = readModel(file);
      let report;
      try {
        report = await compile(loaded.model, target, {
          dims,
          ...(opts.runtimeFold ? { runtime: onnxruntimeNode } : {}),
          ...(opts.passes ? { passes: opts.passes.split(',').map((s) => s.trim()).filter(Boolean) } : {}),
          disablePasses: opts.disablePass,
          plugins: pluginPasses,
          verifyEach: !!opts.verifyEach,
          dumpAfter: opts.dumpAfter,
          onDump: (pass, text) => process.stderr.write(`--- IR after ${pass}\n${text}\n`),
          ...(stopAfter !== undefined ? { stopAfterRewrites: stopAfter } : {}),
          ...(opts.explain ? { onExplain: (pass: string, msg: string) => process.stderr.write(`[${pass}] ${msg}\n`) } : {}),
        });
      } catch (e) {
        if (e instanceof CompileError && /unknown pass|allows level/.test(e.message)) throw new UsageError(e.message);
        throw new Error(`${file}: ${(e as Error).message}`);
      }
      const written = writeModel(loaded.model, opts.output, opts.externalData !== undefined ? { externalData: opts.externalData } : {});
      if (opts.report) writeTextAtomic(opts.report, `${toJson({ input: file, output: opts.output, ...report })}\n`);
      const b = report.before, a = report.after;
      process.stderr.write(`compiled for ${target.name}: ${b.nodes} -> ${a.nodes} nodes, ${formatBytes(b.parameterBytes)} -> ${formatBytes(a.parameterBytes)} parameters, ${report.rewrites} rewrites in ${report.timeMs} ms; wrote ${written.path}\n`);
      if (report.stoppedAt) process.stderr.write(`stopped after ${report.rewrites} rewrites; the last one: ${report.stoppedAt}\n`);
      for (const w of report.warnings) process.stderr.write(`warning: ${w}\n`);
    });

  program
    .command('targets')
    .description('list the targets')
    .option('--json', 'print JSON')
    .action((opts: { json?: boolean }) => {
      if (opts.json) process.stdout.write(`${toJson(TARGETS)}\n`);
      else for (const t of TARGETS) process.stdout.write(`${t.name.padEnd(12)} ${t.description}\n`);
    });

  return program;
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
  runtimeFold: boolean;
  externalData?: boolean | string;
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
    return 0;
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
