/**
 * StableDiffusionXLPipeline, the same in the worker (WebGPU) and in Node (wasm): prompt → both CLIP
 * encoders → denoising loop → VAE decode → 8-bit RGBA. Sessions are built from the repo's configs
 * and safetensors headers on first use and cached per shape (static shapes per batch and size).
 *
 * On WebGPU every tensor of the loop stays on the GPU: the text-encoder outputs feed the
 * conditioning graph, the U-Net output feeds the fused step graph (step-graph.ts), whose `unet_in`
 * output is the next U-Net input. GPU→CPU reads: previews (when asked) and the decoded image.
 */
import type { InferenceSession, Tensor } from 'onnxruntime-web';
import { buildClipTextGraph } from '../model/clip';
import type { BuiltGraph, Compute } from '../model/graph';
import { buildUnetGraph } from '../model/unet';
import { buildVaeDecoderGraph, buildVaeEncoderGraph } from '../model/vae';
import { buildTaesdDecoderGraph, type TaesdConfig } from '../model/taesd';
import type { WeightIndex } from '../model/weights';
import type { FusedOps, ProbeShapes } from '../model/fused-ops';
import { fuseLoras, LORA_COMPONENTS, type LoraGemm, type LoraReport, type LoraTargets, type LoraUse } from '../model/lora';
import type { LoraComponent } from '../model/lora-keys';
import { EngineError, type Precision, type SchedulerName, type TimestepSpacing } from '../protocol';
import type { Backend, DeviceTensor } from './backend';
import { latentPreview } from './preview';
import { batchLatents, batchStepNoise, deriveSeed } from './rng';
import { unitToRgba, vaeOutputToUnit } from './image';
import { createScheduler, type Scheduler } from './schedulers';
import type { SdxlModel } from './sdxl-model';
import { planPlain, planWeighted, needsWeighting, PromptTooLongError, type PromptPlan, type PromptSide, type PromptStyle } from './long-prompt';
import { hasPromptSyntax, PromptSyntaxError } from './prompt-attention';
import { buildConditioningGraph, buildLoopInputGraph, buildScaleGraph, buildStepGraph, chunkInputNames, LOOP_INPUTS, packCoef, type LoopInputShapes } from './step-graph';
import { addTimeIdsBatch } from './time-ids';

export interface PipelineRequest {
  /** One entry per prompt; each makes `numImagesPerPrompt` images. */
  prompts: string[];
  /** undefined = diffusers' None (zeros when force_zeros_for_empty_prompt); else one per prompt. */
  negativePrompts?: string[];
  numImagesPerPrompt: number;
  steps: number;
  guidance: number;
  scheduler: SchedulerName;
  timestepSpacing?: TimestepSpacing;
  width: number;
  height: number;
  originalSize?: [number, number];
  cropTopLeft?: [number, number];
  targetSize?: [number, number];
  /** Image k of the batch uses deriveSeed(seed, k). */
  seed: number;
  /**
   * How prompts are read (long-prompt.ts): `plain` = StableDiffusionXLPipeline (77 tokens, truncated),
   * `weighted` = lpw_stable_diffusion_xl (A1111 weights, any length), `auto` (default) = weighted when
   * a prompt is longer than 75 tokens or uses the weighting syntax, else plain.
   */
  promptStyle?: PromptStyle;
  /** Unit-variance initial noise [B,4,h,w], replacing the seeded noise (image-to-image: the noise added to the image). */
  latents?: Float32Array;
  /**
   * Image-to-image (diffusers StableDiffusionXLImg2ImgPipeline): the start image [1, 3, height, width] in
   * [-1, 1], encoded by the VAE (the distribution's mean), noised to the step where `strength` of the
   * schedule is left, then denoised from there. strength 1 runs every step (still from the noised image).
   */
  init?: {
    image: Float32Array;
    strength: number;
    /**
     * Inpainting (diffusers StableDiffusionXLInpaintPipeline): [1, 1, height, width], 1 = repaint, 0 = keep
     * (binarized). A 4-channel U-Net gets the kept region blended back after every step; a 9-channel
     * inpainting U-Net gets the mask and the masked image's latents as extra input channels. strength 1
     * starts from pure noise.
     */
    mask?: Float32Array;
  };
  /** Per-step noise for ancestral samplers ([B,4,h,w] each), replacing the seeded draws. */
  stepNoise?: Float32Array[];
  /** Read x0 back and report a preview every N steps (0: never). */
  previewEvery?: number;
  /**
   * How previews are made: `linear` (default: a per-pixel latent→RGB map at latent size, free) or `taesd`
   * (the tiny decoder on the GPU, full size; needs `setTaesd`).
   */
  previewer?: 'linear' | 'taesd';
  /** Final decode: `full` (default: the model's VAE, fp32) or `taesd` (the tiny decoder: fast, softer). */
  decoder?: 'full' | 'taesd';
  /**
   * Stop after the denoising loop (no decode, no images): the warm-up, which only has to compile the
   * encoders', U-Net's and step graph's shaders — a full-size VAE decode would cost as much as several steps.
   */
  skipDecode?: boolean;
  /** Keep the intermediate tensors (CLI --dump). */
  dump?: boolean;
  signal?: AbortSignal;
  onStep?(s: { step: number; total: number; elapsed: number; rate: number }): void;
  onPreview?(p: { step: number; width: number; height: number; rgba: Uint8ClampedArray; image: number }): void;
  onPhase?(phase: 'build' | 'encode' | 'denoise' | 'decode', label: string): void;
}

export interface PipelineImage {
  rgba: Uint8ClampedArray;
  width: number;
  height: number;
  seed: number;
}

export interface DumpTensor {
  data: Float32Array;
  dims: number[];
}

export interface PipelineResult {
  images: PipelineImage[];
  /** Something the user should know about this result (e.g. strength 0 returned the input unchanged). */
  note?: string;
  /** Denoising steps that ran (image-to-image runs the last strength × steps). */
  stepsRun?: number;
  /** How the prompts were read and the U-Net's text length (the last prompt's when prompts were run apart). */
  prompt: { style: 'plain' | 'weighted'; chunks: number; tokens: number };
  truncated: { prompt: number; negativePrompt: number };
  /** GPU→CPU reads during this call. */
  readbacks: number;
  /** Seconds per phase. */
  timings: Record<string, number>;
  dump?: Record<string, DumpTensor>;
}

