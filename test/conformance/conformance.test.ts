/**
 * ONNX backend conformance data through our codec and IR, run in onnxruntime-node.
 *
 * Every case must pass unless test/conformance/expectations.json lists it: those are cases where
 * onnxruntime-node already fails on the untouched model (regenerate the file with
 * `UPDATE_EXPECTATIONS=1 npx vitest run test/conformance`). A listed case that now passes fails
 * the suite too, so the file stays true.
 *
 * Data: Debian's libonnx-testdata (/usr/share/libonnx-testdata/data) or $ONNX_TESTDATA. In CI
 * (CI set) missing data is a failure; elsewhere the suite is skipped with a message.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { dataRoot, listCases, runCase, type CaseResult } from './runner.js';

const EXPECTATIONS = path.join(import.meta.dirname, 'expectations.json');
const root = dataRoot();
const cases = listCases(root);
const updating = process.env.UPDATE_EXPECTATIONS === '1';
const inCI = !!process.env.CI;
const expectations: Record<string, string> = fs.existsSync(EXPECTATIONS) ? JSON.parse(fs.readFileSync(EXPECTATIONS, 'utf8')) : {};

const totals = { passed: 0, failed: 0, expectedFailures: 0 };
const fresh: Record<string, string> = {};

if (cases.length === 0) {
  const how = `ONNX conformance data not found at ${root}: install it with 'apt-get install -y libonnx-testdata' or set ONNX_TESTDATA`;
  if (inCI) {
    test('conformance data is installed', () => { throw new Error(how); });
  } else {
    console.warn(`\n[conformance] SKIPPED: ${how}\n`);
    test.skip(`conformance (${how})`, () => {});
  }
} else {
  describe.each(['node', 'pytorch-converted', 'pytorch-operator', 'simple'])('%s', (suite) => {
    const ids = cases.filter((id) => id.startsWith(`${suite}/`));
    test.each(ids)('%s', async (id) => {
      const result: CaseResult = await runCase(path.join(root, id), { roundTrip: !updating });
      if (updating) {
        if (result.status === 'fail') fresh[id] = result.reason ?? 'failed';
        return;
      }
      const expected = expectations[id];
      if (result.status === 'pass') {
        totals.passed++;
        expect(expected, `${id} passes now: remove it from expectations.json`).toBeUndefined();
        return;
      }
      if (expected !== undefined && result.stage === 'runtime') {
        // the round-tripped model must fail as the untouched one does (numbers aside: random ops)
        const shape = (r: string | undefined): string => (r ?? '').replace(/-?\d+(\.\d+)?(e[-+]?\d+)?/g, 'N');
        expect(shape(result.reason), `${id} fails differently after the round trip`).toBe(shape(expected));
        totals.expectedFailures++;
        return;
      }
      totals.failed++;
      throw new Error(`${id}: ${result.reason}`);
    });
  });

  afterAll(() => {
    if (updating) {
      const sorted = Object.fromEntries(Object.entries(fresh).sort(([a], [b]) => a.localeCompare(b)));
      fs.writeFileSync(EXPECTATIONS, `${JSON.stringify(sorted, null, 2)}\n`);
      console.log(`\n[conformance] wrote ${Object.keys(sorted).length} expected failures of ${cases.length} cases to ${EXPECTATIONS}\n`);
      return;
    }
    console.log(`\n[conformance] ${cases.length} cases: ${totals.passed} passed, ${totals.failed} failed, ${totals.expectedFailures} skipped (expected onnxruntime failures, see expectations.json)\n`);
  });
}
