/**
 * safetensors reader (header only) and writer.
 *
 * File layout: u64 little-endian header length N, N bytes of JSON header
 * `{ name: { dtype, shape, data_offsets: [begin, end] }, __metadata__?: {...} }`, then the data area.
 * `data_offsets` are relative to the data area (which starts at 8 + N); {@link TensorInfo} holds
 * ABSOLUTE file offsets, ready to be used as ONNX external-data offsets.
 */

/** Bytes per element of every dtype the format defines. */
export const DTYPE_BYTES = {
  F64: 8, F32: 4, F16: 2, BF16: 2,
  I64: 8, I32: 4, I16: 2, I8: 1,
  U64: 8, U32: 4, U16: 2, U8: 1,
  BOOL: 1, F8_E4M3: 1, F8_E5M2: 1,
} as const;

export type DType = keyof typeof DTYPE_BYTES;

export interface TensorInfo {
  name: string;
  dtype: DType;
  shape: number[];
  /** Absolute byte offset of the first data byte in the file. */
  begin: number;
  /** Absolute byte offset one past the last data byte. */
  end: number;
}

/** Random-access bytes of one file (a Blob in the browser, a path in Node, a synthesized header in tests). */
export interface ByteSource {
  /** File name used in error messages and as the default external-data file id. */
  name: string;
  size: number;
  read(offset: number, length: number): Promise<Uint8Array>;
  /** Present on Blob-backed sources: a lazy Blob of bytes [begin, end) (what ORT-web's externalData accepts without a copy in JS). */
  slice?(begin: number, end: number): Blob;
}

export interface SafetensorsFile {
  source: ByteSource;
  /** Byte length of the JSON header (N). */
  headerLength: number;
  /** Absolute offset of the data area (8 + N). */
  dataStart: number;
  tensors: Map<string, TensorInfo>;
  metadata: Record<string, string>;
}

/** Header larger than this is rejected as malformed (real headers are < 1 MB). */
const MAX_HEADER_BYTES = 100 * 1024 * 1024;

export class SafetensorsError extends Error {
  constructor(file: string, message: string) {
    super(`${file}: ${message}`);
    this.name = 'SafetensorsError';
  }
}

export function isDType(s: unknown): s is DType {
  return typeof s === 'string' && Object.prototype.hasOwnProperty.call(DTYPE_BYTES, s);
}

export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** A ByteSource over a Blob/File (browser and Node 20). */
export function blobSource(blob: Blob, name: string): ByteSource {
  return {
    name,
    size: blob.size,
    async read(offset, length) {
      return new Uint8Array(await blob.slice(offset, offset + length).arrayBuffer());
    },
    slice: (begin, end) => blob.slice(begin, end),
  };
}

/** A ByteSource over bytes already in memory. */
export function bytesSource(bytes: Uint8Array, name: string): ByteSource {
  return {
    name,
    size: bytes.byteLength,
    async read(offset, length) {
      return bytes.subarray(offset, offset + length);
    },
  };
}

