/** `retarget convert`: registered on the program by main.ts. */
import path from 'node:path';
import { Command } from 'commander';
import { readModel, writeModel } from '../node/files.js';
import { UsageError } from './shared.js';
import { formatBytes } from './inspect.js';

export function registerConvert(program: Command): void {
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
}
