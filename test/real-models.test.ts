/**
 * Real models from other exporters compile with no flags (issue: real models). Each fixture below
 * reproduces one way synthetic validation inputs used to be invalid (see fixtures/README.md): the
 * model file is copied alone into a temp folder, so validation cannot lean on its test data and
 * must find inputs the original accepts. Then: the model folder's own test_data_set_* are used by
 * default; fp32 is judged like allclose; and every user-facing error names the file and the stage.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { findValidationInputs } from '../src/bench/validation-inputs.js';
import { TOLERANCES, judge, validate } from '../src/bench/validate.js';
import { outputMetrics } from '../src/bench/metrics.js';
import { selectorValues } from '../src/inputs.js';
import { concatChunks } from '../src/onnx/codec.js';
import { serializeModel } from '../src/io.js';
import { readModel } from '../src/node/files.js';
import { onnxruntimeNode } from '../src/node/ort.js';
import { Tensor } from '../src/ir/tensor.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const FIXTURES = path.join(ROOT, 'fixtures/models');
const BIN = path.join(ROOT, 'dist/src/cli/main.js');
const run = (...args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8' });
let tmp: string;

beforeAll(() => { tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'retarget-real-')); });
afterAll(() => { fs.rmSync(tmp, { recursive: true, force: true }); });

/** The fixture's model.onnx alone in a fresh folder (no test data beside it). */
function alone(name: string): string {
  const dir = path.join(tmp, `${name}-alone`);
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, 'model.onnx');
  fs.copyFileSync(path.join(FIXTURES, name, 'model.onnx'), file);
  return file;
}

const bytes = (file: string): Uint8Array => concatChunks(serializeModel(readModel(file).model).chunks);

