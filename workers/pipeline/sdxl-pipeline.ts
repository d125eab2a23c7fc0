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
import { buildVaeDecoderGraph } from '../model/vae';
import { EngineError, type Precision, type SchedulerName, type TimestepSpacing } from '../protocol';
import type { Backend } from './backend';
import { latentPreview } from './preview';
import { batchLatents, batchStepNoise, deriveSeed } from './rng';
import { unitToRgba, vaeOutputToUnit } from './image';
import { createScheduler, type Scheduler } from './schedulers';
import type { SdxlModel } from './sdxl-model';
import { buildConditioningGraph, buildScaleGraph, buildStepGraph, packCoef } from './step-graph';
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
  /** Unit-variance initial noise [B,4,h,w], replacing the seeded noise. */
  latents?: Float32Array;
  /** Per-step noise for ancestral samplers ([B,4,h,w] each), replacing the seeded draws. */
  stepNoise?: Float32Array[];
  /** Read x0 back and report a preview every N steps (0: never). */
  previewEvery?: number;
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
}

const now = () => globalThis.performance.now() / 1000;

/** Largest tensor of the VAE decoder's row bands (bytes), on every adapter: GPU memory, not binding limits. */
export const VAE_BAND_BYTES = 128 * 2 ** 20;

function checkAbort(signal?: AbortSignal) {
  if (signal?.aborted) throw new EngineError('cancelled', 'Generation cancelled');
}

export class SdxlPipeline {
  private readonly sessions = new Map<string, Promise<InferenceSession>>();
  /** Session creation is serialised: the WebGPU EP refuses to create two sessions at once. */
  private creating: Promise<unknown> = Promise.resolve();

  constructor(
    readonly model: SdxlModel,
    readonly backend: Backend,
    readonly options: PipelineOptions,
  ) {}

  private get compute(): Compute {
    return this.options.precision === 'fp16' ? 'float16' : 'float32';
  }

  /**
   * A cached session. `family` sessions of other shapes are released first (the U-Net and VAE of
   * one size at a time: GPU memory is the limit).
   */
  private session(family: string, key: string, build: () => BuiltGraph): Promise<InferenceSession> {
    const id = `${family}:${key}`;
    let s = this.sessions.get(id);
    if (!s) {
      for (const [other, p] of this.sessions) {
        if (other.startsWith(`${family}:`)) {
          this.sessions.delete(other);
          void p.then((x) => x.release()).catch(() => undefined);
        }
      }
      s = this.creating.catch(() => undefined).then(() => this.backend.createSession(build(), { label: id, keepOutputsOnDevice: true }));
      this.creating = s;
      s.catch(() => this.sessions.delete(id));
      this.sessions.set(id, s);
    }
    return s;
  }

  private textEncoder(which: 1 | 2, batch: number): Promise<InferenceSession> {
    const c = which === 1 ? this.model.textEncoder : this.model.textEncoder2;
    const configName = which === 1 ? 'text_encoder/config.json' : 'text_encoder_2/config.json';
    return this.session(`text_encoder_${which}`, `${batch}`, () =>
      buildClipTextGraph(c.config, c.weights, { batch, compute: this.compute, withProjection: which === 2, configName, maxBindingBytes: this.options.maxBindingBytes }),
    );
  }

  private unet(batch: number, h: number, w: number): Promise<InferenceSession> {
    return this.session('unet', `${batch}x${h}x${w}`, () =>
      buildUnetGraph(this.model.unet.config, this.model.unet.weights, { batch, height: h, width: w, compute: this.compute, maxBindingBytes: this.options.maxBindingBytes }),
    );
  }

  private vae(batch: number, h: number, w: number): Promise<InferenceSession> {
    // The stock SDXL VAE overflows fp16 (force_upcast): it always decodes in fp32. Its up path runs in row bands
    // of at most VAE_BAND_BYTES per tensor whatever the adapter allows: unbanded, a 1024² decode holds 4.3 GB of
    // activations instead of 2.4 GB (npm run bench:memory), which would push KOALA-700M past 7.7 GB.
    const maxBindingBytes = Math.min(this.options.maxBindingBytes ?? VAE_BAND_BYTES, VAE_BAND_BYTES);
    return this.session('vae', `${batch}x${h}x${w}`, () =>
      buildVaeDecoderGraph(this.model.vae.config, this.model.vae.weights, { batch, height: h, width: w, compute: 'float32', maxBindingBytes }),
    );
  }

