/**
 * Page settings: defaults, validation, localStorage persistence and the shareable URL
 * (`?prompt=…&steps=…&model=…&hub=…&revision=…`). Pure functions; the React state lives in App.
 */
import type { PromptStyle, SchedulerName, TimestepSpacing } from '../workers/protocol';
import { DEFAULT_REPO, SCHEDULERS, SPACINGS, findModel, isValidRepoId, parseSizeKey, sizeKey } from './models';

export interface Settings {
  model: string;
  /** Hub revision (branch, tag or commit). */
  revision: string;
  /** Hub base URL; '' = https://huggingface.co. */
  hub: string;
  prompt: string;
  negativePrompt: string;
  steps: number;
  guidance: number;
  seed: number;
  /** Locked: every Generate reuses `seed`. Unlocked: a fresh random seed each time. */
  seedLocked: boolean;
  width: number;
  height: number;
  scheduler: SchedulerName;
  spacing: TimestepSpacing;
  numImages: number;
  /** How prompts are read (A1111 weights and long prompts, or diffusers' plain 77 tokens). */
  promptStyle: PromptStyle;
  /** Text to image, image to image (from the input image), or inpainting (the input image and a mask). */
  mode: GenerationMode;
  /** Image modes: the share of the schedule run from the input image (0 keeps it, 1 repaints it). */
  strength: number;
  /** Final decode with the tiny decoder (TAESD): faster, softer. */
  fastDecode: boolean;
  /** Live previews: the linear latent map (free) or the tiny decoder at full size. */
  previewer: PreviewerName;
  /** Hub repo of the tiny decoder ('' = the engine's default, madebyollin/taesdxl). */
  taesdRepo: string;
  /** Decode with the fp16-safe SDXL VAE (madebyollin/sdxl-vae-fp16-fix) instead of the model's: fp16, less GPU memory. */
  fp16Vae: boolean;
}

export type GenerationMode = 'txt2img' | 'img2img' | 'inpaint';
export type PreviewerName = 'linear' | 'taesd';

export const MODE_OPTIONS: readonly { value: GenerationMode; label: string }[] = [
  { value: 'txt2img', label: 'Text → image' },
  { value: 'img2img', label: 'Image → image' },
  { value: 'inpaint', label: 'Inpaint' },
];

export const PREVIEWER_OPTIONS: readonly { value: PreviewerName; label: string }[] = [
  { value: 'linear', label: 'Linear (free, 1/8 size)' },
  { value: 'taesd', label: 'Tiny decoder (full size)' },
];

export const DEFAULT_TAESD_REPO = 'madebyollin/taesdxl';

export const PROMPT_STYLE_OPTIONS: readonly { value: PromptStyle; label: string }[] = [
  { value: 'auto', label: 'Auto: A1111 weights when used or over 75 tokens' },
  { value: 'weighted', label: 'Always A1111 weights, any length' },
  { value: 'plain', label: 'Off: plain text, 75 tokens (diffusers)' },
];

export const LIMITS = {
  steps: { min: 1, max: 100 },
  guidance: { min: 1, max: 20, step: 0.5 },
  seed: { min: 0, max: 2 ** 32 - 1 },
  numImages: { min: 1, max: 4 },
  strength: { min: 0, max: 1, step: 0.05, default: 0.8 },
  prompt: 4000,
} as const;

export const STORAGE_KEY = 'koala-web:settings:v1';

export function randomSeed(): number {
  const a = new Uint32Array(1);
  crypto.getRandomValues(a);
  return a[0]!;
}

export function defaultSettings(repo = DEFAULT_REPO): Settings {
  const m = findModel(repo);
  return {
    model: m.repo,
    revision: 'main',
    hub: '',
    prompt: 'A portrait painting of a Golden Retriever like Leonardo da Vinci',
    negativePrompt: '',
    steps: m.defaults.steps,
    guidance: m.defaults.guidance,
    seed: 42,
    seedLocked: false,
    width: m.nativeSize[0],
    height: m.nativeSize[1],
    scheduler: m.defaults.scheduler,
    spacing: m.defaults.spacing,
    numImages: 1,
    promptStyle: 'auto',
    mode: 'txt2img',
    strength: LIMITS.strength.default,
    fastDecode: false,
    previewer: 'linear',
    taesdRepo: '',
    fp16Vae: false,
  };
}

