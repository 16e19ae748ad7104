/**
 * Errors users see, as typed values: what went wrong, in which file, at which stage (reading,
 * shape inference, a pass, validating the original or the compiled model, calibration, bench), and
 * where in the model (pass, node, input, dim). The CLI prints one line from these fields and exits
 * with the error's `exitCode`; nothing matches on message text.
 *
 *   ReportedError                 what the CLI reports: format() is one line, exitCode the exit status
 *   ├─ UsageError (2)             the command line asked for something impossible
 *   └─ RetargetError (1)          a failure at a stage of the work on a file
 *      ├─ FileError               a file's contents are unusable; FileAccessError: it cannot be read or written at all
 *      ├─ BadModelError           the input model is malformed (corrupt protobuf, unsafe external data, undefined values)
 *      ├─ ValidationError         validation cannot run (no inputs the original accepts, the runtime cannot load a model)
 *      ├─ RefusedError            the work was done and its result refused (the target cannot run it, it differs from the original)
 *      ├─ PassError (pass/)       a pass threw, or left an IR that does not verify
 *      └─ InternalError           a bug (a TypeError inside a pass, an invariant broken)
 *
 * Browser-safe: no Node built-ins.
 */

function firstLine(s: string): string {
  return s.split('\n')[0]!;
}

/** An error the CLI reports on one line (format()) and exits with (exitCode). */
export abstract class ReportedError extends Error {
  abstract readonly exitCode: number;
  abstract format(): string;
}

/** The options asked for something impossible (a bad value, an unknown pass or target, a mode the target lacks): exit code 2. */
export class UsageError extends ReportedError {
  readonly exitCode: number = 2;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }

  format(): string {
    return firstLine(this.message);
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

/**
 * A failure at a stage of the work on a file: exit code 1. `message` is the bare problem; the stage
 * (undefined when no stage applies, as for a CI gate's regressions) and `where` say the rest.
 */
export class RetargetError extends ReportedError {
  readonly exitCode: number = 1;
  where: ErrorWhere;

  constructor(public stage: Stage | undefined, message: string, where: ErrorWhere = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.where = where;
  }

  /** This error, naming `file` when it does not yet. */
  inFile(file: string): this {
    if (!this.where.file) this.where = { ...this.where, file };
    return this;
  }

  /** This error, at `stage` when it has none yet. */
  atStage(stage: Stage): this {
    this.stage ??= stage;
    return this;
  }

  /** The stage as the one-line message says it (`pass NAME`), or undefined to leave it out. */
  protected stageText(): string | undefined {
    if (this.stage === undefined) return undefined;
    return this.stage === 'pass' ? `pass ${this.where.pass ?? '?'}` : STAGE_TEXT[this.stage];
  }

  /** The problem as the one-line message says it. */
  protected problem(): string {
    return firstLine(this.message);
  }

  /** One line: `FILE: STAGE: message` (`FILE: pass NAME: message` for passes). */
  format(): string {
    const stage = this.stageText();
    return `${this.where.file ? `${this.where.file}: ` : ''}${stage ? `${stage}: ` : ''}${this.problem()}`;
  }
}

/** A file whose contents cannot be used (`FILE: reading: ...`, `FILE: writing: ...`). */
export class FileError extends RetargetError {
  constructor(readonly file: string, message: string, stage: 'read' | 'write' = 'read', options?: { cause?: unknown }) {
    super(stage, message, { file }, options);
  }
}

/** A file that cannot be read or written at all: `FILE: cannot read: no such file` (the message says the stage). */
export class FileAccessError extends FileError {
  constructor(file: string, readonly access: 'read' | 'write', readonly reason: string, options?: { cause?: unknown }) {
    super(file, `cannot ${access}: ${reason}`, access, options);
  }

  protected override stageText(): undefined {
    return undefined;
  }
}

/** The input model is malformed: a corrupt protobuf, unsafe external data, an undefined value, a bad dim. */
export class BadModelError extends RetargetError {
  constructor(message: string, where: ErrorWhere = {}, options?: { cause?: unknown }, stage: Stage = 'read') {
    super(stage, message, where, options);
  }
}

/** Validation cannot run: no inputs the original accepts, the runtime cannot load or run a model. */
export class ValidationError extends RetargetError {
  constructor(stage: 'validate-original' | 'validate-compiled', message: string, where: ErrorWhere = {}, options?: { cause?: unknown }) {
    super(stage, message, where, options);
  }
}

/**
 * The work was done and its result refused: the target cannot run a node, the compiled model
 * differs from the original or misses its accuracy budget, a CI gate found a regression. Nothing
 * (or only a rejected copy, named in the message) was written.
 */
export class RefusedError extends RetargetError {}

/** A bug: an invariant broken, or a TypeError/ReferenceError where none should be. */
export class InternalError extends RetargetError {
  protected override problem(): string {
    return `internal error: ${firstLine(this.message)} (a bug; --verbose prints where)`;
  }
}

/** Errors that are bugs in this code, not problems with the input. */
export function isBug(e: unknown): boolean {
  return e instanceof TypeError || e instanceof ReferenceError || e instanceof InternalError;
}

/**
 * `e` as a RetargetError of `stage` (a RetargetError keeps its own stage, gaining `where.file`;
 * a bug becomes an InternalError; any other error becomes a RetargetError with its message).
 */
export function atStage(e: unknown, stage: Stage | undefined, where: ErrorWhere = {}): RetargetError {
  if (e instanceof RetargetError) {
    if (stage) e.atStage(stage);
    return where.file ? e.inFile(where.file) : e;
  }
  const message = e instanceof Error ? e.message : String(e);
  const err = isBug(e) ? new InternalError(stage, message, where, { cause: e }) : new RetargetError(stage, message, where, { cause: e });
  if (e instanceof Error && e.stack) err.stack = e.stack;
  return err;
}

/** Run `f`, turning anything it throws (but a usage error) into a RetargetError of `stage`. */
export async function staged<T>(stage: Stage, where: ErrorWhere, f: () => Promise<T> | T): Promise<T> {
  try {
    return await f();
  } catch (e) {
    if (e instanceof UsageError) throw e;
    throw atStage(e, stage, where);
  }
}

/** Any thrown value as a ReportedError: what the CLI's one handler prints. */
export function asReported(e: unknown): ReportedError {
  return e instanceof ReportedError ? e : atStage(e, undefined);
}
