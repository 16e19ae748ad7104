#!/usr/bin/env node
/**
 * Builds the playground into dist/web: the page and its compile worker bundled by esbuild for the
 * browser (from the browser-safe core; a Node built-in anywhere in the bundle fails the build),
 * the stylesheet, and onnxruntime-web's wasm files, served beside the page (no CDN: it works offline).
 * Run by `npm run build`, so `npm install` builds it too.
 */
import fs from 'node:fs';
import { builtinModules } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');
const out = path.join(root, 'dist', 'web');
const builtins = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));

/**
 * A Node built-in or onnxruntime-node in the browser bundle is a build error, naming the importer.
 * A package may map a built-in away for browsers (protobufjs: `"browser": { "fs": false }`, an
 * optional require in a try): esbuild honours that, so a built-in is an error only when it would
 * resolve to Node's own module.
 */
const browserOnly = {
  name: 'browser-only',
  setup(build) {
    build.onResolve({ filter: /.*/ }, async (args) => {
      if (args.pluginData?.checked) return undefined;
      const bare = args.path.startsWith('node:') ? args.path : args.path.split('/')[0];
      const error = { errors: [{ text: `the browser bundle imports '${args.path}' (from ${path.relative(root, args.importer)}): the playground may use only the browser-safe core` }] };
      if (args.path.startsWith('onnxruntime-node')) return error;
      if (!builtins.has(args.path) && !builtins.has(bare)) return undefined;
      const r = await build.resolve(args.path, { kind: args.kind, importer: args.importer, resolveDir: args.resolveDir, pluginData: { checked: true } });
      return r.errors.length || r.external ? error : undefined;
    });
  },
};

fs.rmSync(out, { recursive: true, force: true });
fs.mkdirSync(path.join(out, 'ort'), { recursive: true });
const result = await esbuild.build({
  entryPoints: { main: path.join(here, 'main.ts'), worker: path.join(here, 'worker.ts') },
  outdir: out,
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: ['chrome110', 'firefox115', 'safari16.4'],
  // onnxruntime-web's build that loads its wasm glue from env.wasm.wasmPaths (our ort/ folder)
  // instead of inlining it: its threads then start from that file, not from our worker
  conditions: ['onnxruntime-web-use-extern-wasm'],
  minify: true,
  sourcemap: true,
  metafile: true,
  logLevel: 'warning',
  plugins: [browserOnly],
});
// belt and braces: nothing Node-only reached the bundle through a path the plugin did not see
const inputs = Object.keys(result.metafile.inputs);
const bad = inputs.filter((f) => f.includes('onnxruntime-node') || /(^|\/)src\/node\//.test(f));
if (bad.length) throw new Error(`the browser bundle includes Node-only modules: ${bad.join(', ')}`);

for (const f of ['index.html', 'style.css']) fs.copyFileSync(path.join(here, f), path.join(out, f));
const ortDist = path.join(root, 'node_modules', 'onnxruntime-web', 'dist');
for (const f of ['ort-wasm-simd-threaded.mjs', 'ort-wasm-simd-threaded.wasm']) fs.copyFileSync(path.join(ortDist, f), path.join(out, 'ort', f));
const size = (f) => fs.statSync(path.join(out, f)).size;
const kib = (n) => `${(n / 1024).toFixed(0)} KiB`;
process.stdout.write(`playground: dist/web (main.js ${kib(size('main.js'))}, worker.js ${kib(size('worker.js'))}, ort wasm ${kib(size('ort/ort-wasm-simd-threaded.wasm'))})\n`);