describe('synthetic validation inputs the original accepts', () => {
  // [fixture, what the inputs must satisfy: a regex over the candidates that were accepted]
  const cases: [string, RegExp][] = [
    ['audio-frontend-reflect-op13', /samples=(96|128|160|256)/], // reflect Pad of 64 needs more than 64 samples
    ['detector-stride32-op13', /height=(32|64|96|128).*width=(32|64|96|128)/], // five stride-2 convs, then upsample-and-add
    ['sample-rate-if-op13', /sr:=(16000|8000)/], // the If on sr == 16000; frames of sr/100 samples
    ['decoder-past-tiny-op14', /past_sequence=\d+/], // attention_mask is [batch, past_sequence + sequence]
    ['llama-past-tiny-op14', /past_sequence=\d+/],
    ['near-zero-sigmoid-op13', /height=\d+/],
  ];

  test.each(cases)('%s: compile -t x86-avx2 with no flags validates on two accepted candidates', (name, accepted) => {
    const file = alone(name);
    const out = path.join(tmp, `${name}.onnx`);
    const report = path.join(tmp, `${name}.json`);
    const r = run('compile', file, '-t', 'x86-avx2', '-o', out, '--report', report);
    expect(r.status, r.stderr).toBe(0);
    const rep = JSON.parse(fs.readFileSync(report, 'utf8'));
    expect(rep.validation.ok).toBe(true);
    expect(rep.validation.inputs.origin).toBe('synthetic');
    expect(rep.validation.inputs.used.length).toBe(2);
    for (const used of rep.validation.inputs.used) expect(used).toMatch(accepted);
    // two different sizes (or selector values): the compiled model is not specialized to one
    expect(new Set(rep.validation.inputs.used).size).toBe(2);
    expect(fs.existsSync(out)).toBe(true);
  });

  test('the decoder: attention_mask gets past_sequence + sequence positions, all ones', async () => {
    const model = readModel(path.join(FIXTURES, 'decoder-past-tiny-op14/model.onnx')).model;
    const found = await findValidationInputs(model, bytes(path.join(FIXTURES, 'decoder-past-tiny-op14/model.onnx')), onnxruntimeNode);
    expect(found.tried[0]!.error).toBeUndefined(); // the first candidate is already right
    for (const set of found.sets) {
      const mask = set.feeds.attention_mask!;
      const ids = set.feeds.input_ids!;
      const past = set.feeds['past_key_values.0.key']!;
      expect(mask.dims[1]).toBe(ids.dims[1]! + past.dims[2]!);
      expect([...(mask.toTypedArray() as BigInt64Array)].every((x) => x === 1n)).toBe(true);
    }
  });

  test('a failing candidate is reported with the original\'s error, and the search moves on', async () => {
    const file = path.join(FIXTURES, 'audio-frontend-reflect-op13/model.onnx');
    const found = await findValidationInputs(readModel(file).model, bytes(file), onnxruntimeNode);
    const failed = found.tried.filter((t) => t.error);
    expect(failed.length).toBeGreaterThan(0);
    expect(failed[0]!.error).toMatch(/Pad/);
    expect(found.sets.length).toBe(2);
  });

  test('integer inputs compared with constants select If branches', () => {
    const model = readModel(path.join(FIXTURES, 'sample-rate-if-op13/model.onnx')).model;
    expect(selectorValues(model).sr).toContain(16000);
  });

  test('nothing accepted: one line naming the file, the stage, the dim and the flags that supply it; exit 1, no output', () => {
    const out = path.join(tmp, 'never.onnx');
    // samples pinned below the reflect pad's size: no candidate can work
    const r = run('compile', alone('audio-frontend-reflect-op13'), '-o', out, '--dim', 'samples=16');
    expect(r.status).toBe(1);
    const lines = r.stderr.trim().split('\n');
    expect(lines.length).toBe(1);
    expect(lines[0]).toMatch(/^retarget: .*model\.onnx: validating the original: no synthetic inputs it accepts .*--validate-inputs/);
    expect(fs.existsSync(out)).toBe(false);
  });

  test('--input-value fills an input: a sample rate the model refuses is the original\'s error', () => {
    const r = run('compile', alone('sample-rate-if-op13'), '-o', path.join(tmp, 'sr.onnx'), '--input-value', 'sr=12345');
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/validating the original: .*sr:=12345/);
    const ok = run('compile', alone('sample-rate-if-op13'), '-o', path.join(tmp, 'sr8k.onnx'), '--input-value', 'sr=8000', '--report', path.join(tmp, 'sr8k.json'));
    expect(ok.status, ok.stderr).toBe(0);
    const rep = JSON.parse(fs.readFileSync(path.join(tmp, 'sr8k.json'), 'utf8'));
    for (const used of rep.validation.inputs.used) expect(used).toMatch(/sr:=8000/);
    expect(run('compile', alone('sample-rate-if-op13'), '-o', path.join(tmp, 'x.onnx'), '--input-value', 'sr').status).toBe(2);
  });
});

describe("the model folder's test data", () => {
  test('compile validates on test_data_set_* beside the model by default', () => {
    const report = path.join(tmp, 'td.json');
    const r = run('compile', path.join(FIXTURES, 'sample-rate-if-op13/model.onnx'), '-o', path.join(tmp, 'td.onnx'), '--report', report);
    expect(r.status, r.stderr).toBe(0);
    const rep = JSON.parse(fs.readFileSync(report, 'utf8'));
    expect(rep.validation.inputs.origin).toBe('given');
    expect(rep.validation.inputs.used.map((u: string) => path.basename(u))).toEqual(['test_data_set_0', 'test_data_set_1']);
  });

  test('with --dim, sets of other sizes are left out (the compiled model only takes the fixed size)', () => {
    const report = path.join(tmp, 'td-dim.json');
    const r = run('compile', path.join(FIXTURES, 'gpt2-tiny-op14/model.onnx'), '-o', path.join(tmp, 'td-dim.onnx'), '--dim', 'batch=1,sequence=7', '--report', report);
    expect(r.status, r.stderr).toBe(0);
    const rep = JSON.parse(fs.readFileSync(report, 'utf8'));
    expect(rep.validation.inputs.used.map((u: string) => path.basename(u))).toEqual(['test_data_set_0']);
  });
});

