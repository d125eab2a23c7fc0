/**
 * The model catalogue: what the Model select offers, with each model's defaults (from the model cards
 * and the KOALA paper; see docs/REFERENCE.md) and its download size, so the page can say what a first
 * run costs before anything is fetched.
 */
import type { SchedulerName, TimestepSpacing } from '../workers/protocol';

export type ModelFamily = 'koala' | 'lightning' | 'sdxl' | 'demo' | 'custom';

export interface ModelDefaults {
  steps: number;
  guidance: number;
  scheduler: SchedulerName;
  spacing: TimestepSpacing;
}

export interface ModelEntry {
  /** Hub repo id; also the value of the Model select and of the `model` URL parameter. */
  repo: string;
  label: string;
  family: ModelFamily;
  defaults: ModelDefaults;
  /** Resolution the model was trained at: [width, height]. */
  nativeSize: [number, number];
  /** Approximate bytes of the files the engine downloads (fp16 variant / fp32 files). */
  download: { fp16: number; fp32: number } | null;
  /** Whether the repo publishes the `fp16` weight variant. */
  fp16Variant: boolean;
  /** Its U-Net's architecture, for the GPU memory estimate (src/memory-estimates.json); null when unknown. */
  unet: 'koala-700m' | 'koala-1b' | 'sdxl-base' | null;
  /** Served by the page itself (no network): hub URL is the page's own `demo-hub/`. */
  bundled?: boolean;
  note: string;
}

const MB = 1e6;
// Component sizes from the hub file listings (REFERENCE.md): fp16 / fp32 bytes.
const TEXT_ENCODERS = { fp16: 246 * MB + 1389 * MB, fp32: 492 * MB + 2778 * MB };
const VAE_FP32 = 335 * MB; // the stock SDXL VAE decodes in fp32, so its fp32 file is used either way
const TOKENIZERS = 4 * MB;

function sized(unetFp16: number, unetFp32: number) {
  return {
    fp16: TEXT_ENCODERS.fp16 + unetFp16 + VAE_FP32 + TOKENIZERS,
    fp32: TEXT_ENCODERS.fp32 + unetFp32 + VAE_FP32 + TOKENIZERS,
  };
}

const KOALA: ModelDefaults = { steps: 25, guidance: 7.5, scheduler: 'euler', spacing: 'leading' };
const LIGHTNING: ModelDefaults = { steps: 10, guidance: 3.5, scheduler: 'euler', spacing: 'trailing' };
const SDXL: ModelDefaults = { steps: 50, guidance: 5, scheduler: 'euler', spacing: 'leading' };

export const DEMO_REPO = 'demo/tiny-sdxl';
export const DEFAULT_REPO = 'etri-vilab/koala-700m-llava-cap';

export const MODELS: readonly ModelEntry[] = [
  {
    repo: 'etri-vilab/koala-700m-llava-cap',
    label: 'KOALA-700M llava-cap',
    family: 'koala',
    defaults: KOALA,
    nativeSize: [1024, 1024],
    download: sized(1570 * MB, 3130 * MB),
    fp16Variant: true,
    unet: 'koala-700m',
    note: '782 M-parameter U-Net trained on LLaVA captions; the default.',
  },
  {
    repo: 'etri-vilab/koala-700m',
    label: 'KOALA-700M',
    family: 'koala',
    defaults: KOALA,
    nativeSize: [1024, 1024],
    download: sized(1570 * MB, 3130 * MB),
    fp16Variant: true,
    unet: 'koala-700m',
    note: '782 M-parameter U-Net, no mid block.',
  },
  {
    repo: 'etri-vilab/koala-1b-llava-cap',
    label: 'KOALA-1B llava-cap',
    family: 'koala',
    defaults: KOALA,
    nativeSize: [1024, 1024],
    download: sized(2320 * MB, 4640 * MB),
    fp16Variant: true,
    unet: 'koala-1b',
    note: '1.16 B-parameter U-Net trained on LLaVA captions.',
  },
  {
    repo: 'etri-vilab/koala-lightning-700m',
    label: 'KOALA-Lightning 700M',
    family: 'lightning',
    defaults: LIGHTNING,
    nativeSize: [1024, 1024],
    download: sized(1570 * MB, 3130 * MB),
    fp16Variant: true,
    unet: 'koala-700m',
    note: 'Distilled for 10 steps with trailing timesteps.',
  },
  {
    repo: 'etri-vilab/koala-lightning-1b',
    label: 'KOALA-Lightning 1B',
    family: 'lightning',
    defaults: LIGHTNING,
    nativeSize: [1024, 1024],
    download: sized(2320 * MB, 4640 * MB),
    fp16Variant: true,
    unet: 'koala-1b',
    note: 'Distilled for 10 steps with trailing timesteps.',
  },
  {
    repo: 'stabilityai/stable-diffusion-xl-base-1.0',
    label: 'SDXL-base 1.0',
    family: 'sdxl',
    defaults: SDXL,
    nativeSize: [1024, 1024],
    download: sized(5140 * MB, 10280 * MB),
    fp16Variant: true,
    unet: 'sdxl-base',
    note: 'The 2.6 B-parameter reference model; needs a large GPU.',
  },
  {
    repo: DEMO_REPO,
    label: 'Tiny demo (offline, random weights)',
    family: 'demo',
    defaults: { steps: 4, guidance: 5, scheduler: 'euler', spacing: 'leading' },
    nativeSize: [64, 64],
    download: { fp16: 5.5 * MB, fp32: 5.5 * MB },
    fp16Variant: true,
    unet: null,
    bundled: true,
    note: 'A tiny random-weight SDXL-shaped model bundled with the page: it works offline and draws noise.',
  },
];

