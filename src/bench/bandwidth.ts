/**
 * Memory bandwidth, measured in process: the roofline of a decode step (which reads every weight
 * once per token) is bandwidth / weight bytes.
 *
 * Method: a shared buffer much larger than any last-level cache (default 512 MiB) is written once
 * (so its pages are real, not the one shared zero page), then `threads` worker threads each sum
 * their slice of it as float64 and bytes / wall time (all slices) is one sample. One untimed pass
 * first (the code gets optimized on it), then `runs` timed passes: the best is the figure. The sum is
 * a small WebAssembly SIMD loop (16-byte loads, eight independent accumulators): a plain JavaScript
 * loop is bound by its adds, not by memory. Measured on a 2-core AMD EPYC VM: the JavaScript loop
 * 15.9 GB/s on 1 thread and 27.9 on 2 (it scales with threads: compute-bound), the WebAssembly
 * loop 31.6 on 1 thread and no more on 2 (memory-bound). Without WebAssembly SIMD or shared
 * memory, the JavaScript loop is the fallback (and `method` says so). Same thread count as ONNX
 * Runtime's intra-op threads: one core alone may not draw the whole machine's bandwidth.
 */
import { Worker } from 'node:worker_threads';

export interface BandwidthMeasurement {
  /** best sample, GB/s (1e9 bytes per second) */
  gbPerSec: number;
  /** every timed sample, GB/s */
  samplesGBs: number[];
  /** buffer size read per sample */
  bytes: number;
  threads: number;
  method: string;
}

export interface BandwidthOptions {
  /** buffer size (default 512 MiB) */
  bytes?: number;
  /** reader threads (default 1) */
  threads?: number;
  /** timed passes (default 3) */
  runs?: number;
  /** 'js' forces the JavaScript loop (default: WebAssembly SIMD where available) */
  method?: 'wasm' | 'js';
}

/** Unsigned LEB128. */
function leb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n = Math.floor(n / 128);
    if (n) b |= 0x80;
    out.push(b);
  } while (n);
  return out;
}

/**
 * A WebAssembly module importing shared memory env.mem (`pages` pages) and exporting
 * sum(from, to) -> f64: the float64 sum of bytes [from, to) (a multiple of 128 bytes long), eight
 * f64x2 accumulators, 128 bytes an iteration.
 */
export function sumModuleBytes(pages: number): Uint8Array {
  const section = (id: number, bytes: number[]): number[] => [id, ...leb(bytes.length), ...bytes];
  const F64X2_ADD = [0xfd, ...leb(0xf0)];
  const body: number[] = [1, 8, 0x7b]; // locals: 8 x v128
  body.push(0x02, 0x40, 0x03, 0x40); // block, loop
  body.push(0x20, 0, 0x20, 1, 0x4f, 0x0d, 1); // from >= to: break
  for (let k = 0; k < 8; k++) body.push(0x20, 2 + k, 0x20, 0, 0xfd, 0x00, 4, ...leb(16 * k), ...F64X2_ADD, 0x21, 2 + k); // acc_k += load(from + 16k)
  body.push(0x20, 0, 0x41, ...[0x80, 0x01], 0x6a, 0x21, 0, 0x0c, 0, 0x0b, 0x0b); // from += 128; continue; end end
  body.push(0x20, 2);
  for (let k = 1; k < 8; k++) body.push(0x20, 2 + k, ...F64X2_ADD);
  body.push(0x21, 2, 0x20, 2, 0xfd, 0x21, 0, 0x20, 2, 0xfd, 0x21, 1, 0xa0, 0x0b); // lane 0 + lane 1
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, [1, 0x60, 2, 0x7f, 0x7f, 1, 0x7c]), // type (i32, i32) -> f64
    ...section(2, [1, 3, 0x65, 0x6e, 0x76, 3, 0x6d, 0x65, 0x6d, 0x02, 0x03, ...leb(pages), ...leb(pages)]), // import env.mem, shared
    ...section(3, [1, 0]),
    ...section(7, [1, 3, 0x73, 0x75, 0x6d, 0x00, 0]), // export sum
    ...section(10, [1, ...leb(body.length), ...body]),
  ]);
}

