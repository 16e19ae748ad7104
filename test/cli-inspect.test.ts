/** `retarget inspect` on models with many subgraphs: a short summary by default, every subgraph with --verbose, all of it in --json. */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { attr } from '../src/ir/attribute.js';
import { ModelBuilder } from '../src/ir/builder.js';
import { DataType } from '../src/ir/dtype.js';
import { Graph, type Value } from '../src/ir/graph.js';
import { tensorType } from '../src/ir/types.js';
import { writeModel } from '../src/node/files.js';
import { formatSubgraphCounts, formatSummary, summarize } from '../src/cli/inspect.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const BIN = path.join(ROOT, 'dist/src/cli/main.js');
const CONTROL_FLOW = path.join(ROOT, 'fixtures/models/control-flow-op13/model.onnx');
let tmp: string;
let manyIfs: string;

function run(...args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', cwd: tmp });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** 50 If nodes in a chain (then: Relu, else: Neg then Abs); the first then-branch holds one more If. */
function buildManyIfs() {
  const b = new ModelBuilder({ opset: 13 });
  const g = b.graph;
  let x: Value = b.input('x', 'float32', [3]);
  const cond = b.input('c', 'bool', []);
  const branch = (name: string, owner: ReturnType<typeof g.addNode>, ops: string[], input: Value): Graph => {
    const s = new Graph(name, owner);
    let v = input;
    ops.forEach((op, i) => { v = s.addNode({ opType: op, name: `${owner.name}_${name}_${i}`, inputs: [v], outputs: [`${owner.name}_${name}_${i}_out`] }).outputs[0]!; });
    v.type = tensorType(DataType.FLOAT, [3]);
    s.addOutput(v);
    return s;
  };
  for (let i = 0; i < 50; i++) {
    const iff = g.addNode({ opType: 'If', name: `If_${i}`, inputs: [cond], outputs: [`if_${i}_out`] });
    const then = branch('then', iff, ['Relu'], x);
    if (i === 0) {
      const inner = then.addNode({ opType: 'If', name: 'If_inner', inputs: [cond], outputs: ['inner_out'] });
      inner.attributes.set('then_branch', attr.graph('then_branch', branch('then', inner, ['Sigmoid'], x)));
      inner.attributes.set('else_branch', attr.graph('else_branch', branch('else', inner, ['Tanh'], x)));
    }
    iff.attributes.set('then_branch', attr.graph('then_branch', then));
    iff.attributes.set('else_branch', attr.graph('else_branch', branch('else', iff, ['Neg', 'Abs'], x)));
    x = iff.outputs[0]!;
    x.type = tensorType(DataType.FLOAT, [3]);
  }
  b.output(x, 'y');
  const m = b.build();
  m.graph.toposort();
  return m;
}

beforeAll(() => {
  if (!fs.existsSync(BIN)) throw new Error(`${BIN} missing: run 'npm run build' (npm test does it first)`);
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'retarget-inspect-'));
  manyIfs = path.join(tmp, 'many-ifs.onnx');
  writeModel(buildManyIfs(), manyIfs);
});
afterAll(() => { fs.rmSync(tmp, { recursive: true, force: true }); });

describe('subgraph summary', () => {
  test('counts per op: nodes holding subgraphs, graphs, nodes in them (nested ones counted under their own op)', () => {
    const s = summarize(buildManyIfs(), 'm.onnx', 0, []);
    // 51 If nodes, 102 branches; nodes directly in them: 50 Relu + 1 If_inner + 100 (Neg, Abs) + Sigmoid + Tanh
    expect(s.subgraphsByOp).toEqual({ If: { ops: 51, graphs: 102, nodes: 153 } });
    expect(s.subgraphs).toHaveLength(102);
    expect(s.subgraphs.filter((g) => g.depth === 1).map((g) => `${g.node}.${g.attribute}`)).toEqual(['If_inner.then_branch', 'If_inner.else_branch']);
    expect(formatSubgraphCounts(s.subgraphsByOp)).toBe('51 If (102 branches, 153 nodes)');
    expect(formatSubgraphCounts({ Loop: { ops: 1, graphs: 1, nodes: 1 }, Scan: { ops: 2, graphs: 2, nodes: 7 } })).toBe('1 Loop (1 body, 1 node), 2 Scan (2 bodies, 7 nodes)');
    const text = formatSummary(s);
    expect(Math.max(...text.split('\n').map((l) => l.length))).toBeLessThan(120);
    expect(formatSummary(s, { verbose: true }).split('\n').filter((l) => /If 'If_\d+'\.(then|else)_branch/.test(l))).toHaveLength(100);
  });
});

describe('retarget inspect', () => {
  test('50 If nodes: one short subgraphs line', () => {
    const r = run('inspect', manyIfs);
    expect(r.code).toBe(0);
    const line = r.stdout.split('\n').find((l) => l.trimStart().startsWith('subgraphs'))!;
    expect(line).toMatch(/^ {2}subgraphs {5}51 If \(102 branches, 153 nodes\); --verbose lists them$/);
    expect(Math.max(...r.stdout.split('\n').map((l) => l.length))).toBeLessThan(120);
    expect(r.stdout).not.toContain("If 'If_7'");
  });

  test('--verbose (before or after the command) lists every subgraph, one a line, nested ones indented', () => {
    for (const args of [['--verbose', 'inspect', manyIfs], ['inspect', manyIfs, '--verbose']]) {
      const r = run(...args);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/subgraphs {5}51 If \(102 branches, 153 nodes\)\n/);
      expect(r.stdout).toContain("                If 'If_7'.then_branch (1 node)\n");
      expect(r.stdout).toContain("                If 'If_7'.else_branch (2 nodes)\n");
      expect(r.stdout).toContain("                  If 'If_inner'.then_branch (1 node)\n");
    }
  });

  test('--json keeps the full list, with counts by op', () => {
    const r = run('inspect', manyIfs, '--json');
    expect(r.code).toBe(0);
    const s = JSON.parse(r.stdout);
    expect(s.subgraphs).toHaveLength(102);
    expect(s.subgraphs[0]).toEqual({ node: 'If_0', op: 'If', attribute: 'then_branch', nodes: 2, depth: 0 });
    expect(s.subgraphsByOp).toEqual({ If: { ops: 51, graphs: 102, nodes: 153 } });
    expect(s.nodeCountTotal).toBe(50 + 153);
  });

  test('If and Loop together (fixture)', () => {
    const r = run('inspect', CONTROL_FLOW);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/subgraphs {5}1 If \(2 branches, 6 nodes\), 1 Loop \(1 body, 10 nodes\); --verbose lists them/);
    const j = JSON.parse(run('inspect', CONTROL_FLOW, '--json', '--shapes').stdout);
    expect(j.subgraphs.map((g: { op: string; attribute: string }) => `${g.op}.${g.attribute}`)).toEqual(['If.then_branch', 'If.else_branch', 'Loop.body']);
  });
});
