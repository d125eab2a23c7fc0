/**
 * What the worker's message loop (engine-loop.ts, engine.worker.ts) needs from the engine.
 * The engine (workers/engine.ts, `createEngine()`) implements this; the loop only decodes requests,
 * calls these methods, and posts the events they produce. No DOM, no `self` here.
 */
import type {
  CachedModel,
  Capabilities,
  GenerateParams,
  GenerationStats,
  ImageResult,
  LoraRef,
  LoraReport,
  ModelSource,
  Precision,
  ProgressEvent,
  PromptStyle,
  TokenizeEvent,
} from './protocol';

/** A progress report without the envelope (`type`, `id`), which the loop adds. */
export type ProgressUpdate = Omit<ProgressEvent, 'type' | 'id'>;

/** A preview frame: RGBA pixels, width × height × 4 (its buffer is transferred to the page). */
export interface PreviewFrame {
  step: number;
  width: number;
  height: number;
  rgba: Uint8ClampedArray;
}

/** Passed to every long operation. `signal` aborts it (the operation then throws `EngineError('cancelled')`
 *  or an AbortError, which the loop reports as `cancelled`). */
export interface TaskContext {
  signal: AbortSignal;
  onProgress(update: ProgressUpdate): void;
}

export interface GenerateContext extends TaskContext {
  onPreview(frame: PreviewFrame): void;
  /** Files of a folder the user picked (ModelSource.localFiles). */
  files?: File[];
}

export interface LoadContext extends TaskContext {
  files?: File[];
}

export interface GenerateOutput {
  images: ImageResult[];
  stats: GenerationStats;
}

export interface Engine {
  /** WebGPU capabilities; never throws for a missing adapter (reports it in `problem`).
   *  `ortWasmBase`: where the page serves onnxruntime-web's .wasm/.mjs files (set ort.env.wasm.wasmPaths). */
  probe(opts: { ortWasmBase?: string }): Promise<Capabilities>;
  /** Resolve, download (cached), build and warm up a model so a later generate starts at once. */
  load(model: ModelSource, precision: Precision | undefined, ctx: LoadContext): Promise<void>;
  /** Loads the model when needed (same progress as `load`), then generates `params.numImages` images. */
  generate(params: GenerateParams, ctx: GenerateContext): Promise<GenerateOutput>;
  /** Real prompt tokens (without start/end), the chunk size (75), and how the prompt would be read. */
  tokenize(model: ModelSource, prompt: string, promptStyle?: PromptStyle): Promise<Omit<TokenizeEvent, 'type' | 'id'>>;
  /** Loads the model when needed, fetches the LoRA (hub cache or the dropped file) and reports how its keys match. */
  inspectLora(model: ModelSource, precision: Precision | undefined, lora: LoraRef, ctx: LoadContext): Promise<LoraReport>;
  listCache(): Promise<CachedModel[]>;
  deleteCache(repo: string, commit?: string): Promise<void>;
}

export type CreateEngine = () => Engine;