describe('fp32 tolerance like allclose', () => {
  test('a near-zero output with a tiny error passes though its cosine is below 0.99999; the worst element is named', () => {
    const ref = Tensor.float32([1e-6, 2e-6, 1.5e-6, 3e-6], [2, 2]);
    const got = Tensor.float32([1.2e-6, 1.8e-6, 1.5e-6, 3.1e-6], [2, 2]);
    const tol = TOLERANCES.fp32!;
    const m = outputMetrics('prob', ref, got, { atol: tol.atol!, rtol: tol.rtol! });
    expect(m.cosine).toBeLessThan(0.99999);
    expect(judge(m, tol).ok).toBe(true);
    expect(m.worstElement!.index).toEqual([0, 0]);
  });

  test('a real error fails, naming the element, both values, abs and rel error', () => {
    const ref = Tensor.float32([1, 2, 3, 4], [2, 2]);
    const got = Tensor.float32([1, 2, 3.01, 4], [2, 2]);
    const tol = TOLERANCES.fp32!;
    const v = judge(outputMetrics('y', ref, got, { atol: tol.atol!, rtol: tol.rtol! }), tol);
    expect(v.ok).toBe(false);
    expect(v.problem).toMatch(/1 value beyond 0\.0001 \+ 0\.001\*\|ref\|; worst at \[1,0\]: 3\.01000 vs 3\.00000, abs 1\.00e-2, rel 3\.33e-3/);
  });

  test('validate() reports where its inputs came from', async () => {
    const file = path.join(FIXTURES, 'near-zero-sigmoid-op13/model.onnx');
    const m = readModel(file).model;
    const res = await validate(m, readModel(file).model, onnxruntimeNode);
    expect(res.ok).toBe(true);
    expect(res.inputs?.origin).toBe('synthetic');
    expect(res.tolerance.minCosine).toBeUndefined();
  });
});