  /** Builds and creates every session a request of this shape needs (the page's "load" phase). */
  async prepare(batch: number, width: number, height: number, cfg: boolean, withNoise = false, signal?: AbortSignal): Promise<void> {
    const { h, w } = this.latentSize(width, height);
    const n = cfg ? 2 : 1;
    const steps: (() => Promise<unknown>)[] = [
      () => this.textEncoder(1, batch),
      () => this.textEncoder(2, batch),
      () => this.conditioning(batch, cfg),
      () => this.unet(n * batch, h, w),
      () => this.step(batch, h, w, cfg, withNoise),
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
    await Promise.all(all.map((p) => p.then((s) => s.release()).catch(() => undefined)));
  }

  latentSize(width: number, height: number): { h: number; w: number } {
    const f = this.model.vaeScale;
    if (width % f || height % f) {
      throw new EngineError('bad-input', `Width and height must be multiples of ${f}; got ${width}×${height}`);
    }
    return { h: height / f, w: width / f };
  }

  private conditioning(batch: number, cfg: boolean) {
    const d1 = Number(this.model.textEncoder.config.hidden_size);
    const d2 = Number(this.model.textEncoder2.config.hidden_size);
    const pooled = Number(this.model.textEncoder2.config.projection_dim ?? d2);
    return this.session('conditioning', `${batch}:${cfg}`, () =>
      buildConditioningGraph({ batch, tokens: 77, dim1: d1, dim2: d2, pooled, cfg }),
    );
  }

  private step(batch: number, h: number, w: number, cfg: boolean, withNoise: boolean) {
    const channels = Number(this.model.unet.config['in_channels'] ?? 4);
    return this.session('step', `${batch}x${h}x${w}:${cfg}:${withNoise}`, () =>
      buildStepGraph({ batch, channels, height: h, width: w, cfg, withNoise }),
    );
  }

  private async encodeSide(texts: string[]): Promise<{ h1: Tensor; h2: Tensor; pooled: Tensor; truncated: number; extra: Tensor[] }> {
    const B = texts.length;
    const ids1 = new BigInt64Array(B * 77);
    const ids2 = new BigInt64Array(B * 77);
    let truncated = 0;
    texts.forEach((t, i) => {
      const e = this.model.tokenizers.encode(t);
      truncated = Math.max(truncated, e.truncated);
      e.ids1.forEach((v, j) => (ids1[i * 77 + j] = BigInt(v)));
      e.ids2.forEach((v, j) => (ids2[i * 77 + j] = BigInt(v)));
    });
    const [s1, s2] = await Promise.all([this.textEncoder(1, B), this.textEncoder(2, B)]);
    const o1 = await s1.run({ input_ids: this.backend.tensor('int64', ids1, [B, 77]) });
    const o2 = await s2.run({ input_ids: this.backend.tensor('int64', ids2, [B, 77]) });
    const extra = [o1['last_hidden_state'], o2['last_hidden_state']].filter((t): t is Tensor => !!t);
    return { h1: o1['hidden_states_m2']!, h2: o2['hidden_states_m2']!, pooled: o2['text_embeds']!, truncated, extra };
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
    const C = Number(this.model.unet.config['in_channels'] ?? 4);
    const cfg = req.guidance > 1;
    const scheduler: Scheduler = createScheduler(req.scheduler, this.model.schedulerConfig, req.steps, { timestepSpacing: req.timestepSpacing });
    const withNoise = scheduler.needsNoise;
    const latentLen = C * h * w;
    const dump: Record<string, DumpTensor> | undefined = req.dump ? {} : undefined;
    const dumpTensor = async (name: string, t: Tensor) => {
      if (dump) dump[name] = { data: Float32Array.from(await this.backend.read(t)), dims: [...t.dims] };
    };

    // ---- prompts (batch order: prompt i's images are consecutive, as diffusers repeats them)
    req.onPhase?.('encode', 'Encoding the prompt');
    const expand = (list: string[]) => list.flatMap((p) => Array<string>(req.numImagesPerPrompt).fill(p));
    const pos = await this.encodeSide(expand(req.prompts));
    checkAbort(req.signal);
    const d1 = pos.h1.dims[2]!;
    const d2 = pos.h2.dims[2]!;
    const P = pos.pooled.dims[1]!;
    let neg: { h1: Tensor; h2: Tensor; pooled: Tensor; truncated: number; extra: Tensor[] } | undefined;
    if (cfg) {
      if (req.negativePrompts === undefined && this.model.forceZerosForEmptyPrompt) {
        neg = { h1: this.zeros([B, 77, d1]), h2: this.zeros([B, 77, d2]), pooled: this.zeros([B, P]), truncated: 0, extra: [] };
      } else {
        neg = await this.encodeSide(expand(req.negativePrompts ?? req.prompts.map(() => '')));
      }
    }
    const condSession = await this.conditioning(B, cfg);
    const condFeeds: Record<string, Tensor> = { h1: pos.h1, h2: pos.h2, pooled: pos.pooled };
    if (neg) Object.assign(condFeeds, { neg_h1: neg.h1, neg_h2: neg.h2, neg_pooled: neg.pooled });
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
    for (const t of [pos.h1, pos.h2, pos.pooled, ...pos.extra, ...(neg ? [neg.h1, neg.h2, neg.pooled, ...neg.extra] : [])]) this.backend.dispose(t);
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
    const sigma0 = scheduler.initNoiseSigma;
    const start = init.map((v) => Math.fround(v * sigma0));
    const scale0 = scheduler.scaleFactor(0);
    const in0 = new Float32Array((cfg ? 2 : 1) * B * latentLen);
    for (let i = 0; i < in0.length; i++) in0[i] = Math.fround(start[i % start.length]! * scale0);

    // ---- denoising loop
    const tBuild = now();
    req.onPhase?.('build', 'Preparing the U-Net');
    const unet = await this.unet((cfg ? 2 : 1) * B, h, w);
    const step = await this.step(B, h, w, cfg, withNoise);
    timings['build'] = now() - tBuild;
    const latDims = [B, C, h, w];
    let sample: Tensor = this.backend.tensor('float32', start, latDims);
    let unetIn: Tensor = this.backend.tensor('float32', in0, [(cfg ? 2 : 1) * B, C, h, w]);
    let prevX0: Tensor = this.zeros(latDims);
    const tLoop = now();
    req.onPhase?.('denoise', 'Denoising');
    const n = scheduler.numSteps;
    for (let i = 0; i < n; i++) {
      checkAbort(req.signal);
      const tStep = now();
      const out = await unet.run({
        sample: unetIn,
        timestep: this.backend.tensor('float32', Float32Array.of(scheduler.timesteps[i]!), [1]),
        encoder_hidden_states: ehs,
        text_embeds: textEmbeds,
        time_ids: timeIdsT,
      });
      const coef = packCoef(req.guidance, scheduler.stepCoefficients(i), i + 1 < n ? scheduler.scaleFactor(i + 1) : 1);
      const feeds: Record<string, Tensor> = { unet_out: out['out']!, sample, prev_x0: prevX0, coef: this.backend.tensor('float32', coef, [8]) };
      if (withNoise) feeds['noise'] = this.backend.tensor('float32', this.stepNoise(req, i, seeds, latentLen), latDims);
      const r = await step.run(feeds);
      this.backend.dispose(out['out']);
      this.backend.dispose(unetIn);
      this.backend.dispose(sample);
      this.backend.dispose(prevX0);
      sample = r['next']!;
      prevX0 = r['x0']!;
      unetIn = r['unet_in']!;
      if (req.onPreview && req.previewEvery && ((i + 1) % req.previewEvery === 0 || i + 1 === n) && i + 1 < n) {
        const x0 = await this.backend.read(prevX0);
        for (let k = 0; k < B; k++) req.onPreview({ step: i + 1, width: w, height: h, rgba: latentPreview(x0, h, w, k), image: k });
      }
      const elapsed = now() - tLoop;
      timings[`step${i + 1}`] = now() - tStep;
      req.onStep?.({ step: i + 1, total: n, elapsed, rate: (i + 1) / elapsed });
    }
    timings['denoise'] = now() - tLoop;
    this.backend.dispose(unetIn);
    this.backend.dispose(prevX0);
    this.backend.dispose(ehs);
    this.backend.dispose(textEmbeds);
    if (dump) await dumpTensor('latents', sample);
    checkAbort(req.signal);

    // ---- decode (fp32) and 8-bit RGBA
    const tDec = now();
    req.onPhase?.('decode', 'Decoding the image');
    const sf = Number(this.model.vae.config.scaling_factor ?? 0.13025);
    const scaleSession = await this.session('scale', `${B}x${h}x${w}:${sf}`, () => buildScaleGraph(latDims, 1 / sf));
    const scaled = (await scaleSession.run({ x: sample }))['y']!;
    this.backend.dispose(sample);
    const vae = await this.vae(B, h, w);
    const decoded = (await vae.run({ latents_scaled: scaled }))['image']!;
    this.backend.dispose(scaled);
    const pixels = await this.backend.read(decoded);
    const H = req.height;
    const W = req.width;
    const unit = vaeOutputToUnit(pixels, B, H, W);
    const images: PipelineImage[] = seeds.map((seed, k) => ({ rgba: unitToRgba(unit, H, W, k), width: W, height: H, seed }));
    if (dump) dump['image'] = { data: unit, dims: [B, H, W, 3] };
    timings['decode'] = now() - tDec;
    timings['total'] = now() - t0;
    return {
      images,
      truncated: { prompt: pos.truncated, negativePrompt: neg?.truncated ?? 0 },
      readbacks: this.backend.readbacks - readbacksAtStart,
      timings,
      dump,
    };
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
