/**
 * Errors as types (src/errors.ts): each type's exit code and one-line message through the CLI's one
 * handler (reportError), the typed errors thrown where the failure is known (codec, io, readModel,
 * the pass manager), and the CLI in process: usage 2, bad input 1, one line naming the file.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CommanderError } from 'commander';
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import {
  asReported, BadModelError, FileAccessError, InternalError, RefusedError, RetargetError, UsageError, ValidationError,
} from '../src/errors.js';
import { reportError } from '../src/cli/shared.js';
import { main } from '../src/cli/main.js';
import { DimSpecError, parseDims } from '../src/cli/dims.js';
import { CompileError, compile } from '../src/compile.js';
import { BenchError, BenchOptionError } from '../src/bench/bench.js';
import { parseBenchResult, ResultFileError, ThresholdError, parseThreshold } from '../src/bench/gate.js';
import { ReportUsageError } from '../src/bench/report.js';
import { decode, ProtoDecodeError } from '../src/onnx/codec.js';
import { checkExternalLocation, ExternalDataError } from '../src/onnx/external.js';
import { parseModel, serializeModel } from '../src/io.js';
import { readModel } from '../src/node/files.js';
import { SyntheticInputError, syntheticInputs } from '../src/inputs.js';
import { ModelBuilder } from '../src/ir/builder.js';
import { PassError, PassManager } from '../src/pass/manager.js';
import type { Pass } from '../src/pass/pass.js';
import type { Runtime } from '../src/runtime.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const CNN = path.join(ROOT, 'fixtures/models/cnn-tiny-op13/model.onnx');
let tmp: string;
beforeAll(() => { tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'retarget-errors-')); });
afterAll(() => { fs.rmSync(tmp, { recursive: true, force: true }); });

/** What the handler prints and returns for `e`. */
function handled(e: unknown, verbose = false): { code: number; lines: string[] } {
  let out = '';
  const code = reportError(e, verbose, (t) => { out += t; });
  return { code, lines: out.trimEnd().split('\n').filter(Boolean) };
}

describe('the one handler: exit code and one line per type', () => {
  const cases: [string, unknown, number, string][] = [
    ['UsageError', new UsageError('--tolerance: \'x\' is not one of fp32'), 2, "retarget: --tolerance: 'x' is not one of fp32"],
    ['CompileError (a usage error)', new CompileError("unknown pass 'nope'"), 2, "retarget: unknown pass 'nope'"],
    ['FileAccessError', new FileAccessError('m.onnx', 'read', 'no such file'), 1, 'retarget: m.onnx: cannot read: no such file'],
    ['BadModelError', new BadModelError('empty file', { file: 'm.onnx' }), 1, 'retarget: m.onnx: reading: empty file'],
    ['ValidationError', new ValidationError('validate-original', 'the runtime cannot load it: boom', { file: 'm.onnx' }), 1, 'retarget: m.onnx: validating the original: the runtime cannot load it: boom'],
    ['RefusedError (check)', new RefusedError('check', "1 node(s) target 'wasm' cannot run", { file: 'm.onnx', node: 'n' }), 1, "retarget: m.onnx: checking the target: 1 node(s) target 'wasm' cannot run"],
    ['RefusedError (no stage)', new RefusedError(undefined, '1 regression: m'), 1, 'retarget: 1 regression: m'],
    ['PassError', new PassError('fold-constants', 'bad', undefined, 'n1').inFile('m.onnx'), 1, 'retarget: m.onnx: pass fold-constants: bad'],
    ['InternalError', new InternalError('pass', 'x is not defined', { pass: 'p', file: 'm.onnx' }), 1, 'retarget: m.onnx: pass p: internal error: x is not defined (a bug; --verbose prints where)'],
    ['a plain Error from a library', new Error('onnxruntime said no\nmore detail'), 1, 'retarget: onnxruntime said no'],
    ['a TypeError (a bug)', new TypeError("Cannot read properties of undefined (reading 'x')"), 1, "retarget: internal error: Cannot read properties of undefined (reading 'x') (a bug; --verbose prints where)"],
    ['a thrown string', 'weird', 1, 'retarget: weird'],
  ];
  test.each(cases)('%s', (_name, e, code, line) => {
    const r = handled(e);
    expect(r.code).toBe(code);
    expect(r.lines).toEqual([line]);
  });

  test('commander: help/version 0, its usage errors 2 (it printed them itself)', () => {
    expect(handled(new CommanderError(0, 'commander.helpDisplayed', ''))).toEqual({ code: 0, lines: [] });
    expect(handled(new CommanderError(1, 'commander.unknownOption', 'x'))).toEqual({ code: 2, lines: [] });
  });

  test('--verbose adds the stack after the one line', () => {
    const r = handled(new BadModelError('empty file', { file: 'm.onnx' }), true);
    expect(r.lines[0]).toBe('retarget: m.onnx: reading: empty file');
    expect(r.lines.slice(1).join('\n')).toMatch(/\n\s+at /);
  });

  test('a message of several lines prints its first', () => {
    expect(handled(new RefusedError('validate-compiled', 'differs\nworst: ...', { file: 'm.onnx' })).lines).toEqual(['retarget: m.onnx: validating the compiled model: differs']);
  });
});