describe('every user-facing error names the file and the stage', () => {
  test('read: a corrupt model', () => {
    const bad = path.join(tmp, 'corrupt.onnx');
    fs.writeFileSync(bad, Buffer.from([0x0a, 0xff, 0xff, 0xff, 0x0f, 0x01]));
    const r = run('compile', bad, '-o', path.join(tmp, 'c.onnx'));
    expect(r.status).toBe(1);
    expect(r.stderr.trim()).toMatch(/^retarget: .*corrupt\.onnx: reading: .*protobuf/);
  });

  test('shapes: inspect --shapes on a model whose declared shapes contradict', () => {
    const file = path.join(FIXTURES, 'cnn-tiny-op13/model.onnx');
    const m = readModel(file).model;
    // declare the output 3-D: inference gives [batch, 10]
    const outV = m.graph.outputs[0]!;
    outV.type = { kind: 'tensor', elemType: 1, shape: ['batch', 10, 7] };
    const bad = path.join(tmp, 'contradict.onnx');
    fs.writeFileSync(bad, concatChunks(serializeModel(m).chunks));
    const r = run('inspect', bad, '--shapes');
    expect(r.status).toBe(1);
    expect(r.stderr.trim().split('\n').length).toBe(1);
    expect(r.stderr).toMatch(/^retarget: .*contradict\.onnx: shape inference: /);
  });

  test('pass NAME: a plugin pass that throws', () => {
    const plugin = path.join(tmp, 'throws.mjs');
    fs.writeFileSync(plugin, `export const passes = [{ name: 'explode', description: 'throws', level: 1, subgraphs: 'skip', run() { throw new Error('boom at node Conv_0'); } }];\n`);
    const r = run('compile', path.join(FIXTURES, 'cnn-tiny-op13/model.onnx'), '-o', path.join(tmp, 'p.onnx'), '--plugin', plugin);
    expect(r.status).toBe(1);
    expect(r.stderr.trim()).toMatch(/^retarget: .*cnn-tiny-op13\/model\.onnx: pass explode: boom at node Conv_0$/);
  });

  test('validating the original: test data the original cannot run', () => {
    const dir = path.join(tmp, 'wrong-data');
    fs.mkdirSync(dir, { recursive: true });
    fs.cpSync(path.join(FIXTURES, 'gpt2-tiny-op14/test_data_set_0'), path.join(dir, 'test_data_set_0'), { recursive: true });
    const r = run('compile', path.join(FIXTURES, 'cnn-tiny-op13/model.onnx'), '-o', path.join(tmp, 'wd.onnx'), '--validate-inputs', dir);
    expect(r.status).toBe(1);
    expect(r.stderr.trim()).toMatch(/^retarget: .*cnn-tiny-op13\/model\.onnx: validating the original: on .*test_data_set_0: /);
  });

  test('validating the compiled model: a pass that breaks numerics', () => {
    const plugin = path.join(tmp, 'breaks.mjs');
    fs.writeFileSync(plugin, `
export const passes = [{ name: 'break-weights', description: 'scales one weight', level: 1, subgraphs: 'skip', run(graph) {
  const w = graph.initializers.find((v) => v.initializer.dims.length === 4);
  const t = w.initializer; const a = Float32Array.from(t.toTypedArray()); a[0] = a[0] * 2 + 1;
  graph.setInitializer(w, t.constructor.fromTypedArray(t.dataType, t.dims, a));
  return 1;
} }];\n`);
    const r = run('compile', path.join(FIXTURES, 'cnn-tiny-op13/model.onnx'), '-o', path.join(tmp, 'b.onnx'), '--plugin', plugin);
    expect(r.status).toBe(1);
    expect(r.stderr.trim()).toMatch(/^retarget: .*cnn-tiny-op13\/model\.onnx: validating the compiled model: it differs from the original \(fp32\): output .* on .*test_data_set_\d: /);
  });

  test('calibration: calibration data that does not fit the model', () => {
    const r = run('compile', path.join(FIXTURES, 'cnn-tiny-op13/model.onnx'), '-o', path.join(tmp, 'q.onnx'), '-t', 'x86-avx2', '--quantize', 'static',
      '--calibration', path.join(FIXTURES, 'gpt2-tiny-op14'));
    expect(r.status).toBe(1);
    expect(r.stderr.trim().split('\n').length).toBe(1);
    expect(r.stderr).toMatch(/^retarget: .*cnn-tiny-op13\/model\.onnx: calibration: /);
  });

  test('bench: a model the runtime cannot load', () => {
    const bad = path.join(tmp, 'unloadable.onnx');
    const m = readModel(path.join(FIXTURES, 'cnn-tiny-op13/model.onnx')).model;
    m.graph.nodes[0]!.opType = 'NoSuchOp';
    fs.writeFileSync(bad, concatChunks(serializeModel(m).chunks));
    const r = run('bench', bad, '--runs', '2', '--warmup', '0', '--session-runs', '1');
    expect(r.status).toBe(1);
    expect(r.stderr.trim()).toMatch(/^retarget: .*unloadable\.onnx: bench: /);
  });
});