/** Parses and validates the header of a safetensors file; reads only the header bytes. */
export async function readSafetensorsHeader(src: ByteSource): Promise<SafetensorsFile> {
  const fail = (msg: string): never => {
    throw new SafetensorsError(src.name, msg);
  };
  if (src.size < 8) fail(`truncated safetensors file: ${src.size} bytes, need at least 8 for the header length`);
  const lenBytes = await src.read(0, 8);
  if (lenBytes.byteLength !== 8) fail('could not read the 8-byte header length');
  const dv = new DataView(lenBytes.buffer, lenBytes.byteOffset, 8);
  const n = Number(dv.getBigUint64(0, true));
  if (n < 2 || n > MAX_HEADER_BYTES) fail(`not a safetensors file: header length ${n} is implausible`);
  if (8 + n > src.size) fail(`truncated safetensors file: header of ${n} bytes does not fit in ${src.size} bytes`);
  const headerBytes = await src.read(8, n);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(headerBytes));
  } catch (e) {
    fail(`malformed safetensors header (not UTF-8 JSON): ${(e as Error).message}`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) fail('malformed safetensors header: not a JSON object');
  const dataStart = 8 + n;
  const dataSize = src.size - dataStart;
  const tensors = new Map<string, TensorInfo>();
  let metadata: Record<string, string> = {};
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (raw && typeof raw === 'object') metadata = raw as Record<string, string>;
      continue;
    }
    const t = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (!t || typeof t !== 'object') fail(`tensor "${name}": entry is not an object`);
    if (!isDType(t.dtype)) fail(`tensor "${name}": unknown dtype ${JSON.stringify(t.dtype)} (known: ${Object.keys(DTYPE_BYTES).join(', ')})`);
    const dtype = t.dtype as DType;
    if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      fail(`tensor "${name}": shape ${JSON.stringify(t.shape)} is not a list of non-negative integers`);
    }
    const offs = t.data_offsets;
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((d) => Number.isSafeInteger(d) && d >= 0) || offs[1] < offs[0]) {
      fail(`tensor "${name}": data_offsets ${JSON.stringify(offs)} must be [begin, end] with 0 <= begin <= end`);
    }
    const shape = t.shape as number[];
    const [b, e] = offs as [number, number];
    const expected = numel(shape) * DTYPE_BYTES[dtype];
    if (e - b !== expected) fail(`tensor "${name}": ${dtype}${JSON.stringify(shape)} needs ${expected} bytes, data_offsets give ${e - b}`);
    if (e > dataSize) {
      fail(`truncated safetensors file: tensor "${name}" ends at data offset ${e} but the data area has ${dataSize} bytes`);
    }
    tensors.set(name, { name, dtype, shape, begin: dataStart + b, end: dataStart + e });
  }
  const sorted = [...tensors.values()].filter((t) => t.end > t.begin).sort((a, b) => a.begin - b.begin);
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i].begin < sorted[i - 1].end) fail(`tensors "${sorted[i - 1].name}" and "${sorted[i].name}" overlap`);
  }
  return { source: src, headerLength: n, dataStart, tensors, metadata };
}

export type TensorData = Float32Array | Uint16Array | Int32Array | BigInt64Array | Uint8Array | Int8Array | Float64Array | Int16Array | Uint32Array | BigUint64Array;

export interface TensorToEncode {
  dtype: DType;
  shape: number[];
  /** Raw element storage (F16/BF16 as Uint16Array bit patterns). */
  data: TensorData;
}

/**
 * A safetensors file's bytes with the header written and the data area zeroed (tensors sorted by name,
 * header padded with spaces to 8 bytes), and where each tensor's data starts: for writers that fill the
 * data in place (no second copy of it).
 */
export function allocateSafetensors(tensors: Record<string, { dtype: DType; shape: number[] }>, metadata?: Record<string, string>): { bytes: Uint8Array<ArrayBuffer>; offsets: Map<string, number> } {
  const names = Object.keys(tensors).sort();
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let off = 0;
  const rel = new Map<string, number>();
  for (const name of names) {
    const t = tensors[name];
    const bytes = numel(t.shape) * DTYPE_BYTES[t.dtype];
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [off, off + bytes] };
    rel.set(name, off);
    off += bytes;
  }
  const hb = new TextEncoder().encode(JSON.stringify(header));
  const pad = (8 - (hb.length % 8)) % 8;
  const n = hb.length + pad;
  const out = new Uint8Array(8 + n + off);
  new DataView(out.buffer).setBigUint64(0, BigInt(n), true);
  out.set(hb, 8);
  out.fill(0x20, 8 + hb.length, 8 + n);
  const offsets = new Map<string, number>();
  for (const [name, o] of rel) offsets.set(name, 8 + n + o);
  return { bytes: out, offsets };
}

/** Writes a safetensors file (tensors sorted by name, header padded with spaces to 8 bytes). */
export function encodeSafetensors(tensors: Record<string, TensorToEncode>, metadata?: Record<string, string>): Uint8Array<ArrayBuffer> {
  for (const [name, t] of Object.entries(tensors)) {
    const bytes = numel(t.shape) * DTYPE_BYTES[t.dtype];
    if (t.data.byteLength !== bytes) throw new Error(`encodeSafetensors: tensor "${name}" ${t.dtype}${JSON.stringify(t.shape)} needs ${bytes} bytes, got ${t.data.byteLength}`);
  }
  const { bytes: out, offsets } = allocateSafetensors(tensors, metadata);
  for (const [name, p] of offsets) {
    const d = tensors[name].data;
    out.set(new Uint8Array(d.buffer, d.byteOffset, d.byteLength), p);
  }
  return out;
}

