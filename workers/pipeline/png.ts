/**
 * PNG encoder (8-bit RGBA, non-interlaced) with text chunks, and a text-chunk reader.
 *
 * Pixels: one Paeth-filtered scanline per row, zlib-compressed with the platform's
 * `CompressionStream('deflate')` (browsers, Node ≥ 18) or, where that is missing, stored
 * (uncompressed) deflate blocks. Text: `tEXt` when the value is Latin-1, else an uncompressed
 * `iTXt` (UTF-8), as Pillow (and so AUTOMATIC1111) writes them. The same pixels and text give the
 * same bytes on one platform; the compressed bytes may differ between zlib implementations.
 */

const SIGNATURE = Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a);

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 (ISO 3309, as PNG uses) of bytes, continuing from `crc`. */
export function crc32(bytes: Uint8Array, crc = 0): number {
  let c = ~crc >>> 0;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

function adler32(bytes: Uint8Array): number {
  let a = 1;
  let b = 0;
  const MOD = 65521;
  for (let i = 0; i < bytes.length; ) {
    const end = Math.min(i + 5552, bytes.length);
    for (; i < end; i++) {
      a += bytes[i]!;
      b += a;
    }
    a %= MOD;
    b %= MOD;
  }
  return ((b << 16) | a) >>> 0;
}

/** zlib stream with stored (uncompressed) deflate blocks. */
export function zlibStored(data: Uint8Array): Uint8Array {
  const blocks = Math.max(1, Math.ceil(data.length / 65535));
  const out = new Uint8Array(2 + blocks * 5 + data.length + 4);
  out[0] = 0x78;
  out[1] = 0x01;
  let p = 2;
  for (let b = 0; b < blocks; b++) {
    const start = b * 65535;
    const len = Math.min(65535, data.length - start);
    out[p++] = b === blocks - 1 ? 1 : 0;
    out[p++] = len & 0xff;
    out[p++] = len >>> 8;
    out[p++] = ~len & 0xff;
    out[p++] = (~len >>> 8) & 0xff;
    out.set(data.subarray(start, start + len), p);
    p += len;
  }
  const ad = adler32(data);
  out[p++] = ad >>> 24;
  out[p++] = (ad >>> 16) & 0xff;
  out[p++] = (ad >>> 8) & 0xff;
  out[p++] = ad & 0xff;
  return out;
}

async function streamThrough(data: Uint8Array, stream: CompressionStream | DecompressionStream): Promise<Uint8Array> {
  const writer = stream.writable.getWriter();
  void writer.write(data as Uint8Array<ArrayBuffer>).then(() => writer.close()).catch(() => {});
  const chunks: Uint8Array[] = [];
  const reader = stream.readable.getReader();
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    total += value.length;
  }
  const out = new Uint8Array(total);
  let p = 0;
  for (const c of chunks) {
    out.set(c, p);
    p += c.length;
  }
  return out;
}

/** zlib-compress (CompressionStream 'deflate' = RFC 1950), or stored blocks without it. */
export async function zlibCompress(data: Uint8Array, compress = true): Promise<Uint8Array> {
  if (compress && typeof CompressionStream === 'function') return streamThrough(data, new CompressionStream('deflate'));
  return zlibStored(data);
}

async function zlibInflate(data: Uint8Array, where: string): Promise<Uint8Array> {
  if (typeof DecompressionStream !== 'function') throw new Error(`${where}: compressed text needs DecompressionStream`);
  try {
    return await streamThrough(data, new DecompressionStream('deflate'));
  } catch (e) {
    throw new Error(`${where}: corrupt zlib data (${(e as Error).message})`);
  }
}

function u32be(v: number): Uint8Array {
  return Uint8Array.of(v >>> 24, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff);
}

function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  out.set(u32be(data.length), 0);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  out.set(u32be(crc32(out.subarray(4, 8 + data.length))), 8 + data.length);
  return out;
}

function isLatin1(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0xff) return false;
  return true;
}

