/**
 * An SDXL-family diffusers repo opened for the pipeline: configs, tokenizers, scheduler config and
 * the safetensors headers of every component (tensor data is never read here).
 */
import type { ModelFiles } from '../hub/types';
import type { ClipTextConfig } from '../model/clip';
import { blobSource } from '../model/safetensors';
import type { UnetConfig } from '../model/unet';
import type { VaeConfig } from '../model/vae';
import { WeightIndex } from '../model/weights';
import { EngineError } from '../protocol';
import type { BlobRegistry } from './ort-backend';
import { parseSchedulerConfig, type SchedulerConfig } from './schedulers';
import { SdxlTokenizers, type ClipTokenizerFiles } from './tokenizer';

export interface Component<C> {
  config: C;
  weights: WeightIndex;
}

export interface SdxlModel {
  files: ModelFiles;
  /** Display name: the repo id or the folder name. */
  name: string;
  forceZerosForEmptyPrompt: boolean;
  tokenizers: SdxlTokenizers;
  schedulerConfig: SchedulerConfig;
  textEncoder: Component<ClipTextConfig>;
  textEncoder2: Component<ClipTextConfig>;
  unet: Component<UnetConfig>;
  vae: Component<VaeConfig & { scaling_factor?: number; force_upcast?: boolean; sample_size?: number }>;
  /** VAE spatial factor: 2^(len(block_out_channels) - 1), 8 for SDXL. */
  vaeScale: number;
  /** unet.config.sample_size × vaeScale: diffusers' default image size. */
  defaultSize: number;
}

async function need(files: ModelFiles, path: string): Promise<string> {
  if (!files.has(path)) throw new EngineError('bad-input', `${files.repo}: ${path} is missing; is this an SDXL-family diffusers repo?`);
  return files.text(path);
}

async function json<T>(files: ModelFiles, path: string): Promise<T> {
  const text = await need(files, path);
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new EngineError('integrity', `${files.repo}: ${path} is not valid JSON (${(e as Error).message})`);
  }
}

async function tokenizerFiles(files: ModelFiles, dir: string): Promise<ClipTokenizerFiles> {
  return {
    name: dir,
    vocab: await need(files, `${dir}/vocab.json`),
    merges: await need(files, `${dir}/merges.txt`),
    tokenizerConfig: files.has(`${dir}/tokenizer_config.json`) ? await files.text(`${dir}/tokenizer_config.json`) : {},
    specialTokensMap: files.has(`${dir}/special_tokens_map.json`) ? await files.text(`${dir}/special_tokens_map.json`) : undefined,
  };
}

async function component<C>(files: ModelFiles, name: string, blobs: BlobRegistry): Promise<Component<C>> {
  const config = await json<C>(files, `${name}/config.json`);
  const paths = files.weights[name];
  if (!paths?.length) throw new EngineError('bad-input', `${files.repo}: no .safetensors weights found for ${name}/`);
  const sources = await Promise.all(
    paths.map(async (p) => {
      const direct = files.byteSource?.(p);
      if (direct) return direct;
      const blob = await files.get(p);
      return blobs.register(blobSource(blob, p), blob);
    }),
  );
  try {
    return { config, weights: await WeightIndex.open(sources) };
  } catch (e) {
    throw new EngineError('integrity', `${files.repo}: ${(e as Error).message}`);
  }
}

export async function openSdxlModel(files: ModelFiles, blobs: BlobRegistry): Promise<SdxlModel> {
  const index = await json<Record<string, unknown>>(files, 'model_index.json');
  const cls = index['_class_name'];
  if (typeof cls === 'string' && !/StableDiffusionXL/.test(cls)) {
    throw new EngineError('bad-input', `${files.repo}: model_index.json names ${cls}; only StableDiffusionXL-family pipelines are supported`);
  }
  const [t1, t2, schedText] = await Promise.all([
    tokenizerFiles(files, 'tokenizer'),
    tokenizerFiles(files, 'tokenizer_2'),
    need(files, 'scheduler/scheduler_config.json'),
  ]);
  const [textEncoder, textEncoder2, unet, vae] = await Promise.all([
    component<ClipTextConfig>(files, 'text_encoder', blobs),
    component<ClipTextConfig>(files, 'text_encoder_2', blobs),
    component<UnetConfig>(files, 'unet', blobs),
    component<SdxlModel['vae']['config']>(files, 'vae', blobs),
  ]);
  const vaeScale = 2 ** (vae.config.block_out_channels.length - 1);
  const sampleSize = Number(unet.config['sample_size'] ?? 128);
  return {
    files,
    name: files.repo,
    forceZerosForEmptyPrompt: index['force_zeros_for_empty_prompt'] !== false,
    tokenizers: SdxlTokenizers.fromFiles(t1, t2),
    schedulerConfig: parseSchedulerConfig(schedText),
    textEncoder,
    textEncoder2,
    unet,
    vae,
    vaeScale,
    defaultSize: sampleSize * vaeScale,
  };
}
