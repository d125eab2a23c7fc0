/**
 * The graphs of a full-size model as the app builds them for one request, from the configs and key lists in
 * test/fixtures/koala-configs (synthesized safetensors headers: no weight data), and their GPU memory
 * estimate (workers/runtime/memory-estimate.ts). fp16: both text encoders and the U-Net from fp16 files with
 * fp16 compute, the VAE from its fp32 file (it decodes in fp32); fp32: everything fp32.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { buildClipTextGraph, type ClipTextConfig } from '../../workers/model/clip';
import { synthWeights, type KeyList } from '../../workers/model/testing/synth';
import { buildUnetGraph, type UnetConfig } from '../../workers/model/unet';
import { buildVaeDecoderGraph, type VaeConfig } from '../../workers/model/vae';
import type { WeightIndex } from '../../workers/model/weights';
import { VAE_BAND_BYTES } from '../../workers/pipeline/sdxl-pipeline';
import { estimateGpuMemory, type MemoryEstimate } from '../../workers/runtime/memory-estimate';
import type { FullsizeModel } from '../fullsize/checkpoint';

const CONFIGS = resolve(import.meta.dirname, '../../test/fixtures/koala-configs');
const load = <T>(f: string): T => JSON.parse(readFileSync(resolve(CONFIGS, f), 'utf8')) as T;

const weightCache = new Map<string, Promise<WeightIndex>>();
function weights(name: string, dtype: 'F16' | 'F32'): Promise<WeightIndex> {
  const key = `${name}:${dtype}`;
  let w = weightCache.get(key);
  if (!w) {
    w = synthWeights(load<KeyList>(`${name}.keys.json`), { dtype, name: `${name}.${dtype}.safetensors` });
    weightCache.set(key, w);
  }
  return w;
}

export interface LedgerRequest {
  model: FullsizeModel;
  width: number;
  height: number;
  precision: 'fp16' | 'fp32';
  /** Classifier-free guidance doubles the U-Net batch (default true). */
  cfg?: boolean;
  /** The adapter's maxStorageBufferBindingSize (attention, feed-forward and VAE bands are cut to it). */
  maxBindingBytes?: number;
  /** `fp16`: an fp16-safe VAE (madebyollin/sdxl-vae-fp16-fix, force_upcast false) decoding in fp16 from fp16 weights; default fp32. */
  vae?: 'fp32' | 'fp16';
}

/** Bytes of the largest checkpoint tensor a session binds whole (OpenCLIP bigG's 49408 × 1280 token embedding). */
export function largestWeightBytes(model: FullsizeModel, precision: 'fp16' | 'fp32'): number {
  let max = 0;
  for (const [name, bpe] of [
    ['clip-vit-l-text-encoder', 0],
    ['clip-vit-bigg-text-encoder', 0],
    [`${model}-unet`, 0],
    ['sdxl-vae', 4],
  ] as const) {
    const bytes = bpe || (precision === 'fp16' ? 2 : 4);
    for (const shape of Object.values(load<KeyList>(`${name}.keys.json`).tensors))
      max = Math.max(max, shape.reduce((a, b) => a * b, 1) * bytes);
  }
  return max;
}

/**
 * The smallest maxStorageBufferBindingSize a request can run with: the largest tensor no graph can cut (a
 * whole weight, or an activation the builders do not chunk, e.g. fp32 normalisation statistics), found by
 * building the graphs with a 32 MiB chunk limit.
 */
export async function minBindingBytes(r: Omit<LedgerRequest, 'maxBindingBytes'>): Promise<number> {
  const e = await ledger({ ...r, maxBindingBytes: 32 * 2 ** 20 });
  return Math.max(largestWeightBytes(r.model, r.precision), ...Object.values(e.components).map((c) => c.largestTensor));
}

export async function ledger(r: LedgerRequest): Promise<MemoryEstimate> {
  const compute = r.precision === 'fp16' ? 'float16' : 'float32';
  const dtype = r.precision === 'fp16' ? 'F16' : 'F32';
  const h = r.height / 8;
  const w = r.width / 8;
  const opts = { maxBindingBytes: r.maxBindingBytes };
  return estimateGpuMemory({
    text_encoder: buildClipTextGraph(
      load<ClipTextConfig>('clip-vit-l-text-encoder.json'),
      await weights('clip-vit-l-text-encoder', dtype),
      { batch: 1, compute, ...opts },
    ),
    text_encoder_2: buildClipTextGraph(
      load<ClipTextConfig>('clip-vit-bigg-text-encoder.json'),
      await weights('clip-vit-bigg-text-encoder', dtype),
      { batch: 1, compute, withProjection: true, ...opts },
    ),
    unet: buildUnetGraph(load<UnetConfig>(`${r.model}-unet.json`), await weights(`${r.model}-unet`, dtype), {
      batch: r.cfg === false ? 1 : 2,
      height: h,
      width: w,
      compute,
      ...opts,
    }),
    // the pipeline bands the VAE at VAE_BAND_BYTES at most, whatever the adapter allows (sdxl-pipeline.ts)
    vae_decoder: buildVaeDecoderGraph(load<VaeConfig>('sdxl-vae.json'), await weights('sdxl-vae', r.vae === 'fp16' ? 'F16' : 'F32'), {
      batch: 1,
      height: h,
      width: w,
      compute: r.vae === 'fp16' ? 'float16' : 'float32',
      maxBindingBytes: Math.min(r.maxBindingBytes ?? VAE_BAND_BYTES, VAE_BAND_BYTES),
    }),
  });
}
