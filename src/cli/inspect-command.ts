/** `retarget inspect`: registered on the program by main.ts. */
import { Command } from 'commander';
import { readModel } from '../node/files.js';
import { atStage } from '../errors.js';
import { parseDimsOrUsage, toJson, UsageError } from './shared.js';
import { formatShapes, formatSummary, inferForInspect, summarize } from './inspect.js';

export function registerInspect(program: Command): void {
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
}
