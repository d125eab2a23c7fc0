/** In-memory weight sets derived from a real one (tests only): upcast copies, renamed keys. */
import { bytesSource, encodeSafetensors, readTensorF32, type TensorToEncode } from '../safetensors';
import { WeightIndex } from '../weights';

/**
 * Reads every tensor of `weights` as float32 (fp16/bf16 values upcast exactly) and returns a new
 * single-file F32 WeightIndex, optionally renaming/reshaping tensors on the way.
 */
export async function f32Copy(
  weights: WeightIndex,
  opts: { name?: string; rename?: (key: string, shape: number[]) => { key: string; shape: number[] } | null } = {},
): Promise<WeightIndex> {
  const out: Record<string, TensorToEncode> = {};
  for (const key of weights.names()) {
    const e = weights.get(key)!;
    if (!['F32', 'F16', 'BF16'].includes(e.info.dtype)) continue;
    const r = opts.rename ? opts.rename(key, e.info.shape) : { key, shape: e.info.shape };
    if (!r) continue;
    out[r.key] = { dtype: 'F32', shape: r.shape, data: await readTensorF32(e.file, key) };
  }
  return WeightIndex.open([bytesSource(encodeSafetensors(out), opts.name ?? 'f32-copy.safetensors')]);
}
