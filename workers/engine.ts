/**
 * The engine behind the worker's message loop: capabilities, model files (hub cache or a picked
 * folder), the SDXL pipeline on WebGPU, PNG results. One model is loaded at a time.
 */
import type { Engine, GenerateContext, LoadContext, TaskContext } from './engine-types';
import { deleteCachedModel, listCachedModels } from './hub/ensure';
import { browserStore, openModel } from './hub/open';
import { toProgressEvent } from './hub/progress';
import { DEFAULT_HUB_URL, resolveCommit, resolveUrl } from './hub/resolve';
import type { ModelFiles } from './hub/types';
import { formatParameters } from './pipeline/a1111';
import { BlobRegistry } from './pipeline/ort-backend';
import { assertValidParams } from './pipeline/params';
import { encodePng } from './pipeline/png';
import { openSdxlModel, type SdxlModel } from './pipeline/sdxl-model';
import { fusedProbeShapes, SdxlPipeline } from './pipeline/sdxl-pipeline';
import { SdxlTokenizers } from './pipeline/tokenizer';
import { EngineError, type Capabilities, type GenerateParams, type GenerationStats, type ImageResult, type LoraRef, type LoraReport, type ModelSource, type Precision } from './protocol';
import { describeTokens } from './pipeline/long-prompt';
import { ensureHubFile } from './hub/hub-file';
import { createSHA256 } from 'hash-wasm';
import { decodeImageBlob } from './pipeline/image-decode';
import { fitInitImage, fitMask } from './pipeline/init-image';
import { DEFAULT_TAESD_REPO, openStandaloneVae, openTaesd } from './pipeline/component-source';
import { asEngineError, LoraLibrary, validateLoras } from './pipeline/lora-sources';
import { hasPromptSyntax } from './pipeline/prompt-attention';
import { probeCapabilities } from './runtime/capabilities';
import { configureOrt, ort } from './runtime/ort';
import { createOrtGemm } from './pipeline/cpu-gemm';
import type { OrtModule } from './pipeline/ort-backend';
import { createWebgpuBackend } from './runtime/webgpu-backend';
import { probeFusedOpsWebgpu } from './runtime/fused-ops-webgpu';

interface Loaded {
  key: string;
  model: SdxlModel;
  pipeline: SdxlPipeline;
  precision: Precision;
  /** Shapes already warmed up ("compiling shaders" done). */
  warm: Set<string>;
  /** LoRA files opened against this model (headers only). */
  loras: LoraLibrary;
  /** The tiny decoder's repo, once loaded. */
  taesd?: string;
  /** The replacement VAE's repo in use ('' or unset: the model's own). */
  vae?: string;
}

const now = () => performance.now() / 1000;

function sourceKey(m: ModelSource, variant: string | undefined, precision: Precision): string {
  return [m.hubUrl ?? DEFAULT_HUB_URL, m.repo, m.revision ?? 'main', variant ?? '', precision, m.localFiles ? 'local' : 'hub'].join('|');
}