describe('the usage errors of each module are UsageErrors (exit 2)', () => {
  test.each([
    ['DimSpecError', () => parseDims(['batch']), DimSpecError],
    ['ThresholdError', () => parseThreshold('lots', '--max-regression'), ThresholdError],
    ['CompileError', () => { throw new CompileError('x'); }, CompileError],
    ['BenchOptionError', () => { throw new BenchOptionError('x'); }, BenchOptionError],
    ['ReportUsageError', () => { throw new ReportUsageError('x'); }, ReportUsageError],
  ] as const)('%s', (_n, f, type) => {
    let err: unknown;
    try { f(); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(type);
    expect(err).toBeInstanceOf(UsageError);
    expect(handled(err).code).toBe(2);
  });
});

describe('typed where the failure is known', () => {
  test('codec: truncated and corrupt bytes are ProtoDecodeErrors, bad input models', () => {
    const bytes = fs.readFileSync(CNN);
    let err: unknown;
    try { decode('ModelProto', bytes.subarray(0, 1000)); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(ProtoDecodeError);
    expect(err).toBeInstanceOf(BadModelError);
    expect((err as BadModelError).message).toMatch(/^truncated or corrupt protobuf/);
    expect((err as BadModelError).stage).toBe('read');
  });

  test('external data at an unsafe location is a BadModelError', () => {
    expect(() => checkExternalLocation('../x')).toThrow(ExternalDataError);
    expect(() => checkExternalLocation('../x')).toThrow(BadModelError);
  });

  test('io: an empty file and an IR the model cannot build are BadModelErrors; readModel names the file', () => {
    expect(() => parseModel(new Uint8Array())).toThrow(BadModelError);
    const b = new ModelBuilder({ opset: 17 });
    b.output(b.node('Relu', [b.input('x', 'float32', [2])]), 'y');
    const proto = serializeModel(b.build());
    const bytes = new Uint8Array(proto.chunks.reduce((n, c) => n + c.length, 0));
    let o = 0;
    for (const c of proto.chunks) { bytes.set(c, o); o += c.length; }
    const truncated = path.join(tmp, 'trunc.onnx');
    fs.writeFileSync(truncated, bytes.subarray(0, bytes.length - 3));
    let err: unknown;
    try { readModel(truncated); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(BadModelError);
    expect((err as RetargetError).where.file).toBe(truncated);
    expect(handled(err).lines).toHaveLength(1);
    expect(handled(err).lines[0]).toMatch(new RegExp(`^retarget: ${truncated.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: reading: `));
  });

  test('readModel of a missing file: FileAccessError, the message says its stage', () => {
    let err: unknown;
    try { readModel(path.join(tmp, 'nope.onnx')); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(FileAccessError);
    expect((err as RetargetError).format()).toBe(`${path.join(tmp, 'nope.onnx')}: cannot read: no such file`);
  });

  test('synthetic inputs for an input they cannot make: SyntheticInputError naming the input, staged by the caller', () => {
    const b = new ModelBuilder({ opset: 17 });
    b.output(b.node('Identity', [b.input('s', 'string', [2])]), 'y');
    let err: unknown;
    try { syntheticInputs(b.build()); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(SyntheticInputError);
    expect((err as RetargetError).where.input).toBe('s');
    expect((err as RetargetError).atStage('bench').inFile('m.onnx').format()).toMatch(/^m\.onnx: bench: input 's': no synthetic data/);
  });

  test('bench: BenchError names the model and the stage; bad results files are ResultFileErrors (exit 1)', () => {
    expect(new BenchError('m.onnx', 'onnxruntime cannot load the model: x').format()).toBe('m.onnx: bench: onnxruntime cannot load the model: x');
    let err: unknown;
    try { parseBenchResult('{', 'x.json'); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(ResultFileError);
    expect(handled(err)).toEqual({ code: 1, lines: [expect.stringMatching(/^retarget: x\.json: not JSON/)] });
  });

  test('compile: a quantized model asked to quantize again is refused (RefusedError of its pass)', async () => {
    const b = new ModelBuilder({ opset: 17 });
    const q = b.node('QuantizeLinear', [b.input('x', 'float32', [2]), b.constant(new (await import('../src/ir/tensor.js')).Tensor(1, [], { kind: 'floatData', values: [0.1] } as never), 's')]);
    b.output(q, 'y');
    const x86 = (await import('../targets/index.js')).findTarget('x86-avx2')!;
    const err = await compile(b.build(), x86, { quantize: { mode: 'dynamic', report: {} } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RefusedError);
    expect((err as RefusedError).format()).toMatch(/^pass quantize-dynamic: the model is already quantized/);
  });
});

describe('the pass manager types what a pass throws', () => {
  const model = () => {
    const b = new ModelBuilder({ opset: 17 });
    b.output(b.node('Relu', [b.input('x', 'float32', [2])]), 'y');
    return b.build();
  };
  const throwing = (name: string, e: unknown): Pass => ({ name, description: '', level: 1, subgraphs: 'skip', run() { throw e; } });
  const failure = (e: unknown, name = 'p') => new PassManager([throwing(name, e)]).run(model()).then(() => undefined, (x: unknown) => x);

  test('a plain error: a PassError naming the pass', async () => {
    const err = await failure(new Error('no'));
    expect(err).toBeInstanceOf(PassError);
    expect((err as PassError).where.pass).toBe('p');
    expect((err as PassError).format()).toBe('pass p: no');
  });

  test('a bug: an InternalError of the pass, keeping the stack', async () => {
    const bug = new TypeError('x is not a function');
    const err = await failure(bug);
    expect(err).toBeInstanceOf(InternalError);
    expect((err as InternalError).format()).toBe('pass p: internal error: x is not a function (a bug; --verbose prints where)');
    expect((err as InternalError).stack).toBe(bug.stack);
    expect((err as InternalError).cause).toBe(bug);
  });

  test('a typed error keeps its type and stage; one without a stage becomes the pass\'s', async () => {
    const calib = new ValidationError('validate-original', 'x');
    expect(await failure(calib)).toBe(calib);
    expect(calib.stage).toBe('validate-original');
    const bare = new RetargetError(undefined, 'input \'s\': no synthetic data');
    expect(await failure(bare)).toBe(bare);
    expect(bare.format()).toBe("pass p: input 's': no synthetic data");
    const usage = new UsageError('--x');
    expect(await failure(usage)).toBe(usage);
  });

  test('a node the runtime refuses to evaluate is explained, not a failure', async () => {
    const refusing: Runtime = { name: 'refusing', createSession: () => Promise.reject(new Error('no kernel')) } as unknown as Runtime;
    const b = new ModelBuilder({ opset: 17 });
    const n = b.node('FastGelu', [b.constant((await import('../src/ir/tensor.js')).Tensor.float32([1], [1]), 'c')], {}, { domain: 'com.microsoft' });
    b.output(n, 'y');
    const m = b.build();
    const explained: string[] = [];
    let got: unknown = 'not asked';
    const asking: Pass = { name: 'ask', description: '', level: 1, subgraphs: 'skip', async run(g, ctx) { got = await ctx.evaluate(g.nodes[0]!, [g.nodes[0]!.inputs[0]!.initializer ?? undefined]); return 0; } };
    await new PassManager([asking], { runtime: refusing, onExplain: (_p, msg) => explained.push(msg) }).run(m);
    expect(got).toBeUndefined();
    expect(explained.join('\n')).toMatch(/not evaluated by the runtime \(.*no kernel/);
  });
});

describe('the CLI in process: exit codes and one line', () => {
  async function cli(...args: string[]): Promise<{ code: number; stderr: string }> {
    let stderr = '';
    const spy = vi.spyOn(process.stderr, 'write').mockImplementation((t: string | Uint8Array) => { stderr += String(t); return true; });
    const saved = process.exitCode;
    try {
      const code = await main(args);
      return { code, stderr };
    } finally {
      spy.mockRestore();
      process.exitCode = saved;
    }
  }

  test('usage errors: 2', async () => {
    expect((await cli('compile', CNN, '-o', path.join(tmp, 'o.onnx'), '--target', 'nope')).code).toBe(2);
    const r = await cli('compile', CNN, '-o', path.join(tmp, 'o.onnx'), '--dim', 'batch');
    expect(r.code).toBe(2);
    expect(r.stderr).toBe("retarget: --dim: 'batch' is not NAME=SIZE (e.g. batch=1,seq=64)\n");
  });

  test('a missing model: 1, one line naming it, nothing written', async () => {
    const out = path.join(tmp, 'never.onnx');
    const r = await cli('compile', path.join(tmp, 'nope.onnx'), '-o', out);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`retarget: ${path.join(tmp, 'nope.onnx')}: cannot read: no such file\n`);
    expect(fs.existsSync(out)).toBe(false);
  });

  test('an unknown pass is a usage error from compile(): 2', async () => {
    const r = await cli('compile', CNN, '-o', path.join(tmp, 'o.onnx'), '--passes', 'no-such-pass', '--no-validate');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^retarget: unknown pass 'no-such-pass'/);
    expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
  });
});

test('asReported: a ReportedError as it is; anything else typed by what it is', () => {
  const u = new UsageError('x');
  expect(asReported(u)).toBe(u);
  expect(asReported(new RangeError('r'))).toBeInstanceOf(RetargetError);
  expect(asReported(new RangeError('r'))).not.toBeInstanceOf(InternalError);
  expect(asReported(new ReferenceError('r'))).toBeInstanceOf(InternalError);
});

test('no classification by message text in the CLI and the error module', () => {
  const dir = path.join(ROOT, 'src/cli');
  const files = [...fs.readdirSync(dir).map((f) => path.join(dir, f)), path.join(ROOT, 'src/errors.ts')];
  const problems: string[] = [];
  for (const f of files) {
    const src = fs.readFileSync(f, 'utf8');
    for (const [i, line] of src.split('\n').entries()) {
      if (/\.message\)?\.(includes|match|startsWith|endsWith|replace|search)\(|\.(test|exec)\([^)]*\.message\b/.test(line)) problems.push(`${path.relative(ROOT, f)}:${i + 1}: ${line.trim()}`);
    }
  }
  expect(problems).toEqual([]);
});

