/** The `retarget` command as users run it: the built binary, exit codes, one-line errors, safe writes. */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { decode, encode } from '../src/onnx/codec.js';
import type { ModelProto } from '../src/onnx/proto.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const BIN = path.join(ROOT, 'dist/src/cli/main.js');
const CNN = path.join(ROOT, 'fixtures/models/cnn-tiny-op13/model.onnx');
const GPT2 = path.join(ROOT, 'fixtures/models/gpt2-tiny-op14/model.onnx');
let tmp: string;

function run(...args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', cwd: tmp });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** A copy of the CNN fixture with `edit` applied to its proto. */
function broken(name: string, edit: (m: ModelProto) => void): string {
  const proto = decode<ModelProto>('ModelProto', fs.readFileSync(CNN));
  edit(proto);
  const file = path.join(tmp, name);
  fs.writeFileSync(file, encode('ModelProto', proto));
  return file;
}

beforeAll(() => {
  if (!fs.existsSync(BIN)) throw new Error(`${BIN} missing: run 'npm run build' (npm test does it first)`);
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'retarget-cli-'));
});
afterAll(() => { fs.rmSync(tmp, { recursive: true, force: true }); });

describe('retarget inspect', () => {
  test('prints a summary of a real model', () => {
    const r = run('inspect', GPT2);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/ir_version\s+7/);
    expect(r.stdout).toMatch(/inputs\s+input_ids: int64\[batch,sequence\]/);
    expect(r.stdout).toMatch(/ai\.onnx::Gemm/);
  });

  test('--json has the documented fields with real values', () => {
    const r = run('inspect', GPT2, '--json');
    expect(r.code).toBe(0);
    const s = JSON.parse(r.stdout);
    const meta = JSON.parse(fs.readFileSync(path.join(path.dirname(GPT2), 'meta.json'), 'utf8'));
    expect(s.opsets).toEqual([{ domain: 'ai.onnx', version: 14 }]);
    expect(s.inputs).toEqual([{ name: 'input_ids', type: 'int64[batch,sequence]', elemType: 'int64', shape: ['batch', 'sequence'] }]);
    expect(s.nodeCount).toBe(Object.values(meta.op_histogram ?? meta.opHistogram ?? {}).reduce((a: number, b) => a + (b as number), 0));
    expect(s.opHistogram['ai.onnx::Gemm']).toBe(8);
    const proto = decode<ModelProto>('ModelProto', fs.readFileSync(GPT2));
    const params = proto.graph!.initializer!.reduce((n, t) => n + (t.dims ?? []).reduce((a: number, d) => a * Number(d), 1), 0);
    expect(s.parameters.count).toBe(params);
    expect(s.parameters.bytesByDtype.float32).toBe(params * 4);
    expect(s.externalData).toEqual([]);
  });

  test('shows subgraphs and external data files', () => {
    const cf = JSON.parse(run('inspect', path.join(ROOT, 'fixtures/models/control-flow-op13/model.onnx'), '--json').stdout);
    expect(cf.subgraphs.map((g: { op: string }) => g.op).sort()).toEqual(expect.arrayContaining(['If', 'Loop']));
    expect(cf.nodeCountTotal).toBeGreaterThan(cf.nodeCount);
    const ext = JSON.parse(run('inspect', path.join(ROOT, 'fixtures/models/external-data/model.onnx'), '--json').stdout);
    expect(ext.externalData[0]).toMatchObject({ location: 'weights.bin' });
  });
});

describe('retarget convert', () => {
  test('round trips a model; the output decodes to the same ModelProto', () => {
    const out = path.join(tmp, 'gpt2.onnx');
    const r = run('convert', GPT2, '-o', out);
    expect(r.code).toBe(0);
    expect(decode('ModelProto', fs.readFileSync(out))).toEqual(decode('ModelProto', fs.readFileSync(GPT2)));
  });

  test('--external-data writes the data next to the output', () => {
    const out = path.join(tmp, 'ext.onnx');
    const r = run('convert', CNN, '-o', out, '--external-data');
    expect(r.code).toBe(0);
    expect(fs.existsSync(`${out}.data`)).toBe(true);
    expect(fs.statSync(out).size).toBeLessThan(fs.statSync(CNN).size / 2);
    expect(run('inspect', out, '--json').code).toBe(0);
  });

  test('may overwrite its input only when -o names it', () => {
    const copy = path.join(tmp, 'self.onnx');
    fs.copyFileSync(CNN, copy);
    expect(run('convert', copy, '-o', copy).code).toBe(0);
    expect(decode('ModelProto', fs.readFileSync(copy))).toEqual(decode('ModelProto', fs.readFileSync(CNN)));
    const r = run('convert', copy, '-o', path.join(tmp, 'other.onnx'), '--external-data', 'self.onnx');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/would overwrite the input model/);
    expect(decode('ModelProto', fs.readFileSync(copy))).toEqual(decode('ModelProto', fs.readFileSync(CNN)));
  });
});