export function createEngine(): Engine {
  const store = browserStore();
  let caps: Capabilities | undefined;
  let loaded: Loaded | undefined;
  let loading: Promise<Loaded> | undefined;
  const tokenizerCache = new Map<string, Promise<SdxlTokenizers>>();

  async function capabilities(): Promise<Capabilities> {
    if (!caps) {
      // the adapter object itself stays here: Capabilities is posted to the page
      const { adapter: _adapter, ...plain } = await probeCapabilities();
      caps = plain;
    }
    return caps;
  }

  /** fp16 needs shader-f16; without it the fp32 weight files and fp32 compute are used. */
  async function choosePrecision(requested: Precision | undefined): Promise<{ precision: Precision; variant?: string }> {
    const c = await capabilities();
    if (!c.webgpu) throw new EngineError('webgpu-unavailable', c.problem ?? 'WebGPU is not available in this browser.');
    const precision: Precision = requested ?? (c.shaderF16 ? 'fp16' : 'fp32');
    if (precision === 'fp16' && !c.shaderF16) {
      throw new EngineError('shader-f16-missing', `${c.adapterName ?? 'This GPU'} has no shader-f16 support; choose fp32 (a larger download).`);
    }
    return { precision, variant: precision === 'fp16' ? 'fp16' : undefined };
  }

  async function modelFiles(m: ModelSource, variant: string | undefined, ctx: TaskContext & { files?: File[] }): Promise<ModelFiles> {
    if (m.localFiles && !ctx.files?.length) throw new EngineError('bad-input', 'Pick the model folder again: its files are not available to the engine.');
    return openModel({ ...m, variant }, m.localFiles ? ctx.files : undefined, {
      store,
      signal: ctx.signal,
      onProgress: (p) => {
        const { type: _t, id: _i, ...update } = toProgressEvent('', p);
        ctx.onProgress(update);
      },
    });
  }

  async function load(m: ModelSource, requested: Precision | undefined, ctx: LoadContext): Promise<Loaded> {
    const { precision, variant } = await choosePrecision(requested);
    const key = sourceKey(m, variant, precision);
    if (loaded?.key === key) return loaded;
    if (loading) {
      const l = await loading.catch(() => undefined);
      if (l?.key === key) return l;
    }
    loading = (async () => {
      if (loaded) {
        await loaded.pipeline.release();
        loaded = undefined;
      }
      const files = await modelFiles(m, variant, ctx);
      if (ctx.signal.aborted) throw new EngineError('cancelled', 'Cancelled.');
      const t0 = now();
      ctx.onProgress({ phase: 'build', message: 'Reading the model', done: 0, total: 1, elapsed: 0 });
      const blobs = new BlobRegistry();
      const model = await openSdxlModel(files, blobs);
      // fused kernels only where this adapter's self-test says they agree with their decompositions
      ctx.onProgress({ phase: 'build', message: 'Testing fused kernels on this GPU', done: 0, total: 1, elapsed: now() - t0 });
      const fused = await probeFusedOpsWebgpu(precision === 'fp16' ? 'float16' : 'float32', fusedProbeShapes(model.unet.weights));
      const pipeline = new SdxlPipeline(model, createWebgpuBackend(blobs), {
        precision,
        maxBindingBytes: caps?.maxStorageBufferBindingSize,
        loraGemm: createOrtGemm(ort as unknown as OrtModule),
        // the denoising loop replays the U-Net's recorded commands (identical latents; graph-capture.webgpu.test.ts)
        graphCapture: true,
        fused: fused.ops,
      });
      ctx.onProgress({ phase: 'build', message: 'Model ready', done: 1, total: 1, elapsed: now() - t0 });
      return { key, model, pipeline, precision, warm: new Set<string>(), loras: new LoraLibrary(() => pipeline.loraTargets(), fetchHubLora) };
    })();
    try {
      loaded = await loading;
      return loaded;
    } finally {
      loading = undefined;
    }
  }

  /**
   * Creates the sessions of one shape and runs the smallest generation that touches every denoising shader
   * (empty prompt, one step, no decode), so shaders compile before step 1; the VAE's compile with the first image.
   */
  async function warmUp(l: Loaded, width: number, height: number, cfg: boolean, ctx: TaskContext): Promise<void> {
    const shape = `${width}x${height}:${cfg}`;
    if (l.warm.has(shape)) return;
    const t0 = now();
    ctx.onProgress({ phase: 'compile', message: 'Compiling shaders', done: 0, total: 2, elapsed: 0 });
    await l.pipeline.prepare(1, width, height, cfg, false, ctx.signal);
    ctx.onProgress({ phase: 'compile', message: 'Compiling shaders', done: 1, total: 2, elapsed: now() - t0 });
    await l.pipeline.generate({
      prompts: [''], numImagesPerPrompt: 1, steps: 1, guidance: cfg ? 2 : 1, scheduler: 'euler', width, height, seed: 0, signal: ctx.signal, skipDecode: true,
    });
    ctx.onProgress({ phase: 'compile', message: 'Shaders ready', done: 2, total: 2, elapsed: now() - t0 });
    l.warm.add(shape);
  }

  /** The current task's context for LoRA downloads (one generate or inspect at a time uses it). */
  let loraCtx: TaskContext | undefined;
  async function fetchHubLora(s: { repo: string; file: string; revision?: string; hubUrl?: string }): Promise<Blob> {
    const ctx = loraCtx;
    const t0 = now();
    const f = await ensureHubFile({
      store,
      repo: s.repo,
      path: s.file,
      revision: s.revision,
      hubUrl: s.hubUrl,
      signal: ctx?.signal,
      onBytes: (done, total) => ctx?.onProgress({ phase: 'download', message: `Downloading LoRA ${s.repo}/${s.file}`, done, total, elapsed: now() - t0 }),
    });
    return f.blob;
  }

  /** Opens every LoRA (downloading hub files once) and fuses them; an empty list restores the model's weights. */
  async function applyLoras(l: Loaded, refs: LoraRef[], ctx: TaskContext): Promise<LoraReport[]> {
    loraCtx = ctx;
    try {
      const opened = [];
      for (const r of refs) opened.push({ lora: await l.loras.open(r), scale: r.scale, allowPartial: r.allowPartial });
      if (refs.some((r) => r.scale !== 0)) ctx.onProgress({ phase: 'build', message: 'Applying LoRA weights', done: 0, total: 1, elapsed: 0 });
      return await l.pipeline.setLoras(opened);
    } catch (e) {
      throw asEngineError(e);
    } finally {
      loraCtx = undefined;
    }
  }

  /** The page's input image (and mask) as the pipeline's tensors, sized to the request; the fit is reported as progress. */
  async function initInputs(params: GenerateParams, ctx: TaskContext) {
    if (!params.initImage) return undefined;
    ctx.onProgress({ phase: 'encode', message: 'Reading the input image', done: 0, total: 1, elapsed: 0 });
    const img = await decodeImageBlob(params.initImage, 'input image');
    const fit = fitInitImage(img, params.width, params.height);
    if (fit.report.message) ctx.onProgress({ phase: 'encode', message: `Input image: ${fit.report.message}`, done: 0, total: 1, elapsed: 0 });
    let mask: Float32Array | undefined;
    if (params.maskImage) {
      const m = fitMask(await decodeImageBlob(params.maskImage, 'mask'), params.width, params.height);
      if (m.report.message) ctx.onProgress({ phase: 'encode', message: `Mask: ${m.report.message}`, done: 0, total: 1, elapsed: 0 });
      mask = m.mask;
    }
    const hasher = await createSHA256();
    hasher.init();
    hasher.update(new Uint8Array(await params.initImage.arrayBuffer()));
    const strength = params.strength ?? 0.8;
    return {
      pipeline: { image: fit.tensor, strength, mask },
      params: { strength, initImageSha256: hasher.digest('hex'), mode: mask ? ('inpaint' as const) : ('img2img' as const) },
    };
  }

  /** A standalone component's files from the hub (cached like a LoRA); a missing file reads as undefined. */
  function hubReader(repo: string, what: string, params: GenerateParams, ctx: TaskContext) {
    const t0 = now();
    return async (path: string) =>
      (
        await ensureHubFile({
          store,
          repo,
          path,
          hubUrl: params.model.hubUrl,
          signal: ctx.signal,
          safetensorsOnly: false,
          onBytes: (done, total) => ctx.onProgress({ phase: 'download', message: `Downloading ${what} ${repo}/${path}`, done, total, elapsed: now() - t0 }),
        }).catch((e: unknown) => {
          if (e instanceof EngineError && e.code === 'bad-input' && /has no file/.test(e.message)) return undefined;
          throw e;
        })
      )?.blob;
  }

  /** Loads the tiny decoder (hub repo, cached like a LoRA) into the pipeline once. */
  async function ensureTaesd(l: Loaded, params: GenerateParams, ctx: TaskContext): Promise<void> {
    const repo = params.taesdRepo ?? DEFAULT_TAESD_REPO;
    if (l.taesd === repo && l.pipeline.hasTaesd) return;
    l.pipeline.setTaesd(await openTaesd(repo, hubReader(repo, 'the tiny decoder', params, ctx), l.precision === 'fp16' ? 'fp16' : undefined));
    l.taesd = repo;
  }

  /** Swaps the model's VAE for params.vaeRepo (or back to the model's own when it is unset). */
  async function ensureVae(l: Loaded, params: GenerateParams, ctx: TaskContext): Promise<void> {
    const want = params.vaeRepo ?? '';
    if ((l.vae ?? '') === want) return;
    l.pipeline.setVae(want ? await openStandaloneVae(want, hubReader(want, 'the VAE', params, ctx), l.precision === 'fp16' ? 'fp16' : undefined) : l.model.vae);
    l.vae = want;
  }

  async function tokenizers(m: ModelSource): Promise<SdxlTokenizers> {
    if (loaded && loaded.key.startsWith([m.hubUrl ?? DEFAULT_HUB_URL, m.repo].join('|'))) return loaded.model.tokenizers;
    const id = `${m.hubUrl ?? DEFAULT_HUB_URL}|${m.repo}|${m.revision ?? 'main'}`;
    let t = tokenizerCache.get(id);
    if (!t) {
      // Only the four small tokenizer files per tokenizer, straight from the hub (the weights may not be cached yet).
      t = (async () => {
        const hubUrl = m.hubUrl ?? DEFAULT_HUB_URL;
        const commit = await resolveCommit(m.repo, m.revision ?? 'main', { hubUrl });
        const get = async (path: string, optional = false): Promise<string | undefined> => {
          const res = await fetch(resolveUrl(hubUrl, m.repo, commit, path));
          if (res.ok) return res.text();
          if (optional && res.status === 404) return undefined;
          throw new EngineError('network', `Could not fetch ${path} of ${m.repo}: HTTP ${res.status}`);
        };
        const files = async (dir: string) => ({
          vocab: (await get(`${dir}/vocab.json`))!,
          merges: (await get(`${dir}/merges.txt`))!,
          tokenizerConfig: (await get(`${dir}/tokenizer_config.json`, true)) ?? {},
          specialTokensMap: await get(`${dir}/special_tokens_map.json`, true),
        });
        return SdxlTokenizers.fromFiles(await files('tokenizer'), await files('tokenizer_2'));
      })();
      t.catch(() => tokenizerCache.delete(id));
      tokenizerCache.set(id, t);
    }
    return t;
  }

  return {
    async probe({ ortWasmBase }) {
      configureOrt(ortWasmBase ? { wasmPaths: ortWasmBase } : {});
      caps = undefined;
      return capabilities();
    },

    async load(model, precision, ctx) {
      await load(model, precision, ctx);
    },

    async generate(params, ctx: GenerateContext) {
      assertValidParams(params);
      const l = await load(params.model, params.precision, ctx);
      const loraReports = await applyLoras(l, params.loras ?? [], ctx);
      const init = await initInputs(params, ctx);
      if (params.decoder === 'taesd' || params.previewer === 'taesd') await ensureTaesd(l, params, ctx);
      await ensureVae(l, params, ctx);
      const cfg = params.guidance > 1;
      // an inpainting U-Net (9 channels) cannot run the text-to-image warm-up: its shaders compile in step 1
      if (Number(l.model.unet.config['in_channels'] ?? 4) === Number(l.model.unet.config['out_channels'] ?? 4)) await warmUp(l, params.width, params.height, cfg, ctx);
      const images: ImageResult[] = [];
      const timings: Record<string, number> = {};
      let readbacks = 0;
      const truncated = { prompt: 0, negativePrompt: 0 };
      let promptInfo: GenerationStats['prompt'];
      const negativePrompt = params.negativePrompt === '' ? undefined : params.negativePrompt;
      for (let k = 0; k < params.numImages; k++) {
        const seed = (params.seed + k) % 2 ** 32;
        const r = await l.pipeline.generate({
          prompts: [params.prompt],
          negativePrompts: negativePrompt === undefined ? undefined : [negativePrompt],
          numImagesPerPrompt: 1,
          steps: params.steps,
          guidance: params.guidance,
          scheduler: params.scheduler,
          timestepSpacing: params.timestepSpacing,
          width: params.width,
          height: params.height,
          originalSize: params.originalSize,
          cropTopLeft: params.cropTopLeft,
          targetSize: params.targetSize,
          seed,
          previewEvery: params.previewEvery,
          previewer: params.previewer,
          decoder: params.decoder,
          init: init?.pipeline,
          promptStyle: params.promptStyle,
          signal: ctx.signal,
          onPhase: (phase, message) => {
            if (phase !== 'denoise') ctx.onProgress({ phase, message, done: 0, total: 1, elapsed: 0, image: k });
          },
          onStep: (s) => {
            const left = (params.numImages - k) * s.total - s.step;
            ctx.onProgress({
              phase: 'denoise',
              message: params.numImages > 1 ? `Image ${k + 1} of ${params.numImages}: step ${s.step} of ${s.total}` : `Step ${s.step} of ${s.total}`,
              done: s.step,
              total: s.total,
              elapsed: s.elapsed,
              rate: s.rate,
              eta: s.rate > 0 ? left / s.rate : undefined,
              image: k,
            });
          },
          onPreview: (p) => ctx.onPreview({ step: p.step, width: p.width, height: p.height, rgba: p.rgba }),
        });
        const t0 = now();
        ctx.onProgress({ phase: 'png', message: 'Saving the PNG', done: 0, total: 1, elapsed: 0, image: k });
        const img = r.images[0]!;
        if (r.note) ctx.onProgress({ phase: 'png', message: r.note, done: 0, total: 1, elapsed: 0, image: k });
        const parameters = formatParameters({ ...params, negativePrompt, ...init?.params }, seed);
        const png = await encodePng(img.rgba, img.width, img.height, { text: { parameters } });
        images.push({ png: new Blob([png as Uint8Array<ArrayBuffer>], { type: 'image/png' }), width: img.width, height: img.height, seed, parameters });
        r.timings['png'] = now() - t0;
        for (const [name, v] of Object.entries(r.timings)) timings[name] = (timings[name] ?? 0) + v;
        readbacks += r.readbacks;
        truncated.prompt = Math.max(truncated.prompt, r.truncated.prompt);
        truncated.negativePrompt = Math.max(truncated.negativePrompt, r.truncated.negativePrompt);
        promptInfo = r.prompt;
      }
      return {
        images,
        stats: { timings, readbacks, truncatedTokens: truncated, prompt: promptInfo, backend: 'webgpu', precision: l.precision, loras: loraReports.length ? loraReports : undefined },
      };
    },

    async tokenize(model, prompt, promptStyle) {
      const t = await tokenizers(model);
      return describeTokens(t, prompt, promptStyle, hasPromptSyntax);
    },

    async inspectLora(model, precision, lora, ctx) {
      const errors = validateLoras([lora]);
      if (errors.length) throw new EngineError('bad-input', `${errors.join('; ')}.`);
      const l = await load(model, precision, ctx);
      loraCtx = ctx;
      try {
        return (await l.loras.open(lora)).report;
      } finally {
        loraCtx = undefined;
      }
    },

    listCache: () => listCachedModels(store),

    async deleteCache(repo, commit) {
      if (loaded?.model.files.repo === repo && (!commit || loaded.model.files.commit === commit)) {
        await loaded.pipeline.release();
        loaded = undefined;
      }
      await deleteCachedModel(store, { repo, commit });
    },
  };
}

