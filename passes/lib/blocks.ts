/**
 * Block-wise weight codes shared by the weight-only quantizers (quantize-int4's MatMulNBits, the
 * 8-bit embedding tables of int4 and dynamic): columns of a [K, N] matrix quantized in blocks
 * along K, in ONNX Runtime's MatMulNBits / GatherBlockQuantized layouts (see quantize-int4.ts).
 */

/**
 * Symmetric scales tried per block, as fractions of max|w| / 8: the one with the least squared error
 * wins (ties: the first). A data-free improvement on plain round-to-nearest (as llama.cpp's and
 * ORT's newer quantizers do), measured on GPT-2 small: see bench/quantize.ts.
 */
export const SCALE_SEARCH = [1, 0.95, 0.9, 0.85, 0.8, 0.75];

export interface Int4Blocks {
  /** [N, nBlocks, blockSize / 2] packed codes */
  packed: Uint8Array;
  /** [N * nBlocks] */
  scales: Float32Array;
  /** [N * ceil(nBlocks / 2)] packed, only for asymmetric */
  zeroPoints?: Uint8Array;
  nBlocks: number;
}

/**
 * Quantize the columns of a [K, N] matrix given as an accessor (so that [K, N] MatMul weights and
 * [V, D] embedding rows share the code): `at(n, k)` is element k of column n.
 */
export function quantizeInt4Blocks(at: (n: number, k: number) => number, k: number, n: number, blockSize: number, symmetric: boolean): Int4Blocks {
  if (blockSize < 16 || (blockSize & (blockSize - 1)) !== 0) throw new Error(`int4 block size ${blockSize}: must be a power of 2, at least 16`);
  const nBlocks = Math.ceil(k / blockSize);
  const blob = blockSize / 2;
  const packed = new Uint8Array(n * nBlocks * blob);
  const scales = new Float32Array(n * nBlocks);
  const zpBytes = Math.ceil(nBlocks / 2);
  const zeroPoints = symmetric ? undefined : new Uint8Array(n * zpBytes);
  const codes = new Uint8Array(blockSize);
  for (let col = 0; col < n; col++) {
    for (let b = 0; b < nBlocks; b++) {
      const k0 = b * blockSize;
      const len = Math.min(blockSize, k - k0);
      let scale: number, zp: number;
      if (symmetric) {
        let m = 0;
        for (let i = 0; i < len; i++) {
          const x = at(col, k0 + i);
          if (Math.abs(x) > Math.abs(m)) m = x;
        }
        // round-to-nearest with the largest value on the grid is not the least-error grid: try
        // shrinking the scale (clipping the largest values a little) and keep the least squared error
        scale = Math.fround(m / -8);
        zp = 8;
        let best = Infinity;
        for (const f of SCALE_SEARCH) {
          const s = Math.fround((m / -8) * f);
          const inv = s !== 0 ? 1 / s : 0;
          let err = 0;
          for (let i = 0; i < len; i++) {
            const x = at(col, k0 + i);
            const c = Math.min(15, Math.max(0, Math.round(x * inv) + 8));
            const d = x - (c - 8) * s;
            err += d * d;
          }
          if (err < best) {
            best = err;
            scale = s;
          }
        }
      } else {
        let lo = 0, hi = 0;
        for (let i = 0; i < len; i++) {
          const x = at(col, k0 + i);
          if (x < lo) lo = x;
          if (x > hi) hi = x;
        }
        scale = hi > lo ? Math.fround((hi - lo) / 15) : 1;
        zp = Math.min(15, Math.max(0, Math.round(-lo / scale)));
      }
      const inv = scale !== 0 ? 1 / scale : 0;
      codes.fill(zp);
      for (let i = 0; i < len; i++) codes[i] = Math.min(15, Math.max(0, Math.round(at(col, k0 + i) * inv) + zp));
      const base = (col * nBlocks + b) * blob;
      for (let j = 0; j < blob; j++) packed[base + j] = (codes[2 * j]! & 0xf) | ((codes[2 * j + 1]! & 0xf) << 4);
      scales[col * nBlocks + b] = scale;
      if (zeroPoints) {
        const idx = col * zpBytes + (b >> 1);
        zeroPoints[idx] = (b & 1) === 0 ? (zeroPoints[idx]! & 0xf0) | zp : (zeroPoints[idx]! & 0x0f) | (zp << 4);
      }
    }
  }
  return { packed, scales, ...(zeroPoints ? { zeroPoints } : {}), nBlocks };
}

