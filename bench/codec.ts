/**
 * npm run bench:codec MODEL [--runs N] [--no-python]
 *
 * Decode + IR build + encode of a model file, as `retarget convert` does it, against ONNX's
 * Python tooling (`onnx.load` + `onnx.save`, Debian's python3-onnx) as the anchor. Every run is a
 * fresh process (so peak RSS is that of one round trip, and garbage from earlier runs does not
 * count), and the two tools alternate (A B A B ...) so machine noise hits both alike.
 * Try it on gpt2-small from `shared/corpus/export.py --set large` (~650 MB).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { readModel, writeModel } from '../src/node/files.js';

interface Run { seconds: number; peakRss: number }

const PYTHON = '/usr/bin/python3';
const PY_SCRIPT = `
import resource, sys, time
import onnx
t = time.perf_counter()
m = onnx.load(sys.argv[1])
onnx.save(m, sys.argv[2])
dt = time.perf_counter() - t
print(f"{dt} {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}")
`;

/** Child mode: one round trip, prints "seconds peakRssBytes". */
function child(model: string, out: string): void {
  const t0 = performance.now();
  const loaded = readModel(model);
  writeModel(loaded.model, out);
  const seconds = (performance.now() - t0) / 1000;
  process.stdout.write(`${seconds} ${process.resourceUsage().maxRSS * 1024}\n`);
}

function parse(stdout: string, what: string): Run {
  const [s, rss] = stdout.trim().split(/\s+/).map(Number);
  if (!Number.isFinite(s) || !Number.isFinite(rss)) throw new Error(`${what} printed '${stdout.trim()}'`);
  return { seconds: s!, peakRss: rss! };
}

function runOurs(model: string, out: string): Run {
  const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--child', model, out], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`retarget round trip failed: ${r.stderr}`);
  return parse(r.stdout, 'retarget');
}

function runPython(model: string, out: string): Run | undefined {
  const r = spawnSync(PYTHON, ['-c', PY_SCRIPT, model, out], { encoding: 'utf8' });
  if (r.status !== 0) return undefined;
  return parse(r.stdout, 'python');
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

function main(argv: string[]): void {
  if (argv[0] === '--child') { child(argv[1]!, argv[2]!); return; }
  const model = argv.find((a) => !a.startsWith('--'));
  const runsAt = argv.indexOf('--runs');
  const runs = runsAt >= 0 ? Number(argv[runsAt + 1]) : 5;
  if (!model || !Number.isInteger(runs) || runs < 1) {
    process.stderr.write('usage: npm run bench:codec -- MODEL [--runs N] [--no-python]\n');
    process.exitCode = 2;
    return;
  }
  const size = fs.statSync(model).size;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'retarget-bench-'));
  const ours: Run[] = [];
  const python: Run[] = [];
  let pythonOk = !argv.includes('--no-python') && fs.existsSync(PYTHON);
  try {
    for (let i = 0; i < runs; i++) {
      ours.push(runOurs(model, path.join(tmp, 'ours.onnx')));
      fs.rmSync(path.join(tmp, 'ours.onnx'), { force: true });
      if (pythonOk) {
        const p = runPython(model, path.join(tmp, 'python.onnx'));
        fs.rmSync(path.join(tmp, 'python.onnx'), { force: true });
        if (p) python.push(p); else pythonOk = false;
      }
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  const mb = (n: number): string => `${(n / 1e6).toFixed(0)} MB`;
  const row = (name: string, rs: Run[]): string => {
    const t = rs.map((r) => r.seconds);
    const rss = median(rs.map((r) => r.peakRss));
    return `${name.padEnd(22)} ${median(t).toFixed(3).padStart(8)} s  ${Math.min(...t).toFixed(3).padStart(8)} s  ${mb(rss).padStart(9)}  ${(rss / size).toFixed(2).padStart(5)}x`;
  };
  console.log(`model: ${model} (${mb(size)}), ${runs} interleaved runs, each a fresh process`);
  console.log(`${'tool'.padEnd(22)} ${'median'.padStart(10)}  ${'min'.padStart(10)}  ${'peak RSS'.padStart(9)}  ${'/file'.padStart(6)}`);
  console.log(row('retarget convert', ours));
  if (python.length) {
    console.log(row('python onnx load+save', python));
    const ratios = ours.map((o, i) => python[i]!.seconds / o.seconds);
    console.log(`speedup vs python: median ${median(ratios).toFixed(2)}x (per-pair ratios ${ratios.map((r) => r.toFixed(2)).join(', ')})`);
  } else {
    console.log('(python3-onnx not available: no anchor; apt-get install -y python3-onnx)');
  }
}

main(process.argv.slice(2));
