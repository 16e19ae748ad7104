/**
 * The browser playground, end to end in real headless Chromium (Debian's `chromium`, driven by
 * playwright-core; no browser download): `retarget playground` serves the built page, a fixture is
 * uploaded through input#model-file, compiled for wasm without and with dynamic int8, validated in
 * the page with onnxruntime-web, and the downloaded model is checked in onnxruntime-node against
 * the original. A broken file shows the CLI's one-line error.
 *
 * Chromium: /usr/bin/chromium or $CHROMIUM. As with the conformance data, a missing browser is a
 * failure in CI (CI set) and a skip with the install command elsewhere.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { validate } from '../src/bench/validate.js';
import { parseModel } from '../src/io.js';
import { readModel } from '../src/node/files.js';
import { onnxruntimeNode } from '../src/node/ort.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const BIN = path.join(ROOT, 'dist/src/cli/main.js');
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const CNN = path.join(ROOT, 'fixtures/models/cnn-tiny-op13/model.onnx');
const GPT2 = path.join(ROOT, 'fixtures/models/gpt2-tiny-op14/model.onnx');
const SHOTS = process.env.PLAYGROUND_SCREENSHOTS;

const missing = !fs.existsSync(CHROMIUM)
  ? `Chromium not found at ${CHROMIUM}: install it with 'apt-get install -y chromium' (or set CHROMIUM to a Chromium binary)`
  : undefined;

if (missing) {
  if (process.env.CI) test('chromium is installed', () => { throw new Error(missing); });
  else {
    console.warn(`\n[playground] SKIPPED: ${missing}\n`);
    test.skip(`playground in Chromium (${missing})`, () => {});
  }
} else {
  describe('playground in headless Chromium', () => {
    let server: ChildProcess;
    let url: string;
    let browser: Browser;
    let page: Page;

    beforeAll(async () => {
      if (!fs.existsSync(path.join(ROOT, 'dist/web/index.html'))) throw new Error('dist/web is not built: run npm run build');
      server = spawn(process.execPath, [BIN, 'playground', '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
      url = await new Promise<string>((resolve, reject) => {
        let out = '';
        server.stdout!.on('data', (d: Buffer) => {
          out += d.toString();
          const m = /(http:\/\/\S+)/.exec(out);
          if (m) resolve(m[1]!);
        });
        server.stderr!.on('data', (d: Buffer) => { out += d.toString(); });
        server.once('exit', (code) => reject(new Error(`retarget playground exited with ${code}: ${out}`)));
      });
      browser = await chromium.launch({
        executablePath: CHROMIUM,
        // as root, and on a machine without a network: no sandbox, no background connections
        args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      });
      page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
      page.on('pageerror', (e) => console.error(`[playground page] ${e.message}`));
      await page.goto(url);
      await page.waitForFunction(() => /onnxruntime-web/.test(document.getElementById('runtime')?.textContent ?? ''));
      expect(await page.getAttribute('#status', 'data-state')).toBe('idle');
    });

    afterAll(async () => {
      await browser?.close();
      server?.kill();
    });

    /** Upload `file`, compile it, wait for done or error; the downloaded model's bytes when there is one. */
    async function compileInPage(file: string, target: string, quantize: string): Promise<Uint8Array | undefined> {
      await page.setInputFiles('#model-file', file);
      await page.waitForSelector('button#compile:not([disabled])');
      await page.selectOption('select#target', target);
      await page.selectOption('select#quantize', quantize);
      if (SHOTS) await page.screenshot({ path: path.join(SHOTS, `playground-${path.basename(path.dirname(file))}-loaded.png`), fullPage: true });
      await page.click('button#compile');
      expect(await page.getAttribute('#status', 'data-state')).toBe('compiling');
      await page.waitForSelector('#status[data-state=done], #status[data-state=error]', { timeout: 60_000 });
      if (SHOTS) await page.screenshot({ path: path.join(SHOTS, `playground-${path.basename(path.dirname(file))}-${target}-${quantize}.png`), fullPage: true });
      const href = await page.getAttribute('a#download', 'href');
      if (!href) return undefined;
      // the download is a blob: URL; read it in the page
      const bytes = await page.evaluate(async (h) => Array.from(new Uint8Array(await (await fetch(h)).arrayBuffer())), href);
      return Uint8Array.from(bytes);
    }

    /** The downloaded model parses, and runs in onnxruntime-node within the tolerance of the original. */
    async function checkInNode(original: string, bytes: Uint8Array, tolerance: 'fp32' | 'int8'): Promise<Record<string, number>> {
      const compiled = parseModel(bytes).model;
      expect(compiled.metadataProps.find((m) => m.key === 'retarget.target')?.value).toBe('wasm');
      const result = await validate(readModel(original).model, compiled, onnxruntimeNode, { tolerance });
      expect(result.ok, result.worst?.problem).toBe(true);
      const hist: Record<string, number> = {};
      for (const g of compiled.allGraphs()) for (const n of g.nodes) hist[n.qualifiedOp] = (hist[n.qualifiedOp] ?? 0) + 1;
      return hist;
    }

    test('a CNN compiled for wasm: validated in the page, the download runs in onnxruntime-node', async () => {
      const bytes = await compileInPage(CNN, 'wasm', 'none');
      expect(await page.textContent('#error')).toBe('');
      expect(await page.getAttribute('#status', 'data-state')).toBe('done');
      expect(await page.getAttribute('#validation', 'data-ok')).toBe('true');
      expect(await page.textContent('#validation')).toMatch(/worst output 'output' .*max abs error/);
      // the inspect summary, the pass report and the chart are there
      expect(await page.textContent('#model')).toMatch(/IR version[\s\S]*ai\.onnx 13/i);
      expect(await page.textContent('#passes')).toMatch(/fuse-conv-activation/);
      expect(await page.locator('#chart svg rect').count()).toBeGreaterThan(4);
      expect(bytes).toBeDefined();
      const hist = await checkInNode(CNN, bytes!, 'fp32');
      expect(hist['com.microsoft::FusedConv']).toBeGreaterThan(0);
    });

    test('a tiny GPT-2 compiled for wasm with dynamic int8: within the int8 budget in the page and in onnxruntime-node', async () => {
      const bytes = await compileInPage(GPT2, 'wasm', 'dynamic');
      expect(await page.textContent('#error')).toBe('');
      expect(await page.getAttribute('#status', 'data-state')).toBe('done');
      expect(await page.getAttribute('#validation', 'data-ok')).toBe('true');
      expect(await page.textContent('#validation')).toMatch(/int8[\s\S]*worst output 'logits'/);
      expect(await page.textContent('#result-tiles')).toMatch(/Latency p50/);
      const hist = await checkInNode(GPT2, bytes!, 'int8');
      expect(hist['com.microsoft::DynamicQuantizeMatMul']).toBeGreaterThan(0);
      expect(bytes!.length).toBeLessThan(fs.statSync(GPT2).size);
    });

    test('a broken file shows the CLI\'s one-line error', async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'retarget-playground-'));
      const broken = path.join(dir, 'broken.onnx');
      fs.writeFileSync(broken, 'this is not a model');
      await page.setInputFiles('#model-file', broken);
      await page.waitForSelector('#status[data-state=error]');
      expect(await page.isVisible('#error')).toBe(true);
      expect(await page.textContent('#error')).toMatch(/^broken\.onnx: reading: /);
      expect(await page.isDisabled('button#compile')).toBe(true);
      expect(await page.getAttribute('a#download', 'href')).toBeNull();
      fs.rmSync(dir, { recursive: true, force: true });
    });
  });
}
