/**
 * `--target host`: pick the built-in target that fits this machine, from its CPU flags
 * (/proc/cpuinfo on Linux; the architecture elsewhere).
 */
import fs from 'node:fs';
import os from 'node:os';
import type { Target } from '../target.js';
import { findTarget } from '../../targets/index.js';

export interface HostInfo { arch: string; flags: Set<string>; chosen: string; why: string }

export function detectHost(cpuinfo?: string, arch = os.arch()): HostInfo {
  let text = cpuinfo;
  if (text === undefined) {
    try {
      text = fs.readFileSync('/proc/cpuinfo', 'utf8');
    } catch {
      text = '';
    }
  }
  const line = text.split('\n').find((l) => /^(flags|Features)\s*:/.test(l)) ?? '';
  const flags = new Set(line.replace(/^[^:]*:/, '').trim().split(/\s+/).filter(Boolean));
  if (arch === 'arm64') return { arch, flags, chosen: 'arm64', why: `arm64${flags.has('asimddp') ? ' with dot product (asimddp)' : ''}` };
  if (arch === 'x64') {
    if (flags.has('avx512_vnni') || flags.has('avx_vnni')) return { arch, flags, chosen: 'x86-vnni', why: `x86-64 with ${flags.has('avx512_vnni') ? 'avx512_vnni' : 'avx_vnni'}` };
    if (flags.has('avx512f') && flags.has('avx512bw')) return { arch, flags, chosen: 'x86-avx512', why: 'x86-64 with AVX-512, no VNNI' };
    if (flags.has('avx2')) return { arch, flags, chosen: 'x86-avx2', why: 'x86-64 with AVX2, no AVX-512/VNNI' };
  }
  return { arch, flags, chosen: 'portable', why: `no ORT CPU preset for ${arch}${arch === 'x64' ? ' without AVX2' : ''}` };
}

/** The target for this machine, named `host`, with the choice in its description. */
export function hostTarget(info: HostInfo = detectHost()): Target {
  const base = findTarget(info.chosen)!;
  return { ...base, name: 'host', description: `this machine (${info.why}): ${base.name}` };
}