/** Switch model: keep the prompt and seed, take the model's steps/guidance/scheduler/spacing/size. */
export function applyModelDefaults(s: Settings, repo: string): Settings {
  const m = findModel(repo);
  return {
    ...s,
    model: m.repo,
    steps: m.defaults.steps,
    guidance: m.defaults.guidance,
    scheduler: m.defaults.scheduler,
    spacing: m.defaults.spacing,
    width: m.nativeSize[0],
    height: m.nativeSize[1],
  };
}

function clampInt(v: unknown, min: number, max: number): number | undefined {
  const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN;
  if (!Number.isFinite(n)) return undefined;
  return Math.min(max, Math.max(min, Math.round(n)));
}

function clampNum(v: unknown, min: number, max: number): number | undefined {
  const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN;
  if (!Number.isFinite(n)) return undefined;
  return Math.min(max, Math.max(min, n));
}

/** Only http(s) origins (plus an optional path) are accepted as a hub; returns the normalised URL or undefined. */
export function normaliseHub(v: unknown): string | undefined {
  if (typeof v !== 'string' || v === '') return v === '' ? '' : undefined;
  try {
    const u = new URL(v);
    if (u.protocol !== 'https:' && u.protocol !== 'http:') return undefined;
    if (u.username || u.password || u.search || u.hash) return undefined;
    return u.href.replace(/\/+$/, '');
  } catch {
    return undefined;
  }
}

/** Merge untrusted values (localStorage JSON or URL params) over a base, field by field, validating each. */
export function mergeSettings(base: Settings, raw: Record<string, unknown>): Settings {
  const s = { ...base };
  if (typeof raw.model === 'string' && isValidRepoId(raw.model)) s.model = raw.model;
  if (typeof raw.revision === 'string' && /^[\w.\-/]{1,100}$/.test(raw.revision)) s.revision = raw.revision;
  const hub = normaliseHub(raw.hub);
  if (hub !== undefined) s.hub = hub;
  if (typeof raw.prompt === 'string') s.prompt = raw.prompt.slice(0, LIMITS.prompt);
  if (typeof raw.negativePrompt === 'string') s.negativePrompt = raw.negativePrompt.slice(0, LIMITS.prompt);
  s.steps = clampInt(raw.steps, LIMITS.steps.min, LIMITS.steps.max) ?? s.steps;
  s.guidance = clampNum(raw.guidance, LIMITS.guidance.min, LIMITS.guidance.max) ?? s.guidance;
  s.seed = clampInt(raw.seed, LIMITS.seed.min, LIMITS.seed.max) ?? s.seed;
  if (typeof raw.seedLocked === 'boolean') s.seedLocked = raw.seedLocked;
  s.numImages = clampInt(raw.numImages, LIMITS.numImages.min, LIMITS.numImages.max) ?? s.numImages;
  if (typeof raw.scheduler === 'string' && SCHEDULERS.some((x) => x.value === raw.scheduler)) {
    s.scheduler = raw.scheduler as SchedulerName;
  }
  if (typeof raw.spacing === 'string' && (SPACINGS as readonly string[]).includes(raw.spacing)) {
    s.spacing = raw.spacing as TimestepSpacing;
  }
  if (typeof raw.promptStyle === 'string' && PROMPT_STYLE_OPTIONS.some((x) => x.value === raw.promptStyle)) {
    s.promptStyle = raw.promptStyle as PromptStyle;
  }
  if (typeof raw.mode === 'string' && MODE_OPTIONS.some((x) => x.value === raw.mode)) s.mode = raw.mode as GenerationMode;
  const strength = clampNum(raw.strength, LIMITS.strength.min, LIMITS.strength.max);
  if (strength !== undefined) s.strength = Math.round(strength * 100) / 100;
  if (typeof raw.fastDecode === 'boolean') s.fastDecode = raw.fastDecode;
  if (typeof raw.fp16Vae === 'boolean') s.fp16Vae = raw.fp16Vae;
  if (typeof raw.previewer === 'string' && PREVIEWER_OPTIONS.some((x) => x.value === raw.previewer)) s.previewer = raw.previewer as PreviewerName;
  if (typeof raw.taesdRepo === 'string' && (raw.taesdRepo === '' || isValidRepoId(raw.taesdRepo))) s.taesdRepo = raw.taesdRepo;
  const w = clampInt(raw.width, 64, 2048);
  const h = clampInt(raw.height, 64, 2048);
  if (w !== undefined && h !== undefined && parseSizeKey(sizeKey(w, h))) {
    s.width = w;
    s.height = h;
  }
  return s;
}

