/**
 * Where the tiny decoder comes from: a folder or hub repo laid out as diffusers saves an AutoencoderTiny
 * (`config.json` + `diffusion_pytorch_model[.fp16].safetensors`, e.g. madebyollin/taesdxl, 10 MB fp32).
 * The caller supplies a file reader (hub cache, picked files, or the disk).
 */
import { isTaesdConfig, type TaesdConfig } from '../model/taesd';
import { blobSource } from '../model/safetensors';
import { WeightIndex } from '../model/weights';
import { EngineError } from '../protocol';

export const DEFAULT_TAESD_REPO = 'madebyollin/taesdxl';

export async function openTaesd(name: string, read: (path: string) => Promise<Blob | undefined>, variant?: string): Promise<{ config: TaesdConfig; weights: WeightIndex; name: string }> {
  const cfgBlob = await read('config.json');
  if (!cfgBlob) throw new EngineError('bad-input', `${name}: no config.json (expected a diffusers AutoencoderTiny folder such as ${DEFAULT_TAESD_REPO})`);
  let config: Record<string, unknown>;
  try {
    config = JSON.parse(await cfgBlob.text()) as Record<string, unknown>;
  } catch (e) {
    throw new EngineError('integrity', `${name}/config.json is not valid JSON (${(e as Error).message})`);
  }
  if (!isTaesdConfig(config)) throw new EngineError('bad-input', `${name}/config.json describes ${String(config['_class_name'] ?? 'something else')}, not an AutoencoderTiny (TAESD)`);
  const files = variant ? [`diffusion_pytorch_model.${variant}.safetensors`, 'diffusion_pytorch_model.safetensors'] : ['diffusion_pytorch_model.safetensors'];
  for (const f of files) {
    const blob = await read(f);
    if (blob) return { config: config as TaesdConfig, weights: await WeightIndex.open([blobSource(blob, `${name}/${f}`)]), name };
  }
  throw new EngineError('bad-input', `${name}: no ${files.join(' or ')}`);
}
