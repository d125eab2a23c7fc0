/**
 * Seeded random weights for full-size checkpoints that are never downloaded (benchmarks, full-size tests).
 * Each tensor's values are a deterministic function of (seed, tensor name): a xorshift32 stream seeded from
 * both picks entries of a fixed table of 65,536 normal deviates, scaled per tensor (norm weights ≈ 1, biases
 * and embeddings small, matrices 0.5/sqrt(fan_in), which keeps activations O(1) through every layer). The
 * fp16 values are the fp32 ones rounded, like the hub's fp16 variants.
 *
 * `randomSafetensors` serves a whole safetensors file this way without holding it: the header is real and
 * any byte range of the data is generated when read (from its tensor's start), so the page's benchmark can
 * mount a 3.4 GB KOALA-700M with only the parts onnxruntime-web is uploading in memory. The CLI's
 * `fullsize:checkpoint` writes the same bytes to disk (scripts/fullsize/checkpoint.ts).
 */
import { floatToHalf, type ByteSource } from '../model/safetensors';

/** Per-tensor scale: norm weights ~1, biases/embeddings small, matrices 0.5/sqrt(fan_in). */
export function tensorInit(name: string, shape: number[]): { mean: number; std: number } {
  if (shape.length === 1 && /norm/.test(name) && name.endsWith('weight')) return { mean: 1, std: 0.02 };
  if (shape.length === 1) return { mean: 0, std: 0.02 };
  if (/embedding/.test(name)) return { mean: 0, std: 0.02 };
  const fanIn = shape.slice(1).reduce((a, b) => a * b, 1);
  return { mean: 0, std: 0.5 / Math.sqrt(fanIn) };
}

let normals: Float64Array | undefined;
/** 65,536 standard normal deviates from a fixed LCG + Box–Muller (the same table for every seed). */
function normalTable(): Float64Array {
  if (normals) return normals;
  const out = new Float64Array(1 << 16);
  let s = 12345;
  const u = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) + 1) / 2 ** 32;
  for (let i = 0; i < out.length; i += 2) {
    const r = Math.sqrt(-2 * Math.log(u()));
    const a = 2 * Math.PI * u();
    out[i] = r * Math.cos(a);
    out[i + 1] = r * Math.sin(a);
  }
  return (normals = out);
}

/** FNV-1a of the name mixed with the seed: the xorshift32 start state of one tensor (never 0). */
export function tensorState(seed: number, name: string): number {
  let h = 0x811c9dc5 ^ Math.imul(seed >>> 0, 0x9e3779b1);
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  return h >>> 0 || 1;
}

/** The value tables (fp32 values and their fp16 bit patterns) of one tensor. */
export function tensorTables(name: string, shape: number[]): { f32: Float32Array; f16: Uint16Array } {
  const { mean, std } = tensorInit(name, shape);
  const n = normalTable();
  const f32 = new Float32Array(n.length);
  const f16 = new Uint16Array(n.length);
  for (let i = 0; i < n.length; i++) {
    f32[i] = mean + std * n[i]!;
    f16[i] = floatToHalf(f32[i]!);
  }
  return { f32, f16 };
}

/**
 * Calls `sink(indices, k)` with consecutive chunks of the tensor's table indices (k ≤ chunk), from element 0:
 * element e of the tensor is table[indices[e - start]].
 */
export function tensorStream(seed: number, name: string, count: number, chunk: number, sink: (indices: Uint16Array, k: number) => void | false): void {
  let state = tensorState(seed, name);
  const idx = new Uint16Array(Math.min(chunk, count));
  let left = count;
  while (left > 0) {
    const k = Math.min(left, idx.length);
    for (let i = 0; i < k; i++) {
      state ^= state << 13;
      state ^= state >>> 17;
      state ^= state << 5;
      idx[i] = (state >>> 8) & 0xffff;
    }
    if (sink(idx, k) === false) return;
    left -= k;
  }
}

/** A safetensors header for these tensors (sorted by name), padded with spaces; and where the data starts. */
export function safetensorsHeader(tensors: Record<string, number[]>, dtype: 'F16' | 'F32'): { bytes: Uint8Array; dataStart: number; total: number; offsets: { name: string; begin: number; end: number }[] } {
  const names = Object.keys(tensors).sort();
  const bpe = dtype === 'F16' ? 2 : 4;
  const h: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  const offsets: { name: string; begin: number; end: number }[] = [];
  let off = 0;
  for (const n of names) {
    const bytes = tensors[n]!.reduce((a, b) => a * b, 1) * bpe;
    h[n] = { dtype, shape: tensors[n], data_offsets: [off, off + bytes] };
    offsets.push({ name: n, begin: off, end: off + bytes });
    off += bytes;
  }
  const json = new TextEncoder().encode(JSON.stringify(h));
  const pad = (8 - (json.length % 8)) % 8;
  const bytes = new Uint8Array(8 + json.length + pad).fill(0x20);
  new DataView(bytes.buffer).setBigUint64(0, BigInt(json.length + pad), true);
  bytes.set(json, 8);
  return { bytes, dataStart: bytes.length, total: bytes.length + off, offsets };
}

/** A whole random safetensors file as a ByteSource (nothing held: every read is generated). */
export function randomSafetensors(name: string, tensors: Record<string, number[]>, dtype: 'F16' | 'F32', seed: number): ByteSource {
  const head = safetensorsHeader(tensors, dtype);
  const bpe = dtype === 'F16' ? 2 : 4;
  return {
    name,
    size: head.total,
    async read(offset, length) {
      const out = new Uint8Array(length);
      const end = offset + length;
      if (offset < head.dataStart) out.set(head.bytes.subarray(offset, Math.min(end, head.dataStart)));
      for (const t of head.offsets) {
        const tb = head.dataStart + t.begin;
        const te = head.dataStart + t.end;
        if (te <= offset || tb >= end) continue;
        const { f32, f16 } = tensorTables(t.name, tensors[t.name]!);
        const count = (t.end - t.begin) / bpe;
        const firstEl = Math.max(0, Math.floor((offset - tb) / bpe));
        const lastEl = Math.min(count, Math.ceil((end - tb) / bpe));
        const values = bpe === 2 ? new Uint16Array(lastEl - firstEl) : new Float32Array(lastEl - firstEl);
        let e = 0;
        tensorStream(seed, t.name, lastEl, 1 << 20, (idx, k) => {
          for (let i = 0; i < k; i++, e++) if (e >= firstEl) values[e - firstEl] = bpe === 2 ? f16[idx[i]!]! : f32[idx[i]!]!;
        });
        const bytes = new Uint8Array(values.buffer);
        // copy the overlap of [tb + firstEl·bpe, …) with [offset, end)
        const from = tb + firstEl * bpe;
        const a = Math.max(from, offset);
        const b = Math.min(from + bytes.length, end);
        out.set(bytes.subarray(a - from, b - from), a - offset);
      }
      return out;
    },
  };
}