/** Dequantize what quantizeInt4Blocks made, back to column accessors' order: out[col * k + kk]. */
export function dequantizeInt4Blocks(q: Int4Blocks, k: number, n: number, blockSize: number): Float32Array {
  const out = new Float32Array(n * k);
  const blob = blockSize / 2;
  const zpBytes = Math.ceil(q.nBlocks / 2);
  for (let col = 0; col < n; col++) {
    for (let kk = 0; kk < k; kk++) {
      const b = Math.floor(kk / blockSize), i = kk % blockSize;
      const byte = q.packed[(col * q.nBlocks + b) * blob + (i >> 1)]!;
      const code = (i & 1) === 0 ? byte & 0xf : byte >> 4;
      const zpByte = q.zeroPoints ? q.zeroPoints[col * zpBytes + (b >> 1)]! : 0x88;
      const zp = (b & 1) === 0 ? zpByte & 0xf : zpByte >> 4;
      out[col * k + kk] = (code - zp) * q.scales[col * q.nBlocks + b]!;
    }
  }
  return out;
}

/**
 * 8-bit blocks for MatMulNBits (bits = 8): symmetric, code = round(w / scale) + 128 with
 * scale = max|w| / 127 per block; no zero points (the default for 8 bits is 128).
 * B is uint8 [N, n_blocks, block_size].
 */
export function quantizeInt8Blocks(at: (n: number, k: number) => number, k: number, n: number, blockSize: number): Int4Blocks {
  const nBlocks = Math.ceil(k / blockSize);
  const packed = new Uint8Array(n * nBlocks * blockSize).fill(128);
  const scales = new Float32Array(n * nBlocks);
  for (let col = 0; col < n; col++) {
    for (let b = 0; b < nBlocks; b++) {
      const k0 = b * blockSize;
      const len = Math.min(blockSize, k - k0);
      let m = 0;
      for (let i = 0; i < len; i++) m = Math.max(m, Math.abs(at(col, k0 + i)));
      const s = Math.fround(m / 127);
      scales[col * nBlocks + b] = s;
      const inv = s !== 0 ? 1 / s : 0;
      const base = (col * nBlocks + b) * blockSize;
      for (let i = 0; i < len; i++) packed[base + i] = Math.min(255, Math.max(1, Math.round(at(col, k0 + i) * inv) + 128));
    }
  }
  return { packed, scales, nBlocks };
}

/**
 * The integer codes of MatMulNBits / GatherBlockQuantized blocks with their zero points taken out:
 * out[row * nBlocks * blockSize + b * blockSize + i] = code - zero point, for `rows` rows of
 * `nBlocks` blocks. `packed` holds the codes (4 bits: two per byte, low nibble first; 8 bits: one
 * per byte); `zeroPoints` the uint8 zero points (4 bits: two per byte, ceil(nBlocks / 2) bytes per
 * row; 8 bits: one per block), absent for the default 2^(bits-1).
 */
export function blockCodes(packed: Uint8Array, zeroPoints: Uint8Array | undefined, rows: number, nBlocks: number, blockSize: number, bits: 4 | 8): Int16Array {
  const out = new Int16Array(rows * nBlocks * blockSize);
  const zpRow = bits === 4 ? Math.ceil(nBlocks / 2) : nBlocks;
  for (let r = 0; r < rows; r++) {
    for (let b = 0; b < nBlocks; b++) {
      let zp = 1 << (bits - 1);
      if (zeroPoints) {
        const byte = zeroPoints[r * zpRow + (bits === 4 ? b >> 1 : b)]!;
        zp = bits === 8 ? byte : (b & 1) === 0 ? byte & 0xf : byte >> 4;
      }
      const base = (r * nBlocks + b) * blockSize;
      for (let i = 0; i < blockSize; i++) {
        const code = bits === 8 ? packed[base + i]! : (i & 1) === 0 ? packed[(base + i) >> 1]! & 0xf : packed[(base + i) >> 1]! >> 4;
        out[base + i] = code - zp;
      }
    }
  }
  return out;
}