const WASM_WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const inst = new WebAssembly.Instance(workerData.module, { env: { mem: workerData.memory } });
parentPort.on('message', () => parentPort.postMessage(inst.exports.sum(workerData.start, workerData.end)));
parentPort.postMessage('ready');
`;

const JS_WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const a = new Float64Array(workerData.buffer);
const s = workerData.start / 8, e = workerData.end / 8;
parentPort.on('message', () => {
  let x0 = 0, x1 = 0, x2 = 0, x3 = 0, x4 = 0, x5 = 0, x6 = 0, x7 = 0;
  for (let i = s; i < e; i += 8) {
    x0 += a[i]; x1 += a[i + 1]; x2 += a[i + 2]; x3 += a[i + 3];
    x4 += a[i + 4]; x5 += a[i + 5]; x6 += a[i + 6]; x7 += a[i + 7];
  }
  parentPort.postMessage(x0 + x1 + x2 + x3 + x4 + x5 + x6 + x7);
});
parentPort.postMessage('ready');
`;

function once(w: Worker): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const onError = (e: Error): void => { w.off('message', onMessage); reject(e); };
    const onMessage = (m: unknown): void => { w.off('error', onError); resolve(m); };
    w.once('message', onMessage);
    w.once('error', onError);
  });
}

/** The part of the WebAssembly global used here (the project's TypeScript libs do not declare it). */
interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  Module: new (bytes: Uint8Array) => object;
  Memory: new (descriptor: { initial: number; maximum: number; shared: boolean }) => { buffer: ArrayBufferLike };
}

/** A shared buffer of `bytes` and how to read it: WebAssembly SIMD when available. */
function sharedBuffer(bytes: number, js: boolean): { buffer: SharedArrayBuffer; wasm?: { module: object; memory: object } } {
  const wa = (globalThis as unknown as { WebAssembly?: WasmApi }).WebAssembly;
  const pages = bytes / 65536;
  try {
    const code = sumModuleBytes(pages);
    if (!js && wa?.validate(code)) {
      const memory = new wa.Memory({ initial: pages, maximum: pages, shared: true });
      return { buffer: memory.buffer as SharedArrayBuffer, wasm: { module: new wa.Module(code), memory } };
    }
  } catch {
    // no SIMD or no shared memory: the JavaScript loop
  }
  return { buffer: new SharedArrayBuffer(bytes) };
}

export async function measureBandwidth(opts: BandwidthOptions = {}): Promise<BandwidthMeasurement> {
  const threads = Math.max(1, Math.floor(opts.threads ?? 1));
  const runs = Math.max(1, Math.floor(opts.runs ?? 3));
  // whole 64 KiB pages; every slice a multiple of 128 bytes
  const pages = Math.max(threads, Math.ceil((opts.bytes ?? 512 * 1024 * 1024) / 65536));
  const slice = Math.floor((pages * 65536) / threads / 128) * 128;
  const bytes = slice * threads;
  const { buffer, wasm } = sharedBuffer(pages * 65536, opts.method === 'js');
  new Float64Array(buffer).fill(1); // touch every page: untouched pages all map the one zero page
  const workers: Worker[] = [];
  try {
    for (let k = 0; k < threads; k++) {
      const range = { start: k * slice, end: (k + 1) * slice };
      workers.push(wasm
        ? new Worker(WASM_WORKER, { eval: true, workerData: { module: wasm.module, memory: wasm.memory, ...range } })
        : new Worker(JS_WORKER, { eval: true, workerData: { buffer, ...range } }));
    }
    await Promise.all(workers.map(once));
    const pass = async (): Promise<number> => {
      const t0 = performance.now();
      const sums = await Promise.all(workers.map((w) => { const p = once(w); w.postMessage('go'); return p; }));
      const ms = performance.now() - t0;
      const total = (sums as number[]).reduce((a, b) => a + b, 0);
      if (total !== bytes / 8) throw new Error(`bandwidth: read ${total} of ${bytes / 8} elements`); // the loop really read it all
      return bytes / (ms / 1000) / 1e9;
    };
    await pass(); // untimed: the workers' code gets optimized
    const samplesGBs: number[] = [];
    for (let r = 0; r < runs; r++) samplesGBs.push(await pass());
    return {
      gbPerSec: Math.max(...samplesGBs), samplesGBs, bytes, threads,
      method: `${wasm ? 'WebAssembly SIMD' : 'JavaScript'} sum of a ${Math.round(bytes / 2 ** 20)} MiB float64 buffer by ${threads} worker thread${threads === 1 ? '' : 's'}, best of ${runs}`,
    };
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}
