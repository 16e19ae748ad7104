/**
 * Errors users see, as typed values: what went wrong, in which file, at which stage (reading,
 * shape inference, a pass, validating the original or the compiled model, calibration, bench), and
 * where in the model (pass, node, input, dim). The CLI prints one line from these fields; nothing
 * matches on message text.
 *
 * Browser-safe: no Node built-ins.
 */

/** The options asked for something impossible (an unknown pass, a mode the target lacks): exit code 2. */
export class OptionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OptionError';
  }
}

export type Stage =
  | 'read'
  | 'shapes'
  | 'pass'
  | 'check'
  | 'validate-original'
  | 'validate-compiled'
  | 'calibration'
  | 'bench'
  | 'write';

const STAGE_TEXT: Record<Stage, string> = {
  read: 'reading',
  shapes: 'shape inference',
  pass: 'pass',
  check: 'checking the target',
  'validate-original': 'validating the original',
  'validate-compiled': 'validating the compiled model',
  calibration: 'calibration',
  bench: 'bench',
  write: 'writing',
};

export interface ErrorWhere {
  file?: string;
  pass?: string;
  node?: string;
  input?: string;
  dim?: string;
}

/** An error with the stage it happened in and where; `message` is the bare problem. */
export class RetargetError extends Error {
  constructor(readonly stage: Stage, message: string, readonly where: ErrorWhere = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RetargetError';
  }

  /** The same error, naming `file` when it does not yet. */
  inFile(file: string): RetargetError {
    if (this.where.file) return this;
    const e = new RetargetError(this.stage, this.message, { ...this.where, file }, { cause: this.cause });
    e.stack = this.stack;
    return e;
  }

  /** One line: `FILE: STAGE: message` (`FILE: pass NAME: message` for passes). */
  format(): string {
    const message = this.message.split('\n')[0]!;
    // 'cannot read: no such file' says its stage itself
    const evident = /^cannot (read|write)\b/.test(message);
    const stage = evident ? '' : `${this.stage === 'pass' ? `pass ${this.where.pass ?? '?'}` : STAGE_TEXT[this.stage]}: `;
    return `${this.where.file ? `${this.where.file}: ` : ''}${stage}${message}`;
  }
}

/** `e` as a RetargetError of `stage` (kept as it is when it already has a stage). */
export function atStage(e: unknown, stage: Stage, where: ErrorWhere = {}): RetargetError {
  if (e instanceof RetargetError) return where.file ? e.inFile(where.file) : e;
  const message = e instanceof Error ? e.message : String(e);
  const err = new RetargetError(stage, message, where, { cause: e });
  if (e instanceof Error && e.stack) err.stack = e.stack;
  return err;
}

/** Run `f`, turning anything it throws into a RetargetError of `stage`. */
export async function staged<T>(stage: Stage, where: ErrorWhere, f: () => Promise<T> | T): Promise<T> {
  try {
    return await f();
  } catch (e) {
    throw atStage(e, stage, where);
  }
}