describe('decoders: validated by a greedy generation with the cache fed back', () => {
  const file = path.join(FIXTURES, 'llama-past-tiny-op14/model.onnx');

  test('the signature: ids, mask, positions, logits, and each present.N.* paired with its past_key_values.N.*', async () => {
    const { decoderSignature } = await import('../src/bench/generation.js');
    const sig = decoderSignature(readModel(file).model)!;
    expect(sig.ids).toBe('input_ids');
    expect(sig.mask).toBe('attention_mask');
    expect(sig.positions).toBe('position_ids');
    expect(sig.logits).toBe('logits');
    expect(sig.cache.map((c) => `${c.input}>${c.output}`)).toContain('past_key_values.0.key>present.0.key');
    expect(sig.pastAxis).toBe(2);
    expect(decoderSignature(readModel(path.join(FIXTURES, 'gpt2-tiny-op14/model.onnx')).model)).toBeUndefined();
  });

  test('a cache written wrong is caught from the second step on, though the first step agrees', async () => {
    const ref = readModel(file).model;
    const cand = readModel(file).model;
    // scale what the first layer writes into its key cache: the prefill's logits do not read it
    const g = cand.graph;
    const idx = g.outputs.findIndex((v) => v.name === 'present.0.key');
    const old = g.outputs[idx]!;
    const scale = g.addInitializer('k_scale', Tensor.float32([1.5], []));
    const n = g.addNode({ opType: 'Mul', inputs: [old, scale], outputs: ['present.0.key.scaled'] });
    n.outputs[0]!.type = old.type;
    g.setOutput(idx, n.outputs[0]!);
    g.rename(old, 'present.0.key.raw', { interfaceSwap: true });
    g.rename(n.outputs[0]!, 'present.0.key', { interfaceSwap: true });
    const res = await validate(ref, cand, onnxruntimeNode, { prepared: { sets: [] } });
    expect(res.ok).toBe(false);
    const gen = res.cases.find((c) => c.generated)!;
    expect(gen.source).toMatch(/greedy generation of 16 tokens/);
    const o = gen.outputs[0]!;
    expect(o.worstElement!.index[0]).toBeGreaterThan(0); // not the first step
    const same = await validate(ref, readModel(file).model, onnxruntimeNode, { prepared: { sets: [] } });
    expect(same.ok).toBe(true);
    expect(same.cases[0]!.generated!.agreement).toBe(1);
  });

  test('compile reports the generation case for a decoder, and int4 judges its logits over the generation by its budget', () => {
    const report = path.join(tmp, 'dec-int4.json');
    const r = run('compile', file, '-t', 'x86-avx2', '--quantize', 'int4', '-o', path.join(tmp, 'dec-int4.onnx'), '--report', report);
    const rep = JSON.parse(fs.readFileSync(report, 'utf8'));
    const gen = rep.validation.cases.find((c: { generated?: unknown }) => c.generated);
    expect(gen, r.stderr).toBeDefined();
    expect(gen.outputs[0].cosine).toBeGreaterThan(0.9);
    expect(typeof gen.generated.agreement).toBe('number');
    expect(gen.generated.top5).toBeGreaterThanOrEqual(gen.generated.agreement);
    // the single-step sets are reported, not judged; the verdict and the worst output are the generation's
    const others = rep.validation.cases.filter((c: { generated?: unknown }) => !c.generated);
    expect(others.length).toBeGreaterThan(0);
    for (const c of others) expect(c.judged).toBe(false);
    expect(gen.judged).toBeUndefined();
    expect(rep.validation.ok).toBe(gen.ok);
    expect(rep.validation.worst.source).toBe(gen.source);
    expect(r.stderr).toMatch(/reported, not judged \(single steps\): \d+ set\(s\), lowest cosine/);
  });

  test('a decoder fixed to one new token (--dim sequence=1) is fed its prompt token by token; batch fixed to 2 has no generation case', () => {
    const one = path.join(tmp, 'dec-seq1.json');
    const r = run('compile', file, '-t', 'x86-avx2', '--dim', 'sequence=1', '-o', path.join(tmp, 'dec-seq1.onnx'), '--report', one);
    expect(r.status, r.stderr).toBe(0);
    const cases = JSON.parse(fs.readFileSync(one, 'utf8')).validation.cases;
    expect(cases.find((c: { generated?: unknown }) => c.generated).source).toMatch(/token by token/);
    const two = path.join(tmp, 'dec-b2.json');
    expect(run('compile', file, '-t', 'x86-avx2', '--dim', 'batch=2', '-o', path.join(tmp, 'dec-b2.onnx'), '--report', two).status).toBe(0);
    expect(JSON.parse(fs.readFileSync(two, 'utf8')).validation.cases.some((c: { generated?: unknown }) => c.generated)).toBe(false);
  });
});
