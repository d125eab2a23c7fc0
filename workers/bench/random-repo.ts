/**
 * A full-size SDXL-family repo that is never downloaded: the configs and key lists of
 * test/fixtures/koala-configs, the CLIP tokenizers and scheduler config of the tiny fixture, and weight
 * files generated on read (random-weights.ts, the same bytes as `npm run fullsize:checkpoint` writes). The
 * engine opens it like any repo (`openSdxlModel`); weight files come as ByteSources (ModelFiles.byteSource),
 * so nothing but the ranges onnxruntime-web is uploading is ever in memory. The host supplies the small files
 * (Node reads them from disk; the benchmark page bundles them).
 */
import type { ModelFiles } from '../hub/types';
import { randomSafetensors } from './random-weights';

export const BENCH_MODELS = ['koala-700m', 'koala-1b', 'sdxl-base'] as const;
export type BenchModel = (typeof BENCH_MODELS)[number];

/** The config / key-list name of each weight-carrying component. */
export function componentConfigs(model: BenchModel): { folder: string; config: string; stem: string }[] {
  return [
    { folder: 'text_encoder', config: 'clip-vit-l-text-encoder', stem: 'model' },
    { folder: 'text_encoder_2', config: 'clip-vit-bigg-text-encoder', stem: 'model' },
    { folder: 'unet', config: `${model}-unet`, stem: 'diffusion_pytorch_model' },
    { folder: 'vae', config: 'sdxl-vae', stem: 'diffusion_pytorch_model' },
  ];
}

/** The small files a random repo needs, by repo path: model_index.json, scheduler, tokenizers (tiny fixture). */
export const SMALL_FILES = [
  'model_index.json',
  'scheduler/scheduler_config.json',
  ...['tokenizer', 'tokenizer_2'].flatMap((t) => [`${t}/vocab.json`, `${t}/merges.txt`, `${t}/tokenizer_config.json`, `${t}/special_tokens_map.json`]),
];

export interface RandomRepoInputs {
  model: BenchModel;
  variant: 'fp16' | 'fp32';
  seed: number;
  /** Text of each SMALL_FILES path. */
  small: Record<string, string>;
  /** koala-configs JSON by name: `<config>.json` and `<config>.keys.json` for every componentConfigs entry. */
  configs: Record<string, string>;
}

export function randomRepo(i: RandomRepoInputs): ModelFiles {
  const text = new Map<string, string>(Object.entries(i.small));
  const sources = new Map<string, ReturnType<typeof randomSafetensors>>();
  const weights: Record<string, string[]> = {};
  const dtype = i.variant === 'fp16' ? 'F16' : 'F32';
  for (const c of componentConfigs(i.model)) {
    const cfg = i.configs[`${c.config}.json`];
    const keys = i.configs[`${c.config}.keys.json`];
    if (!cfg || !keys) throw new Error(`random repo: ${c.config}.json / .keys.json not given`);
    text.set(`${c.folder}/config.json`, cfg);
    const path = `${c.folder}/${c.stem}${i.variant === 'fp16' ? '.fp16' : ''}.safetensors`;
    sources.set(path, randomSafetensors(path, (JSON.parse(keys) as { tensors: Record<string, number[]> }).tensors, dtype, i.seed));
    weights[c.folder] = [path];
  }
  for (const p of SMALL_FILES) if (!text.has(p)) throw new Error(`random repo: ${p} not given`);
  const paths = [...text.keys(), ...sources.keys()].sort();
  const files: ModelFiles = {
    source: 'local',
    repo: `random/${i.model}-s${i.seed}`,
    variant: i.variant === 'fp16' ? 'fp16' : undefined,
    paths,
    weights,
    has: (p) => text.has(p) || sources.has(p),
    size: (p) => (text.has(p) ? new TextEncoder().encode(text.get(p)!).length : sources.get(p)?.size),
    async get(p) {
      if (text.has(p)) return new Blob([text.get(p)!]);
      throw new Error(`${p} is generated on read; use byteSource()`);
    },
    async text(p) {
      const t = text.get(p);
      if (t === undefined) throw new Error(`random repo: no ${p}`);
      return t;
    },
    async json<T>(p: string) {
      return JSON.parse(await files.text(p)) as T;
    },
    byteSource: (p) => sources.get(p),
  };
  return files;
}