export interface PipelineOptions {
  precision: Precision;
  /** Largest attention tensor a kernel may bind (adapter's maxStorageBufferBindingSize). */
  maxBindingBytes?: number;
  /** Matrix product for fusing LoRAs (pipeline/cpu-gemm.ts: onnxruntime-web's wasm backend); default plain JS. */
  loraGemm?: LoraGemm;
  /**
   * Replay the U-Net's recorded command buffers (onnxruntime graph capture) in the denoising loop, on
   * backends with device tensors (WebGPU); ignored elsewhere. See `capturedUnet`.
   */
  graphCapture?: boolean;
  /** onnxruntime fused kernels the U-Net may use (runtime/fused-ops-probe.ts decides per adapter); default none. */
  fused?: FusedOps;
}

/**
 * The shapes the fused-op probe tests for a U-Net: its GEGLU inner sizes and transformer widths
 * (`*.ff.net.0.proj.weight` is [2·inner, C]).
 */
export function fusedProbeShapes(weights: WeightIndex): ProbeShapes {
  const inners = new Set<number>();
  const channels = new Set<number>();
  for (const n of weights.names()) {
    if (!n.endsWith('.ff.net.0.proj.weight')) continue;
    const [out, c] = weights.get(n)!.info.shape;
    inners.add(out! / 2);
    channels.add(c!);
  }
  return { inners: [...inners].sort((a, b) => a - b), channels: [...channels].sort((a, b) => a - b) };
}

const now = () => globalThis.performance.now() / 1000;

/** A captured U-Net's bound buffers: its five inputs and its output `out`. */
type CapturedIo = Record<(typeof LOOP_INPUTS)[number] | 'out', DeviceTensor>;

/** Largest tensor of the VAE decoder's row bands (bytes), on every adapter: GPU memory, not binding limits. */
export const VAE_BAND_BYTES = 128 * 2 ** 20;

/** `layers_per_block` when the same for every block (SGM key names need it), else undefined. */
export function uniformLayersPerBlock(config: Record<string, unknown>): number | undefined {
  const v = config['layers_per_block'];
  if (typeof v === 'number') return v;
  if (Array.isArray(v) && v.length && v.every((x) => x === v[0]) && typeof v[0] === 'number') return v[0];
  return undefined;
}

/** torch `interpolate(mode="nearest")` of a [H, W] plane to [h, w] (source index floor(dst × H / h)). */
export function nearestDownsample(plane: Float32Array, H: number, W: number, h: number, w: number): Float32Array {
  const out = new Float32Array(h * w);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) out[y * w + x] = plane[Math.floor((y * H) / h) * W + Math.floor((x * W) / w)]!;
  return out;
}

/**
 * diffusers img2img `get_timesteps`: init_timestep = min(int(steps × strength), steps); the loop starts at
 * index steps − init_timestep (steps: none runs for strength 0).
 */
export function img2imgBeginIndex(steps: number, strength: number): number {
  if (!(strength >= 0 && strength <= 1)) throw new EngineError('bad-input', `strength must be from 0 to 1, got ${strength}`);
  return Math.max(steps - Math.min(Math.floor(steps * strength), steps), 0);
}

function checkAbort(signal?: AbortSignal) {
  if (signal?.aborted) throw new EngineError('cancelled', 'Generation cancelled');
}

export class SdxlPipeline {
  private readonly sessions = new Map<string, Promise<InferenceSession>>();
  /** Session creation is serialised: the WebGPU EP refuses to create two sessions at once. */
  private creating: Promise<unknown> = Promise.resolve();
  /** Sessions being released; new sessions are created after them. */
  private releasing: Promise<void> = Promise.resolve();
  /** The fixed input/output buffers of each captured U-Net session (destroyed with it). */
  private readonly capturedIo = new Map<InferenceSession, CapturedIo>();

  /** TAESD / TAESDXL (AutoencoderTiny) for previews and the fast decode, when set. */
  private taesdModel?: { config: TaesdConfig; weights: WeightIndex; name: string };

  /** The model's own weights, before any LoRA was fused. */
  private baseWeights?: LoraTargets;
  /** Per component: the LoRAs (name, size, scale) fused into its current weights. */
  private loraKeys: Record<LoraComponent, string> = { unet: '', text_encoder: '', text_encoder_2: '' };

  constructor(
    public model: SdxlModel,
    readonly backend: Backend,
    readonly options: PipelineOptions,
  ) {
    this.captureOn = !!options.graphCapture;
    this.fusedOps = options.fused;
  }

  private get compute(): Compute {
    return this.options.precision === 'fp16' ? 'float16' : 'float32';
  }

  /**
   * A cached session. `family` sessions of other shapes are released first (the U-Net and VAE of
   * one size at a time: GPU memory is the limit).
   */
  private session(family: string, key: string, build: () => BuiltGraph, graphCapture = false): Promise<InferenceSession> {
    const id = `${family}:${key}`;
    let s = this.sessions.get(id);
    if (!s) {
      for (const other of [...this.sessions.keys()]) if (other.startsWith(`${family}:`)) this.dropSession(other);
      // after the sessions being released are gone: never two U-Nets' (or VAEs') weights on the GPU at once
      s = this.creating
        .catch(() => undefined)
        .then(() => this.releasing)
        .then(() => this.backend.createSession(build(), { label: id, keepOutputsOnDevice: true, graphCapture }));
      this.creating = s;
      s.catch(() => this.sessions.delete(id));
      this.sessions.set(id, s);
    }
    return s;
  }

  /** Forgets a cached session and releases it (and the fixed buffers of a captured one). */
  private dropSession(id: string): void {
    const p = this.sessions.get(id);
    if (!p) return;
    this.sessions.delete(id);
    const done = this.releaseSession(p);
    this.releasing = Promise.all([this.releasing, done]).then(() => undefined);
  }

  private async releaseSession(p: Promise<InferenceSession>): Promise<void> {
    try {
      const x = await p;
      const io = this.capturedIo.get(x);
      this.capturedIo.delete(x);
      await x.release();
      if (io) for (const t of Object.values(io)) t.destroy();
    } catch {
      // a session that failed to create has nothing to release
    }
  }