export function loadStoredSettings(storage: Pick<Storage, 'getItem'> | undefined): Settings {
  const base = defaultSettings();
  if (!storage) return base;
  try {
    const text = storage.getItem(STORAGE_KEY);
    if (!text) return base;
    const raw = JSON.parse(text) as unknown;
    if (!raw || typeof raw !== 'object') return base;
    return mergeSettings(base, raw as Record<string, unknown>);
  } catch {
    return base;
  }
}

export function storeSettings(storage: Pick<Storage, 'setItem'> | undefined, s: Settings): void {
  try {
    storage?.setItem(STORAGE_KEY, JSON.stringify(s));
  } catch {
    /* storage full or disabled: settings just do not persist */
  }
}

/**
 * URL parameters override stored settings. A `model` given without steps/guidance/size gets that
 * model's defaults first, so `?model=etri-vilab/koala-lightning-700m` means 10 steps / 3.5.
 */
export function settingsFromUrl(base: Settings, search: string): { settings: Settings; fromUrl: boolean } {
  const q = new URLSearchParams(search);
  if ([...q.keys()].length === 0) return { settings: base, fromUrl: false };
  const raw: Record<string, unknown> = {};
  for (const key of ['model', 'revision', 'hub', 'prompt', 'scheduler', 'spacing', 'promptStyle'] as const) {
    const v = q.get(key);
    if (v !== null) raw[key] = v;
  }
  const neg = q.get('negative') ?? q.get('negativePrompt');
  if (neg !== null) raw.negativePrompt = neg;
  for (const key of ['steps', 'guidance', 'seed', 'width', 'height'] as const) {
    const v = q.get(key);
    if (v !== null) raw[key] = v;
  }
  const cfg = q.get('cfg');
  if (cfg !== null && raw.guidance === undefined) raw.guidance = cfg;
  const images = q.get('images');
  if (images !== null) raw.numImages = images;
  const size = q.get('size');
  if (size !== null) {
    const wh = parseSizeKey(size);
    if (wh) [raw.width, raw.height] = wh;
  }
  if (q.has('seed')) raw.seedLocked = true;
  let start = base;
  if (typeof raw.model === 'string' && isValidRepoId(raw.model) && raw.model !== base.model) {
    start = applyModelDefaults(base, raw.model);
  }
  return { settings: mergeSettings(start, raw), fromUrl: true };
}

/** The shareable URL for these settings (relative to `pageUrl`). */
export function settingsToUrl(s: Settings, pageUrl: string): string {
  const u = new URL(pageUrl);
  u.search = '';
  u.hash = '';
  const q = u.searchParams;
  q.set('prompt', s.prompt);
  if (s.negativePrompt) q.set('negative', s.negativePrompt);
  q.set('model', s.model);
  if (s.revision !== 'main') q.set('revision', s.revision);
  if (s.hub) q.set('hub', s.hub);
  q.set('steps', String(s.steps));
  q.set('guidance', String(s.guidance));
  q.set('scheduler', s.scheduler);
  q.set('spacing', s.spacing);
  q.set('size', sizeKey(s.width, s.height));
  q.set('seed', String(s.seed));
  if (s.numImages !== 1) q.set('images', String(s.numImages));
  if (s.promptStyle !== 'auto') q.set('promptStyle', s.promptStyle);
  return u.href;
}

/** The fp16-safe SDXL VAE the "fp16 VAE" setting uses. */
export const FP16_VAE_REPO = 'madebyollin/sdxl-vae-fp16-fix';
