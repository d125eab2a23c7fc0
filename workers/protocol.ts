/**
 * The one contract between the page (src/) and the engine worker (workers/engine.worker.ts).
 * Every request carries an `id`; every event names the request it belongs to.
 * The page imports this file with `import type` only.
 */

/** Schedulers the engine implements (CLI `--scheduler` uses the same names). */
export type SchedulerName = 'euler' | 'euler-a' | 'dpmpp-2m' | 'dpmpp-2m-karras' | 'ddim';
export type TimestepSpacing = 'leading' | 'trailing' | 'linspace';
export type Precision = 'fp32' | 'fp16';

/** Where a model comes from: a hub repo (downloaded and cached) or a folder the user picked. */
export interface ModelSource {
  /** Hub repo id, e.g. `etri-vilab/koala-700m-llava-cap`. For a local folder: the folder's name. */
  repo: string;
  /** Hub revision (branch, tag or commit); default `main`. */
  revision?: string;
  /** Weight variant, e.g. `fp16`; absent for the fp32 files. */
  variant?: string;
  /** Hub base URL; default `https://huggingface.co`. */
  hubUrl?: string;
  /** Set when the files come from a directory the user picked (no download). */
  localFiles?: boolean;
}

/**
 * How prompts are read: `plain` = diffusers StableDiffusionXLPipeline (77 tokens, longer prompts
 * truncated, brackets are text); `weighted` = A1111 attention syntax and prompts of any length
 * (diffusers' community lpw_stable_diffusion_xl); `auto` = weighted when a prompt is longer than 75
 * tokens or uses the syntax `( ) [ ] \\ BREAK`, else plain.
 */
export type PromptStyle = 'auto' | 'weighted' | 'plain';

/**
 * Where a LoRA file comes from: a file of a hub repo (downloaded once, verified, cached like the
 * weights), or a file the user dropped on the page (kept by the page; the Blob travels with the request).
 * A hub URL (`https://huggingface.co/<repo>/resolve/<rev>/<file>`) is turned into the `hub` form by
 * `parseLoraLocation` (workers/pipeline/lora-sources.ts).
 */
export type LoraSource =
  | { kind: 'hub'; repo: string; file: string; revision?: string; hubUrl?: string }
  | { kind: 'local'; name: string; blob: Blob };

export interface LoraRef {
  /** Display name (A1111's `<lora:name:scale>`): the file name without `.safetensors`. */
  name: string;
  source: LoraSource;
  /** 0–2; 0 = off (kept in the list, not applied). */
  scale: number;
  /** Apply even when only part of the LoRA's modules exist in this model (default: refuse). */
  allowPartial?: boolean;
}

/** How a LoRA file fits the loaded model (before anything is applied). */
export interface LoraReport {
  name: string;
  /** Key layout of the file: diffusers/PEFT (`unet.…lora_A`) or kohya (`lora_unet_…`). */
  layout: 'peft' | 'kohya';
  /** Low-rank modules in the file, and how many of them name a weight of this model. */
  modules: number;
  matched: number;
  /** Matched modules per component. */
  perComponent: { unet: number; text_encoder: number; text_encoder_2: number };
  /** The first unmatched module names (at most 20), and how many there are. */
  unmatched: string[];
  unmatchedCount: number;
}

