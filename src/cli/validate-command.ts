/** `retarget validate`: registered on the program by main.ts. */
import { Command } from 'commander';
import { bisect, TOLERANCES, validate } from '../bench/validate.js';
import { intInputRanges, syntheticInputs } from '../inputs.js';
import { readInputSets } from '../node/inputs.js';
import { readModel, writeTextAtomic } from '../node/files.js';
import { onnxruntimeNode } from '../node/ort.js';
import { RetargetError } from '../errors.js';
import { collect, parseDimsOrUsage, toJson, UsageError } from './shared.js';

export function registerValidate(program: Command): void {
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
}