describe('bad input: one line naming the file and the problem, exit 1, nothing written', () => {
  const cases: [string, () => string, RegExp][] = [
    ['truncated file', () => { const f = path.join(tmp, 'trunc.onnx'); fs.writeFileSync(f, fs.readFileSync(CNN).subarray(0, 2000)); return f; }, /truncated or corrupt protobuf/],
    ['random bytes', () => { const f = path.join(tmp, 'random.onnx'); let s = 1; fs.writeFileSync(f, Uint8Array.from({ length: 3000 }, () => ((s = (s * 1103515245 + 12345) >>> 0) >>> 16) & 0xff)); return f; }, /corrupt protobuf|not an ONNX model/],
    ['empty file', () => { const f = path.join(tmp, 'empty.onnx'); fs.writeFileSync(f, ''); return f; }, /empty file/],
    ['missing file', () => path.join(tmp, 'nope.onnx'), /cannot read: no such file/],
    ['undefined value', () => broken('undef.onnx', (m) => { m.graph!.node!.find((n) => n.input?.length)!.input![0] = 'ghost'; }), /uses undefined value 'ghost'/],
    ['negative dim', () => broken('neg.onnx', (m) => { m.graph!.input![0]!.type!.tensorType!.shape!.dim![1] = { dimValue: -3 }; }), /negative dim -3/],
    ['absurd dim', () => broken('absurd.onnx', (m) => { m.graph!.input![0]!.type!.tensorType!.shape!.dim![1] = { dimValue: 2n ** 62n }; }), /absurd dim/],
    ['tensor data that does not match its shape', () => broken('short.onnx', (m) => { const t = m.graph!.initializer!.find((x) => x.rawData && x.rawData.length > 16)!; t.rawData = t.rawData!.subarray(0, 16); }), /16 bytes of raw_data for shape/],
    ['unsafe external path', () => broken('unsafe.onnx', (m) => { const t = m.graph!.initializer![0]!; t.externalData = [{ key: 'location', value: '../../etc/passwd' }]; t.dataLocation = 1; delete t.rawData; }), /unsafe external data location '\.\.\/\.\.\/etc\/passwd'/],
  ];

  test.each(cases)('%s', (_what, make, message) => {
    const file = make();
    const out = path.join(tmp, `out-${path.basename(file)}`);
    fs.writeFileSync(out, 'previous contents');
    const r = run('convert', file, '-o', out);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(path.basename(file));
    expect(lines[0]).toMatch(message);
    expect(fs.readFileSync(out, 'utf8')).toBe('previous contents');
    expect(fs.readdirSync(tmp).filter((f) => f.includes('.tmp-'))).toEqual([]);
    expect(run('inspect', file).code).toBe(1);
  });

  test('--verbose adds the stack trace', () => {
    const r = run('inspect', path.join(tmp, 'nope.onnx'), '--verbose');
    expect(r.code).toBe(1);
    expect(r.stderr.split('\n').length).toBeGreaterThan(3);
    expect(r.stderr).toMatch(/\n\s+at /);
  });

  test('a write that fails leaves no file behind', () => {
    const r = run('convert', CNN, '-o', path.join(tmp, 'no-such-dir', 'out.onnx'));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/out\.onnx: cannot write/);
    expect(fs.existsSync(path.join(tmp, 'no-such-dir'))).toBe(false);
  });
});

describe('usage errors exit with 2', () => {
  test.each([[[]], [['inspect']], [['convert', 'x.onnx']], [['frobnicate']], [['convert', 'a.onnx', '-o', 'b.onnx', '--external-threshold', 'lots']]])('%j', (args) => {
    const r = run(...args);
    expect(r.code).toBe(2);
  });

  test('--help and --version exit with 0', () => {
    expect(run('--help').code).toBe(0);
    expect(run('--version').stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });
});

describe('retarget inspect --shapes', () => {
  test('symbolic: dims stay symbolic, cost is an expression', () => {
    const r = run('inspect', GPT2, '--shapes');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/logits\s+float32\[batch,sequence,64\]\s+MatMul/);
    expect(r.stdout).toMatch(/cost per inference: \(.*batch\*sequence.*\)\/1e9 GFLOPs/);
  });

  test('--dim pins symbols: every value concrete, cost in numbers (JSON)', () => {
    const r = run('inspect', GPT2, '--shapes', '--dim', 'batch=2,sequence=7', '--json');
    expect(r.code).toBe(0);
    const s = JSON.parse(r.stdout);
    expect(s.dims).toEqual({ batch: 2, sequence: 7 });
    const logits = s.values.find((v: { name: string }) => v.name === 'logits');
    expect(logits.type).toBe('float32[2,7,64]');
    expect(s.values.filter((v: { type: string }) => /batch|sequence|unk__|\?/.test(v.type))).toEqual([]);
    expect(typeof s.cost.gflops).toBe('number');
    expect(s.cost.gflops).toBeGreaterThan(0);
    expect(s.unknownOps).toEqual({});
  });

  test('a bad --dim is a usage error', () => {
    expect(run('inspect', GPT2, '--shapes', '--dim', 'batch').code).toBe(2);
    expect(run('inspect', GPT2, '--dim', 'batch=1').code).toBe(2);
  });
});

describe('retarget compile --input-layout NHWC', () => {
  test('the NHWC model is validated on the original\'s data laid out channels-last, for cuda (NhwcConv) and x86-avx2; bench feeds it the same data', () => {
    for (const target of ['cuda', 'x86-avx2']) {
      const r = run('compile', CNN, '--target', target, '--input-layout', 'NHWC', '-o', `cnn.${target}.nhwc.onnx`);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/validated \(fp32\) on 2 input set\(s\) \(.*\): worst output 'output' max abs error/);
    }
    const b = run('bench', CNN, 'cnn.x86-avx2.nhwc.onnx', '--runs', '5', '--warmup', '0', '--session-runs', '1', '--json', 'nhwc.json');
    expect(b.code, b.stderr).toBe(0);
    const json = JSON.parse(fs.readFileSync(path.join(tmp, 'nhwc.json'), 'utf8')) as { models: { accuracy?: { ok: boolean; maxAbsError: number } }[] };
    expect(json.models[1]!.accuracy?.ok).toBe(true);
    expect(json.models[1]!.accuracy!.maxAbsError).toBeLessThan(1e-4);
  });
});
