/**
 * Acceptance for shape inference on ONNX's backend test data: with the graph inputs pinned to the
 * shapes of test_data_set_0 (static inputs), the inferred type and shape of every graph output
 * must equal the expected output's. Declared types (value_info, output types) are removed first,
 * so nothing is copied from the model. Exceptions are listed with their reason in
 * shape-expectations.json (regenerate with UPDATE_EXPECTATIONS=1).
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { dataRoot, listCases } from '../conformance/runner.js';
import { checkCase } from './shape-check.js';

const EXPECTATIONS = path.join(import.meta.dirname, 'shape-expectations.json');
const root = dataRoot();
const cases = listCases(root);
const updating = process.env.UPDATE_EXPECTATIONS === '1';
const expectations: Record<string, string> = fs.existsSync(EXPECTATIONS) ? JSON.parse(fs.readFileSync(EXPECTATIONS, 'utf8')) : {};
const fresh: Record<string, string> = {};
const totals = { passed: 0, excepted: 0 };

if (cases.length === 0) {
  test.skip('shape conformance (ONNX test data not installed: apt-get install -y libonnx-testdata)', () => {});
} else {
  describe.each(['node', 'pytorch-converted', 'pytorch-operator', 'simple'])('%s', (suite) => {
    test.each(cases.filter((id) => id.startsWith(`${suite}/`)))('%s', (id) => {
      const problem = checkCase(path.join(root, id));
      if (updating) { if (problem) fresh[id] = problem; return; }
      if (problem === undefined) {
        totals.passed++;
        expect(expectations[id], `${id} passes now: remove it from shape-expectations.json`).toBeUndefined();
        return;
      }
      expect(expectations[id], `${id}: ${problem}`).toBeDefined();
      totals.excepted++;
    });
  });
  afterAll(() => {
    if (updating) {
      fs.writeFileSync(EXPECTATIONS, `${JSON.stringify(Object.fromEntries(Object.entries(fresh).sort()), null, 2)}\n`);
      console.log(`\n[shapes] wrote ${Object.keys(fresh).length} exceptions of ${cases.length} cases\n`);
    } else {
      console.log(`\n[shapes] ${cases.length} cases: ${totals.passed} inferred exactly, ${totals.excepted} listed exceptions\n`);
    }
  });
}