  /** Drops every cached session whose id starts with one of these prefixes. */
  private dropSessions(...prefixes: string[]): void {
    for (const id of [...this.sessions.keys()]) if (prefixes.some((p) => id.startsWith(p))) this.dropSession(id);
  }

  private textEncoder(which: 1 | 2, batch: number): Promise<InferenceSession> {
    const c = which === 1 ? this.model.textEncoder : this.model.textEncoder2;
    const configName = which === 1 ? 'text_encoder/config.json' : 'text_encoder_2/config.json';
    return this.session(`text_encoder_${which}`, `${batch}`, () =>
      buildClipTextGraph(c.config, c.weights, { batch, compute: this.compute, withProjection: which === 2, configName, maxBindingBytes: this.options.maxBindingBytes }),
    );
  }

  private unet(batch: number, h: number, w: number, textTokens = 77): Promise<InferenceSession> {
    return this.session('unet', `${batch}x${h}x${w}x${textTokens}`, () =>
      buildUnetGraph(this.model.unet.config, this.model.unet.weights, { batch, height: h, width: w, textTokens, compute: this.compute, maxBindingBytes: this.options.maxBindingBytes, fused: this.fusedOps }),
    );
  }

  /** Whether the denoising loop replays a captured U-Net (asked for, and the backend has device tensors). */
  get graphCapture(): boolean {
    return this.captureOn && !!this.backend.deviceTensor;
  }

  private captureOn: boolean;
  private fusedOps: FusedOps | undefined;

  /** Turns graph capture on or off for later generations (the other U-Net session is released when next used). */
  setGraphCapture(on: boolean): void {
    this.captureOn = on;
  }

  /** Changes the fused kernels the U-Net may use (its sessions are rebuilt on next use). */
  setFused(ops: FusedOps | undefined): void {
    this.fusedOps = ops;
    this.dropSessions('unet:');
  }

  /**
   * The U-Net under onnxruntime graph capture: its first runs record every dispatch, later runs replay
   * them without onnxruntime's per-kernel work on the CPU. A captured session reads and writes the same
   * buffers on every run, so it comes with fixed device tensors for its inputs and output: the loop-input
   * graph fills them once per generation and the step graph writes the next `sample` and `timestep`
   * into them (step-graph.ts).
   */
  private capturedUnet(batch: number, h: number, w: number, textTokens: number): Promise<InferenceSession> {
    const key = `${batch}x${h}x${w}x${textTokens}:captured`;
    return this.session(
      'unet',
      key,
      () =>
        buildUnetGraph(this.model.unet.config, this.model.unet.weights, { batch, height: h, width: w, textTokens, compute: this.compute, maxBindingBytes: this.options.maxBindingBytes, fused: this.fusedOps }),
      true,
    );
  }

  /** The captured session's fixed buffers (made on first use; `like`: a device tensor onnxruntime returned). */
  private async capturedBuffers(session: InferenceSession, batch: number, h: number, w: number, textTokens: number, like: Tensor): Promise<CapturedIo> {
    let io = this.capturedIo.get(session);
    if (!io) {
      const shapes = this.loopShapes(batch, h, w, textTokens);
      const cout = Number(this.model.unet.config['out_channels'] ?? 4);
      const made: DeviceTensor[] = [];
      const make = async (dims: number[]) => {
        const t = await this.backend.deviceTensor!(dims, like);
        made.push(t);
        return t;
      };
      try {
        const entries = [];
        for (const n of LOOP_INPUTS) entries.push([n, await make(shapes[n])] as const);
        entries.push(['out', await make([batch, cout, h, w])] as const);
        io = Object.fromEntries(entries) as CapturedIo;
      } catch (e) {
        for (const t of made) t.destroy();
        throw e;
      }
      this.capturedIo.set(session, io);
    }
    return io;
  }

  private loopShapes(batch: number, h: number, w: number, textTokens: number): LoopInputShapes {
    const cin = Number(this.model.unet.config['in_channels'] ?? 4);
    const d = Number(this.model.textEncoder.config.hidden_size) + Number(this.model.textEncoder2.config.hidden_size);
    const pooled = Number(this.model.textEncoder2.config.projection_dim ?? this.model.textEncoder2.config.hidden_size);
    return { sample: [batch, cin, h, w], timestep: [1], encoder_hidden_states: [batch, textTokens, d], text_embeds: [batch, pooled], time_ids: [batch, 6] };
  }

  private vae(batch: number, h: number, w: number): Promise<InferenceSession> {
    // The stock SDXL VAE overflows fp16 (force_upcast): it always decodes in fp32. Its up path runs in row bands
    // of at most VAE_BAND_BYTES per tensor whatever the adapter allows: unbanded, a 1024² decode holds 4.3 GB of
    // activations instead of 2.4 GB (npm run bench:memory), which would push KOALA-700M past 7.7 GB.
    const maxBindingBytes = Math.min(this.options.maxBindingBytes ?? VAE_BAND_BYTES, VAE_BAND_BYTES);
    const compute = this.vaeCompute;
    return this.session('vae', `${batch}x${h}x${w}:${compute}`, () =>
      buildVaeDecoderGraph(this.model.vae.config, this.model.vae.weights, { batch, height: h, width: w, compute, maxBindingBytes }),
    );
  }

  /**
   * Fuses these LoRAs (none = the model's own weights) into the U-Net and text encoders. Only
   * components whose set of LoRAs or scales changed get new weights; their sessions are released
   * and rebuilt on next use, the others are kept. Throws before changing anything when a LoRA is
   * bad or (without allowPartial) matches only part of its modules.
   */
  async setLoras(loras: LoraUse[]): Promise<LoraReport[]> {
    const base = this.loraTargets();
    const keys = {} as Record<LoraComponent, string>;
    for (const c of LORA_COMPONENTS) {
      keys[c] = loras.filter((l) => l.lora.report.perComponent[c] > 0 && l.scale !== 0).map((l) => `${l.lora.name}:${l.lora.file.source.size}@${l.scale}`).join('|');
    }
    const changed = LORA_COMPONENTS.filter((c) => keys[c] !== this.loraKeys[c]);
    if (changed.length) {
      const active = loras.filter((l) => l.scale !== 0);
      const fused = await fuseLoras(base, active, changed, { gemm: this.options.loraGemm });
      const family: Record<LoraComponent, string> = { unet: 'unet', text_encoder: 'text_encoder_1', text_encoder_2: 'text_encoder_2' };
      const m = this.model;
      this.model = {
        ...m,
        unet: changed.includes('unet') ? { ...m.unet, weights: fused.unet } : m.unet,
        textEncoder: changed.includes('text_encoder') ? { ...m.textEncoder, weights: fused.text_encoder } : m.textEncoder,
        textEncoder2: changed.includes('text_encoder_2') ? { ...m.textEncoder2, weights: fused.text_encoder_2 } : m.textEncoder2,
      };
      for (const c of changed) {
        this.dropSessions(`${family[c]}:`);
        this.loraKeys[c] = keys[c];
      }
    }
    return loras.filter((l) => l.scale !== 0).map((l) => l.lora.report);
  }