export interface GenerateParams {
  model: ModelSource;
  prompt: string;
  /** `undefined` = diffusers' `None` (zeros when force_zeros_for_empty_prompt); `''` is encoded. */
  negativePrompt?: string;
  steps: number;
  guidance: number;
  scheduler: SchedulerName;
  /** Default: the repo's scheduler_config.json. */
  timestepSpacing?: TimestepSpacing;
  width: number;
  height: number;
  /** SDXL micro-conditioning; default [height, width]. */
  originalSize?: [number, number];
  /** [top, left]; default [0, 0]. */
  cropTopLeft?: [number, number];
  /** default [height, width]. */
  targetSize?: [number, number];
  seed: number;
  numImages: number;
  /** Compute precision; default: fp16 when the adapter has shader-f16. */
  precision?: Precision;
  /** Send a preview event every N steps (0 = no previews). */
  previewEvery?: number;
  /** Default `auto`. */
  promptStyle?: PromptStyle;
  /** LoRAs fused into the U-Net and text encoders for this generation (at most 8). */
  loras?: LoraRef[];
  /**
   * Image to image and inpainting: the input image (any format the browser decodes: PNG, JPEG, WebP…;
   * scaled to cover width × height and centre-cropped when its size differs) and, for inpainting, a mask
   * (white = repaint; resized the same way). The CLI passes files instead (`--init-image`, `--mask`).
   */
  initImage?: Blob;
  maskImage?: Blob;
  /** The share of the schedule run from the input image (0–1; 0 returns the input). */
  strength?: number;
  /** sha256 of the input image's bytes (written into the PNG; the engine fills it in). */
  initImageSha256?: string;
  /** What the run did, for the PNG: text to image (absent), image to image, or inpainting. */
  mode?: 'img2img' | 'inpaint';
  /** Final decode: the model's VAE (default) or the tiny decoder (TAESD). */
  decoder?: 'full' | 'taesd';
  /** Live previews: a linear latent→RGB map at 1/8 size (default, free) or the tiny decoder at full size. */
  previewer?: 'linear' | 'taesd';
  /** Tiny decoder repo (hub; default madebyollin/taesdxl), fetched once and cached when decoder or previewer is taesd. */
  taesdRepo?: string;
  /**
   * A VAE repo to use instead of the model's (hub, cached), e.g. madebyollin/sdxl-vae-fp16-fix: with
   * `force_upcast: false` it decodes in fp16 under fp16 compute (less GPU memory; the stock SDXL VAE overflows fp16).
   */
  vaeRepo?: string;
}

export type EngineRequest =
  | {
      type: 'probe';
      id: string;
      /** Optional: URL prefix (ending in '/') where the page serves onnxruntime-web's .wasm/.mjs files;
       *  the engine sets `ort.env.wasm.wasmPaths` to it before creating any session. */
      ortWasmBase?: string;
    }
  | { type: 'load'; id: string; model: ModelSource; precision?: Precision; files?: File[] }
  | { type: 'generate'; id: string; params: GenerateParams; files?: File[] }
  | { type: 'cancel'; id: string; target: string }
  | { type: 'list-cache'; id: string }
  | { type: 'delete-cache'; id: string; repo: string; commit?: string }
  | { type: 'tokenize'; id: string; model: ModelSource; prompt: string; promptStyle?: PromptStyle }
  /** Loads the model if needed, fetches the LoRA and reports how its keys match (nothing is applied). */
  | { type: 'inspect-lora'; id: string; model: ModelSource; precision?: Precision; lora: LoraRef; files?: File[] };

export type ErrorCode =
  | 'webgpu-unavailable'
  | 'shader-f16-missing'
  | 'limits-too-low'
  | 'quota-exceeded'
  | 'network'
  | 'integrity'
  | 'device-lost'
  | 'out-of-memory'
  | 'bad-input'
  | 'cancelled'
  | 'internal';

export type Phase = 'resolve' | 'download' | 'build' | 'compile' | 'encode' | 'denoise' | 'decode' | 'png';

export interface FileProgress {
  path: string;
  bytesDone: number;
  bytesTotal: number;
}

export interface ProgressEvent {
  type: 'progress';
  id: string;
  phase: Phase;
  /** Human-readable line, e.g. "Downloading unet/diffusion_pytorch_model.fp16.safetensors". */
  message: string;
  /** Generation: 1-based step and total; download: bytes done / total; others: units of work. */
  done: number;
  total: number;
  /** Seconds since the phase started. */
  elapsed: number;
  /** Steps per second (denoise) or bytes per second (download). */
  rate?: number;
  /** Seconds left, when it can be estimated. */
  eta?: number;
  files?: FileProgress[];
  /** Image index within the batch (denoise). */
  image?: number;
}

export interface PreviewEvent {
  type: 'preview';
  id: string;
  step: number;
  width: number;
  height: number;
  /** RGBA pixels, width × height × 4. */
  rgba: Uint8ClampedArray;
}

export interface ImageResult {
  png: Blob;
  width: number;
  height: number;
  /** The seed this image used (image k of a batch uses its own derived seed). */
  seed: number;
  /** A1111 `parameters` text embedded in the PNG. */
  parameters: string;
}

export interface GenerationStats {
  /** Seconds per phase. */
  timings: Record<string, number>;
  /** GPU→CPU reads during this generation. */
  readbacks: number;
  /** Tokens truncation dropped from prompt / negative prompt (plain style, over 75). */
  truncatedTokens: { prompt: number; negativePrompt: number };
  /** How the prompt was read: style, 75-token chunks, the U-Net's text length. */
  prompt?: { style: 'plain' | 'weighted'; chunks: number; tokens: number };
  backend: 'webgpu' | 'wasm';
  precision: Precision;
  /** The LoRAs applied (scale ≠ 0), with how their keys matched. */
  loras?: LoraReport[];
}

