/** Where a benchmark ran: CPU model and ISA flags, cores, versions, a machine label. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ort from 'onnxruntime-node';
import type { BenchEnvironment } from './types.js';

/**
 * CPU features that matter for kernels. /proc/cpuinfo lists ~100 flags on x86 (most irrelevant to
 * inference speed); we keep these. x86: SSE4/AVX/FMA/AVX-512/VNNI/AMX; Arm (`Features`): NEON
 * (asimd), dot product, fp16, i8mm, bf16, SVE, SME.
 */
const KERNEL_FLAG = /^(sse4_1|sse4_2|avx|avx2|fma|f16c|avx512.*|avx_vnni.*|avx_ifma|avx_ne_convert|amx.*|neon|asimd|asimddp|asimdhp|asimdrdm|asimdfhm|fphp|dotprod|i8mm|bf16|sve\d*|sve_\w+|sme\d*|sme_\w+)$/;

export interface CpuInfo { model: string; flags: string[] }

/** Parse /proc/cpuinfo text (first processor block that has the fields). */
export function parseCpuinfo(text: string): CpuInfo {
  let model = '';
  let flags: string[] = [];
  for (const line of text.split('\n')) {
    const m = /^([^:]+?)\s*:\s*(.*)$/.exec(line);
    if (!m) continue;
    const key = m[1]!.trim().toLowerCase(), value = m[2]!.trim();
    if (!model && (key === 'model name' || key === 'hardware' || key === 'cpu model' || key === 'processor' && /[a-z]/i.test(value))) model = value;
    if (flags.length === 0 && (key === 'flags' || key === 'features')) flags = value.split(/\s+/).filter(Boolean);
  }
  return { model, flags: [...new Set(flags.filter((f) => KERNEL_FLAG.test(f)))].sort() };
}

export function cpuInfo(): CpuInfo {
  const fallback = os.cpus()[0]?.model?.trim() || 'unknown';
  let info: CpuInfo = { model: '', flags: [] };
  try {
    info = parseCpuinfo(fs.readFileSync('/proc/cpuinfo', 'utf8'));
  } catch {
    // not Linux: os.cpus() gives the model; flags stay unknown
  }
  return { model: info.model || fallback, flags: info.flags };
}

/** retarget's version: the package.json above this file (src/bench or dist/src/bench). */
export function retargetVersion(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const file = path.join(dir, 'package.json');
    try {
      const pkg = JSON.parse(fs.readFileSync(file, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'retarget' && pkg.version) return pkg.version;
    } catch {
      // keep looking upwards
    }
    dir = path.dirname(dir);
  }
  return 'unknown';
}

export function onnxruntimeVersion(): string {
  return ort.env.versions?.node ?? ort.env.versions?.common ?? 'unknown';
}

export function benchEnvironment(opts: { machine?: string; threads: number; target?: string }): BenchEnvironment {
  const cpu = cpuInfo();
  return {
    machine: opts.machine || os.hostname(),
    cpuModel: cpu.model,
    cpuFlags: cpu.flags,
    cores: os.cpus().length,
    threads: opts.threads,
    platform: process.platform,
    arch: process.arch,
    node: process.version,
    onnxruntime: onnxruntimeVersion(),
    retarget: retargetVersion(),
    ...(opts.target ? { target: opts.target } : {}),
  };
}
