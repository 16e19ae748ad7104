/** Model files on disk (Node): reading with external data, and atomic writes. */
import fs from 'node:fs';
import path from 'node:path';
import { ExternalDataError, checkExternalLocation, type ExternalDataReader } from '../onnx/external.js';
import { parseModel, serializeModel, type ParsedModel, type SerializeOptions } from '../io.js';
import type { Model } from '../ir/model.js';
import { atStage, FileAccessError, FileError } from '../errors.js';

export { FileError, FileAccessError };

/**
 * Reads external data relative to `dir`. Locations are checked (relative, no `..`), then resolved
 * through links: a location whose real path is outside the real `dir` is refused.
 */
export function fsExternalReader(dir: string): ExternalDataReader {
  const realDir = fs.realpathSync(dir);
  const fds = new Map<string, { fd: number; size: number }>();
  return {
    read(location, offset, length) {
      checkExternalLocation(location);
      let file = fds.get(location);
      if (!file) {
        const full = path.resolve(realDir, location);
        let real: string;
        try {
          real = fs.realpathSync(full);
        } catch {
          throw new ExternalDataError(`external data file '${location}' not found next to the model`);
        }
        if (!real.startsWith(realDir + path.sep)) throw new ExternalDataError(`unsafe external data location '${location}': resolves outside the model's folder`);
        const stat = fs.statSync(real);
        if (!stat.isFile()) throw new ExternalDataError(`external data location '${location}' is not a file`);
        file = { fd: fs.openSync(real, 'r'), size: stat.size };
        fds.set(location, file);
      }
      const n = length ?? file.size - offset;
      if (offset + n > file.size || n < 0) {
        throw new ExternalDataError(`external data '${location}': ${n} bytes at offset ${offset} go beyond the end of the file (${file.size} bytes)`);
      }
      const buf = Buffer.allocUnsafe(n);
      let done = 0;
      while (done < n) {
        const r = fs.readSync(file.fd, buf, done, n - done, offset + done);
        if (r === 0) throw new ExternalDataError(`external data '${location}': unexpected end of file`);
        done += r;
      }
      return new Uint8Array(buf.buffer, buf.byteOffset, n);
    },
    close() {
      for (const f of fds.values()) fs.closeSync(f.fd);
      fds.clear();
    },
  } as ExternalDataReader & { close(): void };
}

export interface LoadedModel extends ParsedModel {
  path: string;
  fileSize: number;
}

function describeFsError(e: NodeJS.ErrnoException): string {
  switch (e.code) {
    case 'ENOENT': return 'no such file';
    case 'EISDIR': return 'is a directory, not a model file';
    case 'EACCES': return 'permission denied';
    default: return e.message;
  }
}

/** Read and parse a model file, with its external data. Errors are RetargetErrors naming the file (FileAccessError: unreadable; BadModelError: malformed). */
export function readModel(file: string): LoadedModel {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (e) {
    throw new FileAccessError(file, 'read', describeFsError(e as NodeJS.ErrnoException), { cause: e });
  }
  const reader = fsExternalReader(path.dirname(path.resolve(file))) as ExternalDataReader & { close(): void };
  try {
    const u8 = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length);
    return { ...parseModel(u8, { externalData: reader }), path: file, fileSize: bytes.length };
  } catch (e) {
    // a malformed model (BadModelError from the codec or the IR) gains the file; a bug becomes an InternalError
    throw atStage(e, 'read', { file });
  } finally {
    reader.close();
  }
}

/** Write chunks to `file`: through a temp file in the same folder, renamed into place. */
function writeChunks(fd: number, chunks: Uint8Array[]): void {
  for (const c of chunks) {
    let done = 0;
    while (done < c.length) done += fs.writeSync(fd, c, done, c.length - done);
  }
}

export interface WriteOptions {
  /** write tensor data to a separate file; `true` names it after the model (`model.onnx.data`) */
  externalData?: boolean | string;
  externalThreshold?: number;
  /** see SerializeOptions.sizeLimit */
  sizeLimit?: number;
}

export interface WrittenModel { path: string; size: number; dataPath?: string; dataSize?: number }

/**
 * Serialize and write a model. Output goes to temp files that are renamed into place only when
 * everything is written, so a failure never leaves a half-written model.
 */
export function writeModel(model: Model, file: string, opts: WriteOptions = {}): WrittenModel {
  const dir = path.dirname(path.resolve(file));
  const defaultData = `${path.basename(file)}.data`;
  const serializeOpts: SerializeOptions = { autoExternalLocation: defaultData };
  if (opts.externalData) serializeOpts.externalData = opts.externalData === true ? defaultData : opts.externalData;
  if (opts.externalThreshold !== undefined) serializeOpts.externalThreshold = opts.externalThreshold;
  if (opts.sizeLimit !== undefined) serializeOpts.sizeLimit = opts.sizeLimit;
  let out;
  try {
    out = serializeModel(model, serializeOpts);
  } catch (e) {
    throw atStage(e, 'write', { file });
  }
  const targets: { final: string; tmp: string; chunks: Uint8Array[] }[] = [];
  const tmpName = (p: string): string => path.join(path.dirname(p), `.${path.basename(p)}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 8)}`);
  if (out.data) {
    const dataPath = path.join(dir, out.data.location);
    targets.push({ final: dataPath, tmp: tmpName(dataPath), chunks: out.data.chunks });
  }
  const modelPath = path.resolve(file);
  targets.push({ final: modelPath, tmp: tmpName(modelPath), chunks: out.chunks });
  try {
    for (const t of targets) {
      const fd = fs.openSync(t.tmp, 'wx');
      try {
        writeChunks(fd, t.chunks);
      } finally {
        fs.closeSync(fd);
      }
    }
    for (const t of targets) fs.renameSync(t.tmp, t.final);
  } catch (e) {
    for (const t of targets) fs.rmSync(t.tmp, { force: true });
    throw new FileAccessError(file, 'write', describeFsError(e as NodeJS.ErrnoException), { cause: e });
  }
  return {
    path: file,
    size: out.size,
    ...(out.data ? { dataPath: path.join(path.dirname(file), out.data.location), dataSize: out.data.size } : {}),
  };
}

/** Write a text file through a temp file and a rename. */
export function writeTextAtomic(file: string, text: string): void {
  const tmp = path.join(path.dirname(path.resolve(file)), `.${path.basename(file)}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 8)}`);
  try {
    fs.writeFileSync(tmp, text, { flag: 'wx' });
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw new FileAccessError(file, 'write', describeFsError(e as NodeJS.ErrnoException), { cause: e });
  }
}