  /** The model's own weights (before any LoRA), which LoRA keys are matched against. */
  loraTargets(): LoraTargets {
    return (this.baseWeights ??= {
      unet: this.model.unet.weights,
      text_encoder: this.model.textEncoder.weights,
      text_encoder_2: this.model.textEncoder2.weights,
      layersPerBlock: uniformLayersPerBlock(this.model.unet.config),
    });
  }

  /** Builds and creates every session a request of this shape needs (the page's "load" phase). */
  async prepare(batch: number, width: number, height: number, cfg: boolean, withNoise = false, signal?: AbortSignal): Promise<void> {
    const { h, w } = this.latentSize(width, height);
    const n = cfg ? 2 : 1;
    const steps: (() => Promise<unknown>)[] = [
      () => this.textEncoder(1, batch),
      () => this.textEncoder(2, batch),
      () => this.conditioning(batch, cfg),
      () => (this.graphCapture ? this.capturedUnet(n * batch, h, w, 77) : this.unet(n * batch, h, w)),
      () => this.step(batch, h, w, cfg, withNoise, undefined, this.graphCapture),
      () => this.vae(batch, h, w),
    ];
    for (const s of steps) {
      checkAbort(signal);
      await s();
    }
  }

  /** Releases every session. */
  async release(): Promise<void> {
    const all = [...this.sessions.values()];
    this.sessions.clear();
    await Promise.all(all.map((p) => this.releaseSession(p)));
  }

  latentSize(width: number, height: number): { h: number; w: number } {
    const f = this.model.vaeScale;
    if (width % f || height % f) {
      throw new EngineError('bad-input', `Width and height must be multiples of ${f}; got ${width}×${height}`);
    }
    return { h: height / f, w: width / f };
  }

  private conditioning(batch: number, cfg: boolean, chunkLengths: number[] = [77], weighted = false) {
    const d1 = Number(this.model.textEncoder.config.hidden_size);
    const d2 = Number(this.model.textEncoder2.config.hidden_size);
    const pooled = Number(this.model.textEncoder2.config.projection_dim ?? d2);
    return this.session('conditioning', `${batch}:${cfg}:${chunkLengths.join(',')}:${weighted}`, () =>
      buildConditioningGraph({ batch, dim1: d1, dim2: d2, pooled, cfg, chunkLengths, weighted }),
    );
  }

  /**
   * The VAE's precision: fp32 unless the model computes in fp16 and the VAE says it is fp16-safe
   * (`force_upcast: false`, e.g. madebyollin/sdxl-vae-fp16-fix) — diffusers' rule for upcasting.
   */
  get vaeCompute(): Compute {
    return this.options.precision === 'fp16' && this.model.vae.config.force_upcast === false ? 'float16' : 'float32';
  }

  /** Replaces the model's VAE (e.g. the fp16-safe sdxl-vae-fp16-fix); its sessions are rebuilt on next use. */
  setVae(vae: SdxlModel['vae']): void {
    this.model = { ...this.model, vae };
    this.dropSessions('vae:', 'vae_encoder:');
  }

  /** Sets (or clears) the tiny decoder used for `previewer: 'taesd'` and `decoder: 'taesd'`. */
  setTaesd(t: { config: TaesdConfig; weights: WeightIndex; name: string } | undefined): void {
    this.taesdModel = t;
    this.dropSessions('taesd:');
  }

  get hasTaesd(): boolean {
    return !!this.taesdModel;
  }

  /** The TAESD decoder for a latent size (the model's compute precision: TAESD is fp16-safe). */
  private taesd(batch: number, h: number, w: number): Promise<InferenceSession> {
    const t = this.taesdModel;
    if (!t) throw new EngineError('bad-input', 'The tiny decoder (TAESD) is not loaded');
    return this.session('taesd', `${batch}x${h}x${w}`, () =>
      buildTaesdDecoderGraph(t.config, t.weights, { batch, height: h, width: w, compute: this.compute, maxBindingBytes: this.options.maxBindingBytes, configName: `${t.name}/config.json` }),
    );
  }

  /** The VAE encoder at an image size (fp32 like the decoder, row-banded to VAE_BAND_BYTES). */
  private vaeEncoder(height: number, width: number): Promise<InferenceSession> {
    const maxBindingBytes = Math.min(this.options.maxBindingBytes ?? VAE_BAND_BYTES, VAE_BAND_BYTES);
    const scale = Number(this.model.vae.config.scaling_factor ?? 0.13025);
    return this.session('vae_encoder', `${height}x${width}`, () =>
      buildVaeEncoderGraph(this.model.vae.config, this.model.vae.weights, { batch: 1, height, width, compute: this.vaeCompute, maxBindingBytes, scale }),
    );
  }

  private step(batch: number, h: number, w: number, cfg: boolean, withNoise: boolean, inpaint?: 'blend' | 'concat', timestepOut = false) {
    const channels = Number(this.model.unet.config['out_channels'] ?? 4);
    return this.session('step', `${batch}x${h}x${w}:${cfg}:${withNoise}:${inpaint ?? ''}:${timestepOut}`, () =>
      buildStepGraph({ batch, channels, height: h, width: w, cfg, withNoise, inpaint, timestepOut }),
    );
  }

  /** How this U-Net inpaints: blend (4-channel) or concat (9-channel: latents | mask | masked image latents). */
  private inpaintMode(hasMask: boolean): 'blend' | 'concat' | undefined {
    const cin = Number(this.model.unet.config['in_channels'] ?? 4);
    const c = Number(this.model.unet.config['out_channels'] ?? 4);
    if (cin === 2 * c + 1) {
      if (!hasMask) throw new EngineError('bad-input', `${this.model.name} is an inpainting model (a ${cin}-channel U-Net): it needs an input image and a mask`);
      return 'concat';
    }
    if (cin !== c) throw new EngineError('bad-input', `${this.model.name}: a U-Net with ${cin} input and ${c} output channels is not supported`);
    return hasMask ? 'blend' : undefined;
  }

