/**
 * Standalone components (the tiny decoder, a replacement VAE). Where the tiny decoder comes from: a folder or hub repo laid out as diffusers saves an AutoencoderTiny
 * (`config.json` + `diffusion_pytorch_model[.fp16].safetensors`, e.g. madebyollin/taesdxl, 10 MB fp32).
 * The caller supplies a file reader (hub cache, picked files, or the disk).
 */
import { isTaesdConfig, type TaesdConfig } from '../model/taesd';
import type { VaeConfig } from '../model/vae';
import { blobSource } from '../model/safetensors';
import { WeightIndex } from '../model/weights';
import { EngineError } from '../protocol';

export const DEFAULT_TAESD_REPO = 'madebyollin/taesdxl';
/** An fp16-safe SDXL VAE (`force_upcast: false`): decodes in fp16 where the stock one overflows. */
export const FP16_FIX_VAE_REPO = 'madebyollin/sdxl-vae-fp16-fix';

/** A standalone AutoencoderKL folder or repo (config.json + diffusion_pytorch_model[.variant].safetensors) as the pipeline's VAE. */
export async function openStandaloneVae(name: string, read: (path: string) => Promise<Blob | undefined>, variant?: string): Promise<{ config: VaeConfig & Record<string, unknown>; weights: WeightIndex }> {
  const config = await readConfig(name, read);
  if (config['_class_name'] !== 'AutoencoderKL') throw new EngineError('bad-input', `${name}/config.json describes ${String(config['_class_name'] ?? 'something else')}, not an AutoencoderKL (a VAE)`);
  return { config: config as VaeConfig & Record<string, unknown>, weights: await readWeights(name, read, variant) };
}

async function readConfig(name: string, read: (path: string) => Promise<Blob | undefined>): Promise<Record<string, unknown>> {
  const cfgBlob = await read('config.json');
  if (!cfgBlob) throw new EngineError('bad-input', `${name}: no config.json (expected a diffusers component folder)`);
  try {
    return JSON.parse(await cfgBlob.text()) as Record<string, unknown>;
  } catch (e) {
    throw new EngineError('integrity', `${name}/config.json is not valid JSON (${(e as Error).message})`);
  }
}

async function readWeights(name: string, read: (path: string) => Promise<Blob | undefined>, variant?: string): Promise<WeightIndex> {
  const files = variant ? [`diffusion_pytorch_model.${variant}.safetensors`, 'diffusion_pytorch_model.safetensors'] : ['diffusion_pytorch_model.safetensors'];
  for (const f of files) {
    const blob = await read(f);
    if (blob) return WeightIndex.open([blobSource(blob, `${name}/${f}`)]);
  }
  throw new EngineError('bad-input', `${name}: no ${files.join(' or ')}`);
}

export async function openTaesd(name: string, read: (path: string) => Promise<Blob | undefined>, variant?: string): Promise<{ config: TaesdConfig; weights: WeightIndex; name: string }> {
  const config = await readConfig(name, read);
  if (!isTaesdConfig(config)) throw new EngineError('bad-input', `${name}/config.json describes ${String(config['_class_name'] ?? 'something else')}, not an AutoencoderTiny (TAESD)`);
  return { config: config as TaesdConfig, weights: await readWeights(name, read, variant), name };
}
