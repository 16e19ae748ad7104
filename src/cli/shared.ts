/** What the commands share: the usage error, JSON output, option parsing helpers. */
import { DimSpecError, parseDims } from './dims.js';
import { OptionError } from '../errors.js';

/** A usage error: the CLI prints it and exits with 2 (as for every OptionError). */
export class UsageError extends OptionError {}

export function toJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v), 2);
}

/**
 * Errors from deep inside (onnxruntime's own messages, say) do not name the model: prefix the file
 * the command was given, unless the message already names it or it is a usage error.
 */
export function namingFile<O>(action: (file: string, opts: O) => Promise<void>): (file: string, opts: O) => Promise<void> {
  return async (file, opts) => {
    try {
      await action(file, opts);
    } catch (e) {
      if (e instanceof UsageError || !(e instanceof Error) || e.message.includes(file)) throw e;
      throw new Error(`${file}: ${e.message}`);
    }
  };
}

export function collect(v: string, prev: string[]): string[] {
  return [...prev, v];
}

export function parseDimsOrUsage(specs: string[]): Record<string, number> {
  try {
    return parseDims(specs);
  } catch (e) {
    if (e instanceof DimSpecError) throw new UsageError(e.message);
    throw e;
  }
}
