/** Node adapter: opens one component (config.json + weight files) of a local diffusers model folder. */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileSource } from './safetensors.node.js';
import { WeightIndex } from './weights';

export type ComponentName = 'text_encoder' | 'text_encoder_2' | 'unet' | 'vae' | 'vae_decoder' | 'vae_encoder';

/** Base weight-file name of a component folder (transformers vs diffusers naming). */
export function weightBaseName(component: ComponentName): string {
  return component.startsWith('text_encoder') ? 'model' : 'diffusion_pytorch_model';
}

export interface OpenedComponent {
  folder: string;
  config: Record<string, unknown>;
  weights: WeightIndex;
  /** Weight file names relative to the model folder. */
  files: string[];
}

/**
 * Opens `<dir>/<folder>/config.json` and its weights: `<base>[.<variant>].safetensors`, or the shards
 * listed in `<base>[.<variant>].safetensors.index.json`. Reads only the safetensors headers.
 */
export async function openComponent(dir: string, component: ComponentName, variant?: string): Promise<OpenedComponent> {
  const folder = component === 'vae_decoder' || component === 'vae_encoder' ? 'vae' : component;
  const cfgPath = join(dir, folder, 'config.json');
  if (!existsSync(cfgPath)) throw new Error(`${cfgPath}: not found (is ${dir} a diffusers model folder?)`);
  const config = JSON.parse(readFileSync(cfgPath, 'utf8')) as Record<string, unknown>;
  const base = `${weightBaseName(component)}${variant ? `.${variant}` : ''}.safetensors`;
  const single = join(dir, folder, base);
  const index = `${single}.index.json`;
  let files: string[];
  if (existsSync(single)) files = [base];
  else if (existsSync(index)) {
    const map = (JSON.parse(readFileSync(index, 'utf8')) as { weight_map: Record<string, string> }).weight_map;
    files = [...new Set(Object.values(map))].sort();
  } else throw new Error(`${join(dir, folder)}: no weight file ${base} (nor ${base}.index.json)`);
  const weights = await WeightIndex.open(files.map((f) => fileSource(join(dir, folder, f), `${folder}/${f}`)));
  return { folder, config, weights, files: files.map((f) => `${folder}/${f}`) };
}