/** Reads one tensor as Float32Array (F32, F16, BF16 and integer dtypes). For tests and CLIs. */
export async function readTensorF32(file: SafetensorsFile, name: string): Promise<Float32Array> {
  const info = file.tensors.get(name);
  if (!info) throw new SafetensorsError(file.source.name, `no tensor "${name}"`);
  const raw = await file.source.read(info.begin, info.end - info.begin);
  const bytes = raw.slice();
  return toFloat32(info.dtype, bytes, file.source.name, name);
}

/** Converts raw little-endian tensor bytes to Float32Array. */
export function toFloat32(dtype: DType, bytes: Uint8Array, file = '?', name = '?'): Float32Array {
  const buf = bytes.byteOffset % 8 === 0 ? bytes : bytes.slice();
  const ab = buf.buffer, o = buf.byteOffset, len = buf.byteLength;
  switch (dtype) {
    case 'F32': return new Float32Array(ab.slice(o, o + len));
    case 'F64': return Float32Array.from(new Float64Array(ab, o, len / 8));
    case 'F16': {
      const u = new Uint16Array(ab, o, len / 2);
      const t = halfToFloatTable();
      const out = new Float32Array(u.length);
      for (let i = 0; i < u.length; i++) out[i] = t[u[i]!]!;
      return out;
    }
    case 'BF16': {
      const u = new Uint16Array(ab, o, len / 2);
      const out = new Float32Array(u.length);
      const ou = new Uint32Array(out.buffer);
      for (let i = 0; i < u.length; i++) ou[i] = u[i] << 16;
      return out;
    }
    case 'I64': return Float32Array.from(new BigInt64Array(ab, o, len / 8), Number);
    case 'I32': return Float32Array.from(new Int32Array(ab, o, len / 4));
    case 'I16': return Float32Array.from(new Int16Array(ab, o, len / 2));
    case 'I8': return Float32Array.from(new Int8Array(ab, o, len));
    case 'U8': case 'BOOL': return Float32Array.from(new Uint8Array(ab, o, len));
    case 'U16': return Float32Array.from(new Uint16Array(ab, o, len / 2));
    case 'U32': return Float32Array.from(new Uint32Array(ab, o, len / 4));
    default: throw new SafetensorsError(file, `tensor "${name}": cannot convert dtype ${dtype} to float32`);
  }
}

let halfTable: Float32Array | undefined;
/** Every IEEE half bit pattern as float32 (256 KiB, built on first use): for converting many values. */
export function halfToFloatTable(): Float32Array {
  if (!halfTable) {
    halfTable = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) halfTable[h] = halfToFloat(h);
  }
  return halfTable;
}

/** IEEE half bit pattern -> number. */
export function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * f * 2 ** -24;
  if (e === 31) return f ? NaN : s * Infinity;
  return s * (1 + f / 1024) * 2 ** (e - 15);
}

/**
 * floatToHalf over a whole array (the same rounding: nearest, ties to even), without a call per element:
 * about 3× faster for the millions of values a LoRA fuse writes.
 */
export function floatsToHalves(src: Float32Array, dst: Uint16Array): void {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < bits.length; i++) {
    const x = bits[i]!;
    const sign = (x >>> 16) & 0x8000;
    const exp = (x >>> 23) & 0xff;
    let mant = x & 0x7fffff;
    const e = exp - 112; // exp - 127 + 15
    let h: number;
    if (exp === 0xff) h = sign | 0x7c00 | (mant ? 0x200 : 0);
    else if (e >= 31) h = sign | 0x7c00;
    else if (e > 0) {
      h = (e << 10) | (mant >> 13);
      const rem = mant & 0x1fff;
      if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++;
      h |= sign;
    } else if (e < -10) h = sign;
    else {
      mant |= 0x800000;
      const shift = 14 - e;
      h = mant >> shift;
      const rem = mant & ((1 << shift) - 1);
      const half = 1 << (shift - 1);
      if (rem > half || (rem === half && h & 1)) h++;
      h |= sign;
    }
    dst[i] = h;
  }
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
/** number -> IEEE half bit pattern (round to nearest even). */
export function floatToHalf(v: number): number {
  f32[0] = v;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let h = mant >> shift;
    const rem = mant & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (h & 1))) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1))) h++;
  return sign | h;
}
