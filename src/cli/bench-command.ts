/** `retarget bench`: registered on the program by main.ts. */
import { Command } from 'commander';
import { BenchOptionError, benchOptionsFromCli, runBench } from '../bench/bench.js';
import { formatBenchMarkdown, formatBenchTable, progressBar } from '../bench/format.js';
import { generateOptionsFromCli, runGenerateBench } from '../bench/generate.js';
import { writeTextAtomic } from '../node/files.js';
import { staged } from '../errors.js';
import { collect, parseDimsOrUsage } from './shared.js';

export function registerBench(program: Command): void {
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
      const parsed = benchOptionsFromCli(opts);
      const flag = (['prompt', 'newTokens', 'past', 'bandwidth'] as const).find((k) => opts[k] !== undefined);
      if (!opts.generate && flag) throw new BenchOptionError(`--${flag.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} needs --generate`);
      if (opts.generate && parsed.runtime === 'web') throw new BenchOptionError('--generate runs on onnxruntime-node only (--runtime node)');
      const generate = opts.generate ? generateOptionsFromCli(opts, parsed, (k) => command.getOptionValueSource(k) === 'default') : undefined;
      const bar = process.stderr.isTTY ? progressBar(process.stderr) : undefined;
      const onProgress = bar ? { onProgress: bar.update } : {};
      let result;
      try {
        // errors name the model they came from when they know it (BenchError); usage errors stay usage errors
        result = await staged('bench', {}, () => (generate ? runGenerateBench(files, { ...generate, ...onProgress }) : runBench(files, { ...parsed, dims, ...onProgress })));
      } finally {
        bar?.done();
      }
      process.stdout.write(`${formatBenchTable(result)}\n`);
      if (opts.json) writeTextAtomic(opts.json, `${JSON.stringify(result, null, 2)}\n`);
      if (opts.markdown) writeTextAtomic(opts.markdown, formatBenchMarkdown(result));
    });
}