  /** How a prompt pair is read (see PipelineRequest.promptStyle). */
  planPrompt(prompt: string, negative: string | undefined, style: PromptStyle = 'auto'): PromptPlan {
    const t = this.model.tokenizers;
    try {
      const weighted = style === 'weighted' || (style === 'auto' && needsWeighting(t, prompt, negative, hasPromptSyntax));
      return weighted ? planWeighted(t, prompt, negative) : planPlain(t, prompt, negative);
    } catch (e) {
      if (e instanceof PromptTooLongError || e instanceof PromptSyntaxError) throw new EngineError('bad-input', e.message);
      throw e;
    }
  }

  /**
   * Encodes one side (positive or negative) of every batch item, chunk by chunk at 77 positions:
   * conditioning-graph feeds `h1`, `h2` (`h1_c`, … per chunk), `pooled` (the last chunk's text_embeds)
   * and, when weighted, `weight_delta`, under `prefix`.
   */
  private async encodeSide(sides: PromptSide[], plan: PromptPlan, prefix: string, feeds: Record<string, Tensor>, owned: Tensor[]): Promise<void> {
    const B = sides.length;
    const [s1, s2] = await Promise.all([this.textEncoder(1, B), this.textEncoder(2, B)]);
    const chunks = plan.chunkLengths.length;
    for (let c = 0; c < chunks; c++) {
      const ids1 = new BigInt64Array(B * 77);
      const ids2 = new BigInt64Array(B * 77);
      sides.forEach((sd, i) => {
        sd.ids1[c]!.forEach((v, j) => (ids1[i * 77 + j] = BigInt(v)));
        sd.ids2[c]!.forEach((v, j) => (ids2[i * 77 + j] = BigInt(v)));
      });
      const o1 = await s1.run({ input_ids: this.backend.tensor('int64', ids1, [B, 77]) });
      const o2 = await s2.run({ input_ids: this.backend.tensor('int64', ids2, [B, 77]) });
      const n = chunkInputNames(prefix, c);
      feeds[n.h1] = o1['hidden_states_m2']!;
      feeds[n.h2] = o2['hidden_states_m2']!;
      owned.push(o1['hidden_states_m2']!, o2['hidden_states_m2']!);
      for (const t of [o1['last_hidden_state'], o2['last_hidden_state']]) if (t) this.backend.dispose(t);
      if (c === chunks - 1) feeds[`${prefix}pooled`] = o2['text_embeds']!;
      owned.push(o2['text_embeds']!);
    }
    if (plan.style === 'weighted') {
      const T = plan.tokens;
      const delta = new Float32Array(B * T);
      sides.forEach((sd, i) => sd.weights.forEach((w, j) => (delta[i * T + j] = w - 1)));
      feeds[`${prefix}weight_delta`] = this.backend.tensor('float32', delta, [B, T, 1]);
    }
  }

  private zeros(dims: number[]): Tensor {
    return this.backend.tensor('float32', new Float32Array(dims.reduce((a, b) => a * b, 1)), dims);
  }

