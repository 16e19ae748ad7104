/** NumPy .npy files (format 1.0-3.0, C order, little-endian or 1-byte types) as tensors. */
import fs from 'node:fs';
import { DataType } from '../ir/dtype.js';
import { Tensor } from '../ir/tensor.js';

const DTYPES: Record<string, number> = {
  f4: DataType.FLOAT, f8: DataType.DOUBLE, f2: DataType.FLOAT16, i8: DataType.INT64, i4: DataType.INT32,
  i2: DataType.INT16, i1: DataType.INT8, u1: DataType.UINT8, u2: DataType.UINT16, u4: DataType.UINT32,
  u8: DataType.UINT64, b1: DataType.BOOL,
};

export class NpyError extends Error {}

export function readNpy(file: string): Tensor {
  const buf = fs.readFileSync(file);
  if (buf.length < 10 || buf.toString('latin1', 0, 6) !== '\x93NUMPY') throw new NpyError(`${file}: not a .npy file`);
  const major = buf[6]!;
  const headerLen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  const header = buf.toString('latin1', start, start + headerLen);
  const descr = /'descr':\s*'([<>|=])([a-z]\d+)'/.exec(header);
  const order = /'fortran_order':\s*(True|False)/.exec(header);
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header);
  if (!descr || !order || !shape) throw new NpyError(`${file}: unreadable .npy header`);
  if (descr[1] === '>') throw new NpyError(`${file}: big-endian data is not supported`);
  if (order[1] === 'True') throw new NpyError(`${file}: Fortran-order arrays are not supported`);
  const dataType = DTYPES[descr[2]!];
  if (dataType === undefined) throw new NpyError(`${file}: dtype ${descr[2]} is not supported`);
  const dims = shape[1]!.split(',').map((s) => s.trim()).filter(Boolean).map(Number);
  const bytes = new Uint8Array(buf.subarray(start + headerLen));
  const t = Tensor.fromRaw(dataType, dims, bytes);
  try {
    t.validate(file);
  } catch (e) {
    throw new NpyError((e as Error).message);
  }
  return t;
}
