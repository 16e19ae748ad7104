#!/usr/bin/env node
/**
 * The `retarget` command. Exit codes: 0 ok, 1 failure (bad model, unreadable file, refused, ...), 2 usage.
 * Errors are one line naming the file and the problem; `--verbose` adds the stack trace. Commands
 * throw typed errors (src/errors.ts); reportError (shared.ts) is the one place that prints them.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { registerCompile } from './compile-command.js';
import { registerInspect } from './inspect-command.js';
import { registerConvert } from './convert-command.js';
import { registerValidate } from './validate-command.js';
import { registerBench } from './bench-command.js';
import { registerTargets } from './targets-command.js';
import { registerCheck } from './check-command.js';
import { registerCompare } from './compare-command.js';
import { registerReport } from './report-command.js';
import { reportError } from './shared.js';
import { registerSplit } from './split-command.js';
import { registerPlayground } from './playground-command.js';


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

  registerInspect(program);

  registerConvert(program);

  registerCompile(program);

  registerValidate(program);

  registerBench(program);

  registerSplit(program);
  registerPlayground(program);

  registerTargets(program);

  registerCheck(program);

  registerCompare(program);

  registerReport(program);

  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: 'user' });
    // a command may report failure without an error (validate: outputs differ)
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    return reportError(e, argv.includes('--verbose'));
  }
}

const invoked = process.argv[1] ? fs.realpathSync(process.argv[1]) : '';
if (invoked === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).then((code) => { process.exitCode = code; });
}