  async generate(req: PipelineRequest): Promise<PipelineResult> {
    const t0 = now();
    const timings: Record<string, number> = {};
    const readbacksAtStart = this.backend.readbacks;
    const B = req.prompts.length * req.numImagesPerPrompt;
    if (B < 1) throw new EngineError('bad-input', 'No prompt given');
    if (req.negativePrompts && req.negativePrompts.length !== req.prompts.length) {
      throw new EngineError('bad-input', `Give one negative prompt per prompt (${req.prompts.length}), got ${req.negativePrompts.length}`);
    }
    const { h, w } = this.latentSize(req.width, req.height);
    if ((req.decoder === 'taesd' || req.previewer === 'taesd') && !this.taesdModel) {
      throw new EngineError('bad-input', 'The tiny decoder (TAESD) was asked for but is not loaded');
    }
    const C = Number(this.model.unet.config['out_channels'] ?? 4);
    const mask = req.init?.mask;
    const inpaint = this.inpaintMode(!!mask);
    const Cin = inpaint === 'concat' ? 2 * C + 1 : C;
    if (mask && mask.length !== req.width * req.height) throw new EngineError('bad-input', `mask: expected ${req.height}×${req.width} values, got ${mask.length}`);
    const cfg = req.guidance > 1;
    const begin = req.init ? img2imgBeginIndex(req.steps, req.init.strength) : 0;
    if (req.init && req.init.image.length !== 3 * req.width * req.height) {
      throw new EngineError('bad-input', `init image: expected 3×${req.height}×${req.width} values, got ${req.init.image.length}`);
    }
    if (req.init && begin >= req.steps) return this.unchanged(req, B, t0);
    const scheduler: Scheduler = createScheduler(req.scheduler, this.model.schedulerConfig, req.steps, { timestepSpacing: req.timestepSpacing, beginIndex: begin });
    const withNoise = scheduler.needsNoise;
    const latentLen = C * h * w;
    const dump: Record<string, DumpTensor> | undefined = req.dump ? {} : undefined;
    const dumpTensor = async (name: string, t: Tensor) => {
      if (dump) dump[name] = { data: Float32Array.from(await this.backend.read(t)), dims: [...t.dims] };
    };

    // ---- prompts (batch order: prompt i's images are consecutive, as diffusers repeats them)
    req.onPhase?.('encode', 'Encoding the prompt');
    const plans = req.prompts.map((p, i) => this.planPrompt(p, req.negativePrompts?.[i], req.promptStyle));
    const lengths = (pl: PromptPlan) => `${pl.style}:${pl.chunkLengths.join(',')}`;
    if (plans.some((pl) => lengths(pl) !== lengths(plans[0]!))) return this.generateApart(req);
    const plan = plans[0]!;
    const expand = <T,>(list: T[]) => list.flatMap((p) => Array<T>(req.numImagesPerPrompt).fill(p));
    const condFeeds: Record<string, Tensor> = {};
    const owned: Tensor[] = [];
    await this.encodeSide(expand(plans.map((pl) => pl.positive)), plan, '', condFeeds, owned);
    checkAbort(req.signal);
    const zeroNegative = plan.style === 'plain' && req.negativePrompts === undefined && this.model.forceZerosForEmptyPrompt;
    if (cfg) {
      if (zeroNegative) {
        const d1 = Number(this.model.textEncoder.config.hidden_size);
        const d2 = Number(this.model.textEncoder2.config.hidden_size);
        const P = condFeeds['pooled']!.dims[1]!;
        Object.assign(condFeeds, { neg_h1: this.zeros([B, 77, d1]), neg_h2: this.zeros([B, 77, d2]), neg_pooled: this.zeros([B, P]) });
      } else {
        await this.encodeSide(expand(plans.map((pl) => pl.negative)), plan, 'neg_', condFeeds, owned);
      }
    }
    const condSession = await this.conditioning(B, cfg, plan.chunkLengths, plan.style === 'weighted');
    const cond = await condSession.run(condFeeds);
    const ehs = cond['encoder_hidden_states']!;
    const textEmbeds = cond['text_embeds']!;
    if (dump) {
      await dumpTensor('all_prompt_embeds', ehs);
      await dumpTensor('all_text_embeds', textEmbeds);
      const all = dump['all_prompt_embeds']!;
      const pooledAll = dump['all_text_embeds']!;
      const half = (t: DumpTensor, second: boolean): DumpTensor => {
        if (!cfg) return t;
        const n = t.data.length / 2;
        return { data: t.data.slice(second ? n : 0, second ? 2 * n : n), dims: [t.dims[0]! / 2, ...t.dims.slice(1)] };
      };
      dump['prompt_embeds'] = half(all, true);
      dump['pooled_prompt_embeds'] = half(pooledAll, true);
      if (cfg) {
        dump['negative_prompt_embeds'] = half(all, false);
        dump['negative_pooled_prompt_embeds'] = half(pooledAll, false);
      }
      delete dump['all_prompt_embeds'];
      delete dump['all_text_embeds'];
    }
    for (const t of owned) this.backend.dispose(t);
    for (const [k, t] of Object.entries(condFeeds)) if (k.includes('weight_delta') || (zeroNegative && k.startsWith('neg_'))) this.backend.dispose(t);
    const timeIds = addTimeIdsBatch({ width: req.width, height: req.height, originalSize: req.originalSize, cropTopLeft: req.cropTopLeft, targetSize: req.targetSize }, B, cfg);
    if (dump) dump['add_time_ids'] = { data: timeIds, dims: [timeIds.length / 6, 6] };
    const timeIdsT = this.backend.tensor('float32', timeIds, [timeIds.length / 6, 6]);
    timings['encode'] = now() - t0;

    // ---- initial latents
    const seeds = Array.from({ length: B }, (_, k) => deriveSeed(req.seed, k));
    let init = req.latents;
    if (init) {
      if (init.length !== B * latentLen) {
        throw new EngineError('bad-input', `latents: expected ${B}×${C}×${h}×${w} = ${B * latentLen} values, got ${init.length}`);
      }
    } else {
      init = batchLatents(req.seed, B, C, h, w);
    }
    let start: Float32Array;
    let maskLatent: Float32Array | undefined;
    let imageLatents: Float32Array | undefined;
    let maskedImageLatents: Float32Array | undefined;
    if (req.init) {
      // diffusers prepare_latents: image_latents (mean × scaling_factor), then add_noise at the first step that runs
      const tEnc = now();
      req.onPhase?.('encode', 'Encoding the input image');
      const enc = await this.vaeEncoder(req.height, req.width);
      const encode = async (pixels: Float32Array) => {
        const t = (await enc.run({ image: this.backend.tensor('float32', pixels, [1, 3, req.height, req.width]) }))['latents']!;
        const v = Float32Array.from(await this.backend.read(t));
        this.backend.dispose(t);
        return v;
      };
      const lat = (imageLatents = await encode(req.init.image));
      if (dump) dump['image_latents'] = { data: lat, dims: [1, C, h, w] };
      if (mask) {
        maskLatent = nearestDownsample(mask, req.height, req.width, h, w);
        if (dump) dump['mask'] = { data: maskLatent, dims: [1, 1, h, w] };
        if (inpaint === 'concat') {
          const plane = req.width * req.height;
          maskedImageLatents = await encode(req.init.image.map((v, k) => (mask[k % plane]! < 0.5 ? v : 0)));
          if (dump) dump['masked_image_latents'] = { data: maskedImageLatents, dims: [1, C, h, w] };
        }
      }
      if (mask && req.init.strength === 1) {
        // diffusers inpainting at full strength: pure noise, as text to image
        const sigma0 = scheduler.initNoiseSigma;
        start = init.map((v) => Math.fround(v * sigma0));
      } else {
        const { original, noise } = scheduler.noiseCoefficients(begin);
        start = init.map((v, k) => Math.fround(Math.fround(lat[k % latentLen]! * original) + Math.fround(v * noise)));
      }
      timings['encode_image'] = now() - tEnc;
    } else {
      const sigma0 = scheduler.initNoiseSigma;
      start = init.map((v) => Math.fround(v * sigma0));
    }
    if (dump && req.init) dump['latents_start'] = { data: start, dims: [B, C, h, w] };
    const scale0 = scheduler.scaleFactor(begin);
    const inLen = Cin * h * w;
    const in0 = new Float32Array((cfg ? 2 : 1) * B * inLen);
    for (let b = 0; b < (cfg ? 2 : 1) * B; b++) {
      const k = b % B;
      for (let j = 0; j < latentLen; j++) in0[b * inLen + j] = Math.fround(start[k * latentLen + j]! * scale0);
      if (inpaint === 'concat') {
        in0.set(maskLatent!, b * inLen + latentLen);
        in0.set(maskedImageLatents!, b * inLen + latentLen + h * w);
      }
    }

    // ---- denoising loop
    const tBuild = now();
    req.onPhase?.('build', 'Preparing the U-Net');
    const nB = (cfg ? 2 : 1) * B;
    let captured: { session: InferenceSession; io: CapturedIo } | undefined;
    if (this.graphCapture) {
      const session = await this.capturedUnet(nB, h, w, plan.tokens);
      try {
        captured = { session, io: await this.capturedBuffers(session, nB, h, w, plan.tokens, ehs) };
      } catch (e) {
        // the plain loop works everywhere: say why and run it
        console.warn(`graph capture is off for this pipeline: ${(e as Error).message}`);
        this.captureOn = false;
      }
    }
    const unet = captured?.session ?? (await this.unet(nB, h, w, plan.tokens));
    const step = await this.step(B, h, w, cfg, withNoise, inpaint, !!captured);
    const inpaintFeeds: Record<string, Tensor> = {};
    if (inpaint) inpaintFeeds['mask'] = this.backend.tensor('float32', maskLatent!, [1, 1, h, w]);
    if (inpaint === 'blend') {
      inpaintFeeds['image_latents'] = this.backend.tensor('float32', imageLatents!, [1, C, h, w]);
      inpaintFeeds['init_noise'] = this.backend.tensor('float32', init, [B, C, h, w]);
    }
    if (inpaint === 'concat') inpaintFeeds['masked_image_latents'] = this.backend.tensor('float32', maskedImageLatents!, [1, C, h, w]);
    timings['build'] = now() - tBuild;
    const latDims = [B, C, h, w];
    let sample: Tensor = this.backend.tensor('float32', start, latDims);
    let unetIn: Tensor = this.backend.tensor('float32', in0, [nB, Cin, h, w]);
    let prevX0: Tensor = this.zeros(latDims);
    const n = scheduler.numSteps;
    const textFeeds = { encoder_hidden_states: ehs, text_embeds: textEmbeds, time_ids: timeIdsT };
    let unetRun: (i: number) => Promise<Tensor>;
    let stepFetches: Record<string, Tensor | null> | undefined;
    if (captured) {
      // the generation's inputs into the captured U-Net's fixed buffers; each step then writes the next ones
      const io = captured.io;
      const loopIn = await this.session('loop_input', `${nB}x${Cin}x${h}x${w}x${plan.tokens}`, () => buildLoopInputGraph(this.loopShapes(nB, h, w, plan.tokens)));
      const tensor = (v: Float32Array, dims: number[]) => this.backend.tensor('float32', v, dims);
      await loopIn.run(
        { one: tensor(Float32Array.of(1), [1]), sample_in: unetIn, timestep_in: tensor(Float32Array.of(scheduler.timesteps[begin]!), [1]), encoder_hidden_states_in: ehs, text_embeds_in: textEmbeds, time_ids_in: timeIdsT },
        Object.fromEntries(LOOP_INPUTS.map((k) => [k, io[k].tensor])),
      );
      const bound = Object.fromEntries(LOOP_INPUTS.map((k) => [k, io[k].tensor]));
      unetRun = async () => (await unet.run(bound, { out: io.out.tensor }))['out']!;
      stepFetches = { next: null, x0: null, unet_in: io.sample.tensor, t_next: io.timestep.tensor };
    } else {
      unetRun = async (i) => (await unet.run({ sample: unetIn, timestep: this.backend.tensor('float32', Float32Array.of(scheduler.timesteps[i]!), [1]), ...textFeeds }))['out']!;
    }
    const tLoop = now();
    req.onPhase?.('denoise', 'Denoising');
    for (let i = begin; i < n; i++) {
      checkAbort(req.signal);
      const tStep = now();
      const unetOut = await unetRun(i);
      // inpainting (4-channel): the kept region is the image noised to the next step's level (plain after the last)
      const blend = inpaint === 'blend' && i + 1 < n ? scheduler.noiseCoefficients(i + 1) : undefined;
      const coef = packCoef(req.guidance, scheduler.stepCoefficients(i), i + 1 < n ? scheduler.scaleFactor(i + 1) : 1, blend, scheduler.timesteps[i + 1] ?? 0);
      const feeds: Record<string, Tensor> = { unet_out: unetOut, sample, prev_x0: prevX0, coef: this.backend.tensor('float32', coef, [coef.length]), ...inpaintFeeds };
      if (withNoise) feeds['noise'] = this.backend.tensor('float32', this.stepNoise(req, i, seeds, latentLen), latDims);
      const r = stepFetches ? await step.run(feeds, stepFetches) : await step.run(feeds);
      if (!captured) {
        this.backend.dispose(unetOut);
        this.backend.dispose(unetIn);
        unetIn = r['unet_in']!;
      }
      this.backend.dispose(sample);
      this.backend.dispose(prevX0);
      sample = r['next']!;
      prevX0 = r['x0']!;
      const done = i + 1 - begin;
      if (req.onPreview && req.previewEvery && (done % req.previewEvery === 0 || i + 1 === n) && i + 1 < n) {
        if (req.previewer === 'taesd') {
          // the tiny decoder on x0 (unscaled latents / its scaling factor), one full-size read per preview
          const unit = await this.decodeTaesd(prevX0, B, h, w);
          for (let k = 0; k < B; k++) req.onPreview({ step: done, width: req.width, height: req.height, rgba: unitToRgba(unit, req.height, req.width, k), image: k });
        } else {
          const x0 = await this.backend.read(prevX0);
          for (let k = 0; k < B; k++) req.onPreview({ step: done, width: w, height: h, rgba: latentPreview(x0, h, w, k), image: k });
        }
      }
      const elapsed = now() - tLoop;
      timings[`step${done}`] = now() - tStep;
      req.onStep?.({ step: done, total: n - begin, elapsed, rate: done / elapsed });
    }
    timings['denoise'] = now() - tLoop;
    for (const t of Object.values(inpaintFeeds)) this.backend.dispose(t);
    this.backend.dispose(unetIn);
    this.backend.dispose(prevX0);
    this.backend.dispose(ehs);
    this.backend.dispose(textEmbeds);
    if (dump) await dumpTensor('latents', sample);
    checkAbort(req.signal);
    if (req.skipDecode) {
      this.backend.dispose(sample);
      timings['total'] = now() - t0;
      return {
        images: [],
        prompt: { style: plan.style, chunks: plan.chunkLengths.length, tokens: plan.tokens },
        truncated: { prompt: 0, negativePrompt: 0 },
        readbacks: this.backend.readbacks - readbacksAtStart,
        timings,
        dump,
        stepsRun: n - begin,
      };
    }

    // ---- decode (the VAE in fp32, or the tiny decoder) and 8-bit RGBA
    const tDec = now();
    const H = req.height;
    const W = req.width;
    let unit: Float32Array;
    if (req.decoder === 'taesd') {
      req.onPhase?.('decode', 'Decoding the image (tiny decoder)');
      unit = await this.decodeTaesd(sample, B, h, w);
      this.backend.dispose(sample);
    } else {
      req.onPhase?.('decode', 'Decoding the image');
      const sf = Number(this.model.vae.config.scaling_factor ?? 0.13025);
      const scaleSession = await this.session('scale', `${B}x${h}x${w}:${sf}`, () => buildScaleGraph(latDims, 1 / sf));
      const scaled = (await scaleSession.run({ x: sample }))['y']!;
      this.backend.dispose(sample);
      const vae = await this.vae(B, h, w);
      const decoded = (await vae.run({ latents_scaled: scaled }))['image']!;
      this.backend.dispose(scaled);
      const pixels = await this.backend.read(decoded);
      unit = vaeOutputToUnit(pixels, B, H, W);
    }
    const images: PipelineImage[] = seeds.map((seed, k) => ({ rgba: unitToRgba(unit, H, W, k), width: W, height: H, seed }));
    if (dump) dump['image'] = { data: unit, dims: [B, H, W, 3] };
    timings['decode'] = now() - tDec;
    timings['total'] = now() - t0;
    return {
      images,
      prompt: { style: plan.style, chunks: plan.chunkLengths.length, tokens: plan.tokens },
      truncated: {
        prompt: Math.max(...plans.map((pl) => pl.truncated.prompt)),
        negativePrompt: cfg && !zeroNegative ? Math.max(...plans.map((pl) => pl.truncated.negativePrompt)) : 0,
      },
      readbacks: this.backend.readbacks - readbacksAtStart,
      timings,
      dump,
      stepsRun: n - begin,
    };
  }