function latin1Bytes(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

function checkKeyword(key: string): void {
  if (key.length < 1 || key.length > 79 || !isLatin1(key) || key.includes('\0') || key !== key.trim() || key.includes('  ')) {
    throw new Error(`PNG text keyword "${key}" is invalid (1-79 Latin-1 characters, no leading/trailing/double spaces)`);
  }
}

/** tEXt (Latin-1 value) or uncompressed iTXt (anything else) chunk. */
export function textChunk(key: string, value: string): Uint8Array {
  checkKeyword(key);
  const k = latin1Bytes(key);
  if (isLatin1(value) && !value.includes('\0')) {
    const v = latin1Bytes(value);
    const data = new Uint8Array(k.length + 1 + v.length);
    data.set(k, 0);
    data.set(v, k.length + 1);
    return chunk('tEXt', data);
  }
  const v = new TextEncoder().encode(value);
  // keyword \0 compression-flag 0, method 0, language "" \0, translated keyword "" \0, text
  const data = new Uint8Array(k.length + 5 + v.length);
  data.set(k, 0);
  data.set(v, k.length + 5);
  return chunk('iTXt', data);
}

function paethPredictor(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a);
  const pb = Math.abs(p - b);
  const pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

export interface PngOptions {
  /** Text chunks written before the image data (e.g. `{ parameters: ... }`). */
  text?: Record<string, string>;
  /** false: stored deflate (no compression). Default true. */
  compress?: boolean;
}

/** Encode 8-bit RGBA pixels (width × height × 4 bytes, rows top to bottom) as PNG. */
export async function encodePng(
  rgba: Uint8Array | Uint8ClampedArray,
  width: number,
  height: number,
  options: PngOptions = {},
): Promise<Uint8Array> {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1 || width > 0x7fffffff || height > 0x7fffffff) {
    throw new Error(`PNG size must be positive integers, got ${width}x${height}`);
  }
  if (rgba.length !== width * height * 4) {
    throw new Error(`PNG pixels: expected ${width}x${height}x4 = ${width * height * 4} bytes, got ${rgba.length}`);
  }
  const stride = width * 4;
  const raw = new Uint8Array((stride + 1) * height);
  for (let y = 0; y < height; y++) {
    const o = y * (stride + 1);
    raw[o] = 4; // Paeth
    const row = y * stride;
    for (let x = 0; x < stride; x++) {
      const a = x >= 4 ? rgba[row + x - 4]! : 0;
      const b = y > 0 ? rgba[row - stride + x]! : 0;
      const c = x >= 4 && y > 0 ? rgba[row - stride + x - 4]! : 0;
      raw[o + 1 + x] = (rgba[row + x]! - paethPredictor(a, b, c)) & 0xff;
    }
  }
  const ihdr = new Uint8Array(13);
  ihdr.set(u32be(width), 0);
  ihdr.set(u32be(height), 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 6; // RGBA
  const parts: Uint8Array[] = [SIGNATURE, chunk('IHDR', ihdr)];
  for (const [k, v] of Object.entries(options.text ?? {})) parts.push(textChunk(k, v));
  parts.push(chunk('IDAT', await zlibCompress(raw, options.compress !== false)));
  parts.push(chunk('IEND', new Uint8Array(0)));
  const total = parts.reduce((n, p) => n + p.length, 0);
  const out = new Uint8Array(total);
  let p = 0;
  for (const part of parts) {
    out.set(part, p);
    p += part.length;
  }
  return out;
}

/** All text chunks (tEXt, zTXt, iTXt) of a PNG, keyword → text (first occurrence wins). */
export async function readPngText(bytes: Uint8Array, where = 'PNG'): Promise<Record<string, string>> {
  if (bytes.length < 8 || SIGNATURE.some((b, i) => bytes[i] !== b)) throw new Error(`${where}: not a PNG file (bad signature)`);
  const out: Record<string, string> = {};
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const latin1 = (b: Uint8Array) => {
    let s = '';
    for (let i = 0; i < b.length; i += 8192) s += String.fromCharCode(...b.subarray(i, i + 8192));
    return s;
  };
  const utf8 = new TextDecoder('utf-8', { fatal: false });
  let p = 8;
  while (p + 12 <= bytes.length) {
    const len = view.getUint32(p);
    const type = latin1(bytes.subarray(p + 4, p + 8));
    if (p + 12 + len > bytes.length) throw new Error(`${where}: chunk ${type} at byte ${p} runs past the end of the file`);
    const data = bytes.subarray(p + 8, p + 8 + len);
    const crc = view.getUint32(p + 8 + len);
    if (crc32(bytes.subarray(p + 4, p + 8 + len)) !== crc) throw new Error(`${where}: CRC mismatch in chunk ${type} at byte ${p}`);
    if (type === 'tEXt' || type === 'zTXt' || type === 'iTXt') {
      const z = data.indexOf(0);
      if (z < 1) throw new Error(`${where}: ${type} chunk without a keyword`);
      const key = latin1(data.subarray(0, z));
      let text: string;
      if (type === 'tEXt') {
        text = latin1(data.subarray(z + 1));
      } else if (type === 'zTXt') {
        text = latin1(await zlibInflate(data.subarray(z + 2), `${where} zTXt ${key}`));
      } else {
        const compressed = data[z + 1] === 1;
        const langEnd = data.indexOf(0, z + 3);
        const transEnd = langEnd < 0 ? -1 : data.indexOf(0, langEnd + 1);
        if (transEnd < 0) throw new Error(`${where}: malformed iTXt chunk "${key}"`);
        const body = data.subarray(transEnd + 1);
        text = utf8.decode(compressed ? await zlibInflate(body, `${where} iTXt ${key}`) : body);
      }
      if (!(key in out)) out[key] = text;
    }
    if (type === 'IEND') break;
    p += 12 + len;
  }
  return out;
}
