/**
 * The whole ONNX backend test data through `compile --target portable` (and x86-avx2, whose
 * fusions and contrib ops must not break unusual graphs either): every case must give the
 * expected outputs, except those onnxruntime already fails on the untouched model (listed in
 * expectations.json), which must fail the same way. Data as in conformance.test.ts.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { compile } from '../../src/compile.js';
import { onnxruntimeNode } from '../../src/node/ort.js';
import { portable } from '../../targets/portable.js';
import { x86Avx2 } from '../../targets/x86-avx2.js';
import { dataRoot, listCases, runCase } from './runner.js';

const root = dataRoot();
const cases = listCases(root);
const expectations: Record<string, string> = JSON.parse(fs.readFileSync(path.join(import.meta.dirname, 'expectations.json'), 'utf8'));
const totals = { passed: 0, failed: 0, expectedFailures: 0, fixed: 0, rewrites: 0 };

if (cases.length === 0) {
  if (process.env.CI) test('conformance data is installed', () => { throw new Error(`ONNX conformance data not found at ${root}: apt-get install -y libonnx-testdata`); });
  else test.skip('compile conformance (ONNX test data not installed: apt-get install -y libonnx-testdata)', () => {});
} else {
  describe.each([portable, x86Avx2].map((t) => [t.name, t] as const))('%s', (_name, target) => describe.each(['node', 'pytorch-converted', 'pytorch-operator', 'simple'])('%s', (suite) => {
    test.each(cases.filter((id) => id.startsWith(`${suite}/`)))('%s', async (id) => {
      const result = await runCase(path.join(root, id), {
        roundTrip: true,
        transform: async (model) => {
          const report = await compile(model, target, { runtime: onnxruntimeNode, verifyEach: true });
          totals.rewrites += report.rewrites;
        },
      });
      const expected = expectations[id];
      if (result.status === 'pass') {
        // a case onnxruntime fails on untouched may pass once compiled (e.g. the failing op folded away)
        if (expected !== undefined) totals.fixed++;
        else totals.passed++;
        return;
      }
      if (expected !== undefined && result.stage === 'runtime') { totals.expectedFailures++; return; }
      totals.failed++;
      throw new Error(`${id}: ${result.reason}`);
    });
  }));
  afterAll(() => {
    console.log(`\n[compile conformance] ${cases.length} cases x 2 targets through 'compile' for portable and x86-avx2: ${totals.passed} passed, ${totals.failed} failed, ${totals.expectedFailures} skipped (expected onnxruntime failures), ${totals.fixed} that onnxruntime fails on untouched now pass; ${totals.rewrites} rewrites\n`);
  });
}