export interface ResultEvent {
  type: 'result';
  id: string;
  images: ImageResult[];
  stats: GenerationStats;
  params: GenerateParams;
}

export interface Capabilities {
  webgpu: boolean;
  adapterName?: string;
  shaderF16: boolean;
  maxBufferSize?: number;
  maxStorageBufferBindingSize?: number;
  /** Why WebGPU is not usable, when it is not. */
  problem?: string;
}

export interface ProbeEvent {
  type: 'probe';
  id: string;
  capabilities: Capabilities;
}

export interface CachedModel {
  repo: string;
  commit: string;
  revision: string;
  variant?: string;
  hubUrl: string;
  bytes: number;
  complete: boolean;
  files: number;
}

export interface CacheListEvent {
  type: 'cache-list';
  id: string;
  models: CachedModel[];
}

export interface TokenizeEvent {
  type: 'tokens';
  id: string;
  /** Real tokens of the prompt (without start/end markers). */
  count: number;
  /** Tokens one chunk holds (75 = 77 minus start and end): the most a plain prompt keeps. */
  limit: number;
  /** Tokens per tokenizer (they differ when the prompt has `!`: tokenizer_2 splits it). */
  perEncoder?: [number, number];
  /** How this prompt would be read, its 75-token chunks, and the token index where each new chunk starts. */
  style?: 'plain' | 'weighted';
  chunks?: number;
  boundaries?: number[];
  /** Most chunks the engine accepts. */
  maxChunks?: number;
}

export interface LoraReportEvent {
  type: 'lora-report';
  id: string;
  report: LoraReport;
}

export interface DoneEvent {
  type: 'done';
  id: string;
}

export interface ErrorEvent {
  type: 'error';
  id: string;
  code: ErrorCode;
  message: string;
}

export type EngineEvent =
  | ProgressEvent
  | PreviewEvent
  | ResultEvent
  | ProbeEvent
  | CacheListEvent
  | TokenizeEvent
  | LoraReportEvent
  | DoneEvent
  | ErrorEvent;

/** Error with a protocol code; thrown inside the engine, posted as an ErrorEvent. */
export class EngineError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string) {
    super(message);
    this.name = 'EngineError';
    this.code = code;
  }
}

// LoRA references: limits and parsing shared by the page, the CLI and the engine.

/** Scales the engine accepts (the page's slider covers the same range). */
export const LORA_SCALE = { min: 0, max: 2 } as const;
/** LoRAs one generation may use. */
export const MAX_LORAS = 8;

/** `file.safetensors` → `file` (A1111's `<lora:file:scale>` name). */
export function loraNameOf(path: string): string {
  const base = path.split(/[\\/]/).pop() ?? path;
  return base.replace(/\.safetensors$/i, '') || base;
}

/**
 * A hub reference (repo + file, or a hub URL) as a LoraSource, or undefined when the text is neither
 * (then it is a local file for the CLI). Throws for a hub URL that names no file.
 */
export function parseHubLora(text: string): Extract<LoraSource, { kind: 'hub' }> | undefined {
  const t = text.trim();
  if (/^https?:\/\//i.test(t)) {
    let u: URL;
    try {
      u = new URL(t);
    } catch {
      throw new EngineError('bad-input', `"${t}" is not a valid URL`);
    }
    const parts = u.pathname.split('/').filter(Boolean).map(decodeURIComponent);
    // /owner/repo/(resolve|blob)/rev/path…   (also /models/owner/repo/…)
    if (parts[0] === 'models') parts.shift();
    const verb = parts[2];
    if (parts.length < 5 || (verb !== 'resolve' && verb !== 'blob')) {
      throw new EngineError('bad-input', `${t} is not a hub file URL; expected https://<hub>/<owner>/<repo>/resolve/<revision>/<file>.safetensors`);
    }
    return { kind: 'hub', hubUrl: u.origin, repo: `${parts[0]}/${parts[1]}`, revision: parts[3], file: parts.slice(4).join('/') };
  }
  const m = /^([\w.-]+\/[\w.-]+)(?:@([^/]+))?\/(.+\.safetensors)$/i.exec(t);
  if (!m || !/^[\w.-]+\/[\w.-]+$/.test(m[1]!)) return undefined;
  return { kind: 'hub', repo: m[1]!, revision: m[2], file: m[3]! };
}