  /** Latents [B, C, h, w] (GPU) → [B, H, W, 3] in [0, 1] through the tiny decoder (one read). */
  private async decodeTaesd(latents: Tensor, B: number, h: number, w: number): Promise<Float32Array> {
    const sf = Number(this.taesdModel?.config.scaling_factor ?? 1);
    const dims = [B, Number(this.model.unet.config['out_channels'] ?? 4), h, w];
    let input = latents;
    if (sf !== 1) input = (await (await this.session('scale', `${B}x${h}x${w}:${sf}`, () => buildScaleGraph(dims, 1 / sf))).run({ x: latents }))['y']!;
    const out = (await (await this.taesd(B, h, w)).run({ latents_scaled: input }))['image']!;
    if (input !== latents) this.backend.dispose(input);
    const f = this.model.vaeScale;
    const unit = vaeOutputToUnit(await this.backend.read(out), B, h * f, w * f);
    this.backend.dispose(out);
    return unit;
  }

  /** Image-to-image with a strength that leaves no step to run: the input image, unchanged (and said so). */
  private unchanged(req: PipelineRequest, B: number, t0: number): PipelineResult {
    const unit = new Float32Array(B * req.height * req.width * 3);
    const img = req.init!.image;
    const plane = req.height * req.width;
    for (let k = 0; k < B; k++) for (let p = 0; p < plane; p++) for (let c = 0; c < 3; c++) {
      unit[(k * plane + p) * 3 + c] = Math.min(1, Math.max(0, img[c * plane + p]! / 2 + 0.5));
    }
    const images = Array.from({ length: B }, (_, k) => ({ rgba: unitToRgba(unit, req.height, req.width, k), width: req.width, height: req.height, seed: deriveSeed(req.seed, k) }));
    return {
      images,
      note: `strength ${req.init!.strength} of ${req.steps} steps leaves no step to run: the input image is returned unchanged`,
      stepsRun: 0,
      prompt: { style: 'plain', chunks: 1, tokens: 77 },
      truncated: { prompt: 0, negativePrompt: 0 },
      readbacks: 0,
      timings: { total: now() - t0 },
      dump: req.dump ? { image: { data: unit, dims: [B, req.height, req.width, 3] } } : undefined,
    };
  }