/** Image sizes offered: SDXL's trained aspect ratios, smaller ones for small GPUs, tiny ones for the demo. */
export interface SizeOption {
  width: number;
  height: number;
  group: 'sdxl' | 'small' | 'tiny';
}

export const SIZES: readonly SizeOption[] = [
  { width: 1024, height: 1024, group: 'sdxl' },
  { width: 1152, height: 896, group: 'sdxl' },
  { width: 896, height: 1152, group: 'sdxl' },
  { width: 1216, height: 832, group: 'sdxl' },
  { width: 832, height: 1216, group: 'sdxl' },
  { width: 1344, height: 768, group: 'sdxl' },
  { width: 768, height: 1344, group: 'sdxl' },
  { width: 768, height: 768, group: 'small' },
  { width: 512, height: 512, group: 'small' },
  { width: 128, height: 128, group: 'tiny' },
  { width: 64, height: 64, group: 'tiny' },
];

export function sizeKey(w: number, h: number): string {
  return `${w}x${h}`;
}

export function parseSizeKey(key: string): [number, number] | null {
  const m = /^(\d{2,4})x(\d{2,4})$/.exec(key);
  if (!m) return null;
  const w = Number(m[1]);
  const h = Number(m[2]);
  return SIZES.some((s) => s.width === w && s.height === h) ? [w, h] : null;
}

export const SCHEDULERS: readonly { value: SchedulerName; label: string }[] = [
  { value: 'euler', label: 'Euler' },
  { value: 'euler-a', label: 'Euler a' },
  { value: 'dpmpp-2m', label: 'DPM++ 2M' },
  { value: 'dpmpp-2m-karras', label: 'DPM++ 2M Karras' },
  { value: 'ddim', label: 'DDIM' },
];

export const SPACINGS: readonly TimestepSpacing[] = ['leading', 'trailing', 'linspace'];

/** The KOALA model card's negative prompt (etri-vilab/koala-700m README, diffusers example). */
export const KOALA_NEGATIVE_PROMPT = 'worst quality, low quality, illustration, low resolution';

/** A catalogue entry, or one made up for a repo id given in the URL (SDXL-family layout assumed). */
export function findModel(repo: string): ModelEntry {
  const known = MODELS.find((m) => m.repo === repo);
  if (known) return known;
  return {
    repo,
    label: `Custom: ${repo}`,
    family: 'custom',
    defaults: KOALA,
    nativeSize: [1024, 1024],
    download: null,
    fp16Variant: true,
    unet: null,
    note: 'A repo given in the URL; it must use the StableDiffusionXLPipeline layout.',
  };
}

export function isValidRepoId(repo: string): boolean {
  return /^[A-Za-z0-9][\w.-]{0,95}\/[A-Za-z0-9][\w.-]{0,95}$/.test(repo);
}
