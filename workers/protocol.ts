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
  | { type: 'tokenize'; id: string; model: ModelSource; prompt: string; promptStyle?: PromptStyle };

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
