/**
 * Synthesized safetensors files: a real, valid header for a list of tensor names and shapes with no
 * data behind it (the graph builders need only header information). Used for parameter counts and
 * graph-build benchmarks of full-size configs from koala-configs/*.keys.json.
 */
import { DTYPE_BYTES, numel, type ByteSource, type DType } from '../safetensors';
import { WeightIndex } from '../weights';

/** `{ class, parameters, tensors: { name: shape } }` as in koala-configs/<name>.keys.json. */
export interface KeyList {
  class: string;
  parameters: number;
  decoder_parameters?: number;
  tensors: Record<string, number[]>;
}

/**
 * A ByteSource whose header lists `tensors` (in the given order, contiguous, all `dtype`) and whose
 * size covers the data area; reading inside the data area throws (there is none).
 */
export function synthSafetensors(tensors: Record<string, number[]>, opts: { dtype?: DType; name?: string; zeros?: boolean } = {}): ByteSource {
  const dtype = opts.dtype ?? 'F16';
  const name = opts.name ?? 'synth.safetensors';
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  let off = 0;
  for (const [k, shape] of Object.entries(tensors)) {
    const bytes = numel(shape) * DTYPE_BYTES[dtype];
    header[k] = { dtype, shape, data_offsets: [off, off + bytes] };
    off += bytes;
  }
  const hb = new TextEncoder().encode(JSON.stringify(header));
  const n = hb.length + ((8 - (hb.length % 8)) % 8);
  const head = new Uint8Array(8 + n).fill(0x20);
  new DataView(head.buffer).setBigUint64(0, BigInt(n), true);
  head.set(hb, 8);
  return {
    name,
    size: 8 + n + off,
    async read(offset, length) {
      if (offset + length <= head.length) return head.subarray(offset, offset + length);
      // zeros: the data area reads as zero bytes (sessions can be created for placement checks)
      if (opts.zeros && offset >= head.length && offset + length <= 8 + n + off) return new Uint8Array(length);
      throw new Error(`${name}: synthesized header-only file has no tensor data (read at ${offset}+${length})`);
    },
  };
}

/** WeightIndex over a synthesized file for a key list (optionally split into `shards` files, like sharded repos). */
export async function synthWeights(keys: KeyList, opts: { dtype?: DType; name?: string; shards?: number; zeros?: boolean } = {}): Promise<WeightIndex> {
  const entries = Object.entries(keys.tensors);
  const shards = opts.shards ?? 1;
  const per = Math.ceil(entries.length / shards);
  const sources: ByteSource[] = [];
  for (let i = 0; i < shards; i++) {
    const part = Object.fromEntries(entries.slice(i * per, (i + 1) * per));
    const base = opts.name ?? 'synth.safetensors';
    sources.push(synthSafetensors(part, { dtype: opts.dtype, zeros: opts.zeros, name: shards === 1 ? base : base.replace(/\.safetensors$/, `-${String(i + 1).padStart(5, '0')}-of-${String(shards).padStart(5, '0')}.safetensors`) }));
  }
  return WeightIndex.open(sources);
}
