/** What the commands share: the one error handler, JSON output, option parsing helpers. */
import { CommanderError } from 'commander';
import { parseDims } from './dims.js';
import { asReported, atStage, UsageError, type Stage } from '../errors.js';

export { UsageError };

/**
 * The CLI's one error handler: any thrown value -> one line on stderr (`retarget: ` and the error's
 * format()), the stack with --verbose, and the exit code its type carries (2 usage, 1 the rest).
 */
export function reportError(e: unknown, verbose: boolean, write: (text: string) => void = (t) => { process.stderr.write(t); }): number {
  // help and version exit with 0; commander has already printed its usage errors
  if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2;
  const err = asReported(e);
  write(`retarget: ${err.format()}\n`);
  if (verbose && err.stack) write(`${err.stack}\n`);
  return err.exitCode;
}

export function toJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v), 2);
}

/**
 * Errors from deep inside (onnxruntime's own messages, say) do not name the model: the action's
 * errors name the file the command was given (usage errors stay as they are), at `stage` when they
 * have none.
 */
export function namingFile<O>(action: (file: string, opts: O) => Promise<void>, stage?: Stage): (file: string, opts: O) => Promise<void> {
  return async (file, opts) => {
    try {
      await action(file, opts);
    } catch (e) {
      if (e instanceof UsageError) throw e;
      throw atStage(e, stage, { file });
    }
  };
}

export function collect(v: string, prev: string[]): string[] {
  return [...prev, v];
}

/** --dim specs (a DimSpecError is a usage error). */
export function parseDimsOrUsage(specs: string[]): Record<string, number> {
  return parseDims(specs);
}