  /**
   * Prompts whose weighted readings have different lengths cannot share one U-Net batch: each prompt's
   * images run on their own, with the seeds (and given latents / step noise) they have in the batch.
   */
  private async generateApart(req: PipelineRequest): Promise<PipelineResult> {
    const N = req.numImagesPerPrompt;
    const B = req.prompts.length * N;
    const per = req.latents ? req.latents.length / B : 0;
    const out: PipelineResult = { images: [], prompt: { style: 'plain', chunks: 1, tokens: 77 }, truncated: { prompt: 0, negativePrompt: 0 }, readbacks: 0, timings: {} };
    for (let i = 0; i < req.prompts.length; i++) {
      const sub = await this.generate({
        ...req,
        prompts: [req.prompts[i]!],
        negativePrompts: req.negativePrompts ? [req.negativePrompts[i]!] : undefined,
        seed: deriveSeed(req.seed, i * N),
        latents: req.latents?.subarray(i * N * per, (i + 1) * N * per),
        stepNoise: req.stepNoise?.map((t) => t.subarray((i * N * t.length) / B, ((i + 1) * N * t.length) / B)),
        dump: false,
        onPreview: req.onPreview ? (p) => req.onPreview!({ ...p, image: p.image + i * N }) : undefined,
      });
      out.images.push(...sub.images);
      out.prompt = sub.prompt;
      out.truncated.prompt = Math.max(out.truncated.prompt, sub.truncated.prompt);
      out.truncated.negativePrompt = Math.max(out.truncated.negativePrompt, sub.truncated.negativePrompt);
      out.readbacks += sub.readbacks;
      for (const [name, t] of Object.entries(sub.timings)) out.timings[name] = (out.timings[name] ?? 0) + t;
    }
    return out;
  }

  private stepNoise(req: PipelineRequest, i: number, seeds: number[], latentLen: number): Float32Array {
    if (req.stepNoise) {
      const given = req.stepNoise[i];
      if (!given) throw new EngineError('bad-input', `step noise: no tensor for step ${i} (step_noise.${String(i).padStart(2, '0')})`);
      if (given.length !== seeds.length * latentLen) throw new EngineError('bad-input', `step noise ${i}: expected ${seeds.length * latentLen} values, got ${given.length}`);
      return given;
    }
    return batchStepNoise(req.seed, i, seeds.length, latentLen);
  }
}
