/**
 * npm run bench:cost [MODEL_DIR ...]
 *
 * The cost model (src/analysis/cost.ts) on exported models, next to independent figures: the
 * torch.profiler count in each model's meta.json (`flops_matmul_conv`: 2 x MACs of conv2d, mm,
 * addmm, bmm for test_data_set_0) and, for transformers, the analytic count from the config
 * (2 x matmul weights x tokens + the attention score and context terms). Dims are pinned from
 * test_data_set_0 (batch 1, sequence as exported).
 *
 * Default models: resnet50, bert-base-op17 and gpt2-small-op17 under /work/large, made by
 * `python3 shared/corpus/export.py /work/large --only resnet50 bert-base-op17` (gpt2-small comes
 * with `--set large`). Acceptance: ResNet-50 at 224x224 ~4.1 GMACs; BERT-base and GPT-2 small
 * within 2% of the analytic count.
 */
import fs from 'node:fs';
import path from 'node:path';
import { inferShapes, modelCost, RULES } from '../src/analysis/index.js';
import { evaluateNode } from '../src/analysis/evaluator.js';
import { readModel } from '../src/node/files.js';

interface Meta {
  name: string;
  kind?: string;
  config?: Record<string, number> | null;
  inputs: { name: string; shape: (number | string)[] }[];
  test_data_sets: { inputs: { name: string; shape: number[] }[] }[];
  param_count?: number;
  flops_matmul_conv?: number;
}

/** Analytic FLOPs (2 x MACs) of the contractions, from the config; undefined for other kinds. */
function analytic(meta: Meta, dims: Record<string, number>): { flops: number; formula: string } | undefined {
  const c = meta.config;
  const b = dims.batch ?? 1;
  const s = dims.sequence ?? c?.seq ?? 0;
  if (!c) return undefined;
  const tokens = b * s;
  if (meta.kind === 'gpt2') {
    const L = c.n_layer!, d = c.n_embd!, V = c.vocab_size!;
    const weights = L * 12 * d * d + d * V; // qkv 3d^2, proj d^2, mlp 8d^2; tied lm_head dV
    const attention = L * 2 * b * s * s * d; // Q.K^T and P.V
    return { flops: 2 * (weights * tokens + attention), formula: `2*(${weights}*${tokens} + ${attention})` };
  }
  if (meta.kind === 'bert') {
    const L = c.num_hidden_layers!, d = c.hidden_size!, I = c.intermediate_size!;
    const weights = L * (4 * d * d + 2 * d * I);
    const attention = L * 2 * b * s * s * d;
    const pooler = b * d * d;
    return { flops: 2 * (weights * tokens + attention + pooler), formula: `2*(${weights}*${tokens} + ${attention} + ${pooler})` };
  }
  return undefined;
}

function pct(ours: number, ref: number): string {
  const d = ((ours - ref) / ref) * 100;
  return `${d >= 0 ? '+' : ''}${d.toFixed(3)}%`;
}

const G = (x: number): string => (x / 1e9).toFixed(4);

function run(dir: string): boolean {
  const meta = JSON.parse(fs.readFileSync(path.join(dir, 'meta.json'), 'utf8')) as Meta;
  const dims: Record<string, number> = {};
  const set = meta.test_data_sets[0];
  meta.inputs.forEach((inp, i) => {
    const shape = set?.inputs[i]?.shape ?? [];
    inp.shape.forEach((d, k) => { if (typeof d === 'string' && shape[k] !== undefined) dims[d] = shape[k]!; });
  });
  const t0 = performance.now();
  const { model } = readModel(path.join(dir, 'model.onnx'));
  const t1 = performance.now();
  const inferred = inferShapes(model, RULES, { dims, evaluate: evaluateNode, apply: false });
  const t2 = performance.now();
  const cost = modelCost(model, inferred, { dims });
  const t3 = performance.now();

  console.log(`\n${meta.name}  dims ${JSON.stringify(dims)}  (read ${((t1 - t0) / 1000).toFixed(1)}s, infer ${((t2 - t1) / 1000).toFixed(1)}s, cost ${((t3 - t2) / 1000).toFixed(2)}s)`);
  const n = cost.numbers;
  if (!n) {
    console.log(`  totals are still symbolic: FLOPs ${cost.total.flops}`);
    return false;
  }
  console.log(`  GMACs ${G(n.macs)}   GFLOPs (2 x MACs) ${G(2 * n.macs)}   GFLOPs (all ops) ${G(n.flops)}`);
  console.log(`  params ${(cost.params / 1e6).toFixed(3)}M (${(cost.paramBytes / 1e6).toFixed(1)} MB; torch param_count ${meta.param_count !== undefined ? (meta.param_count / 1e6).toFixed(3) + 'M' : '?'})   read ${(n.bytesRead / 1e6).toFixed(1)} MB   written ${(n.bytesWritten / 1e6).toFixed(1)} MB`);
  let ok = true;
  if (meta.flops_matmul_conv !== undefined) {
    const d = (2 * n.macs - meta.flops_matmul_conv) / meta.flops_matmul_conv;
    console.log(`  torch.profiler conv/mm GFLOPs ${G(meta.flops_matmul_conv)}   ours ${G(2 * n.macs)}   ${pct(2 * n.macs, meta.flops_matmul_conv)}`);
    if (Math.abs(d) > 0.02) ok = false;
  }
  const a = analytic(meta, dims);
  if (a) {
    const d = (2 * n.macs - a.flops) / a.flops;
    console.log(`  analytic GFLOPs ${G(a.flops)} = ${a.formula}   ours ${G(2 * n.macs)}   ${pct(2 * n.macs, a.flops)}`);
    if (Math.abs(d) > 0.02) ok = false;
  }
  const top = Object.entries(cost.byOp).filter(([, o]) => (o.flops.value ?? 0) > 0)
    .sort((x, y) => (y[1].flops.value ?? 0) - (x[1].flops.value ?? 0)).slice(0, 8);
  console.log(`  by op: ${top.map(([op, o]) => `${op.replace('ai.onnx::', '')} x${o.count} ${G(o.flops.value ?? 0)}`).join(', ')}`);
  if (cost.incomplete.length) console.log(`  incomplete (a shape unknown): ${cost.incomplete.length} nodes, e.g. ${cost.incomplete.slice(0, 5).map(String).join('; ')}`);
  if (Object.keys(cost.uncounted).length) console.log(`  uncounted ops: ${JSON.stringify(cost.uncounted)}`);
  for (const note of cost.notes) console.log(`  note: ${note}`);
  console.log(`  ${ok ? 'OK' : 'MISMATCH'}`);
  return ok && cost.incomplete.length === 0;
}

const args = process.argv.slice(2);
const root = '/work/large';
const dirs = args.length ? args : ['resnet50', 'bert-base-op17', 'gpt2-small-op17'].map((m) => path.join(root, m)).filter((d) => fs.existsSync(path.join(d, 'model.onnx')));
if (dirs.length === 0) {
  console.error(`no models: give model folders (with model.onnx and meta.json), or export them to ${root}`);
  process.exit(2);
}
let allOk = true;
for (const d of dirs) {
  try {
    allOk = run(d) && allOk;
  } catch (e) {
    console.log(`\n${d}: ${(e as Error).message}`);
    allOk = false;
  }
}
process.exitCode = allOk ? 0 : 1;
