/**
 * The GPU benchmark, one module for two hosts (the `/bench.html` page's worker and `npm run bench:gpu` in
 * Node over Dawn): a seeded random full-size checkpoint that is never downloaded (random-repo.ts) opened by
 * the app's own engine — SdxlPipeline on the page's WebGPU backend (strict placement) — then N denoising
 * steps with classifier-free guidance at a chosen size and one VAE decode, measured:
 *
 * - ms per CFG step: the median over steps 2…N of the time between the GPU finishing one step and the next
 *   (queue.onSubmittedWorkDone), so CPU-side queueing does not count; step 1 (with shader compilation) apart;
 * - achieved TFLOP/s: the U-Net's FLOPs for batch 2 (counted from the built graph, as `npm run bench:graph`)
 *   over that time;
 * - compute dispatches, queue submits and GPU→CPU readbacks per step (steps 2…N); session creation per
 *   component; encode and VAE decode time; peak GPU bytes (every buffer counted: runtime/gpu-ledger.ts).
 *
 * `instrumentGpu(navigator.gpu)` must run before onnxruntime-web requests its device, so the engine modules
 * are imported only inside `runGpuBench`.
 */
import type { GpuLedger } from '../runtime/gpu-ledger';
import { randomRepo, type BenchModel, type RandomRepoInputs } from './random-repo';

export interface GpuBenchOptions {
  model: BenchModel;
  /** Image size (square), a multiple of 8. */
  size: number;
  /** Denoising steps (≥ 2: the first compiles shaders). */
  steps: number;
  precision: 'fp16' | 'fp32';
  seed?: number;
  /** The small files and configs of the random repo (random-repo.ts). */
  files: Pick<RandomRepoInputs, 'small' | 'configs'>;
  /** The instrumented device's ledger (instrumentGpu ran on navigator.gpu before this module's engine imports). */
  ledger: GpuLedger;
  signal?: AbortSignal;
  onProgress?(p: { phase: string; done: number; total: number; message: string }): void;
}

export interface GpuBenchResult {
  date: string;
  host: string;
  adapter: string;
  shaderF16: boolean;
  limits: { maxBufferSize: number; maxStorageBufferBindingSize: number };
  model: BenchModel;
  size: number;
  steps: number;
  precision: 'fp16' | 'fp32';
  /** The weight files the sessions mounted (fp16 files; fp32 compute upcasts them when the adapter lacks shader-f16). */
  weights: 'fp16';
  msPerStep: number;
  /** GPU ms of every step (the first includes shader compilation). */
  stepMs: number[];
  /** First step minus the median: roughly the shader compilation the first step paid. */
  shaderCompileMs: number;
  unetTflopPerImage: number;
  /** Achieved: 2 U-Net images (CFG) per step. */
  tflops: number;
  dispatchesPerStep: number;
  submitsPerStep: number;
  readbacksPerStep: number;
  sessionCreateMs: number;
  sessions: { label: string; ms: number }[];
  encodeMs: number;
  vaeMs: number;
  gpuPeakBytes: number;
  graphCapture: boolean;
  finite: boolean;
  /** The U-Net graph as built (before onnxruntime's own fusions): nodes by op type, where dispatches come from. */
  unetNodes: number;
  unetOps: Record<string, number>;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2) : NaN;
};

export async function runGpuBench(o: GpuBenchOptions, host: string): Promise<GpuBenchResult> {
  if (!Number.isInteger(o.steps) || o.steps < 2) throw new Error(`steps must be at least 2 (the first compiles shaders), got ${o.steps}`);
  if (!Number.isInteger(o.size) || o.size % 8 || o.size < 64 || o.size > 2048) throw new Error(`size must be a multiple of 8 from 64 to 2048, got ${o.size}`);
  const { createWebgpuBackend } = await import('../runtime/webgpu-backend');
  const { BlobRegistry } = await import('../pipeline/ort-backend');
  const { openSdxlModel } = await import('../pipeline/sdxl-model');
  const { SdxlPipeline } = await import('../pipeline/sdxl-pipeline');
  const { ortDevice } = await import('../runtime/ort');
  const { buildUnetGraph } = await import('../model/unet');
  const { probeCapabilities } = await import('../runtime/capabilities');
  const progress = (phase: string, done: number, total: number, message: string) => o.onProgress?.({ phase, done, total, message });

  const caps = await probeCapabilities();
  if (!caps.webgpu || !caps.adapter) throw new Error(`WebGPU is not available: ${caps.problem ?? 'no adapter'}`);
  if (o.precision === 'fp16' && !caps.shaderF16) throw new Error(`${caps.adapterName ?? 'this adapter'} has no shader-f16: run the fp32 benchmark`);
  const ledger = o.ledger;
  const files = randomRepo({ model: o.model, variant: 'fp16', seed: o.seed ?? 1, ...o.files });
  const blobs = new BlobRegistry();
  const model = await openSdxlModel(files, blobs);
  const backend = createWebgpuBackend(blobs);
  const sessions: { label: string; ms: number }[] = [];
  const create = backend.createSession.bind(backend);
  backend.createSession = async (graph, opts) => {
    const t = performance.now();
    progress('sessions', sessions.length, 6, `Creating ${opts.label} (weights generated and uploaded)`);
    const s = await create(graph, opts);
    sessions.push({ label: opts.label, ms: performance.now() - t });
    return s;
  };
  const limits = { maxBufferSize: Number(caps.adapter.limits.maxBufferSize), maxStorageBufferBindingSize: Number(caps.adapter.limits.maxStorageBufferBindingSize) };
  const pipeline = new SdxlPipeline(model, backend, { precision: o.precision, maxBindingBytes: limits.maxStorageBufferBindingSize });
  const h = o.size / 8;
  const unetGraph = buildUnetGraph(model.unet.config, model.unet.weights, { batch: 2, height: h, width: h, compute: o.precision === 'fp16' ? 'float16' : 'float32', maxBindingBytes: limits.maxStorageBufferBindingSize });
  const flops = unetGraph.report.flops;
  try {
    const t0 = performance.now();
    await pipeline.prepare(1, o.size, o.size, true, false, o.signal);
    const sessionCreateMs = performance.now() - t0;
    const device = await ortDevice();
    const marks: { step: number; gpuDone: Promise<number>; dispatches: number; submits: number; readbacks: number }[] = [];
    let loopStart = 0;
    let decodeStart = 0;
    const result = await pipeline.generate({
      prompts: ['a koala sitting in a eucalyptus tree, photo'],
      negativePrompts: ['blurry'],
      numImagesPerPrompt: 1,
      steps: o.steps,
      guidance: 7.5,
      scheduler: 'euler',
      width: o.size,
      height: o.size,
      seed: 42,
      promptStyle: 'plain',
      dump: false,
      signal: o.signal,
      onPhase: (phase) => {
        if (phase === 'denoise') {
          loopStart = performance.now();
          marks.push({ step: 0, gpuDone: device.queue.onSubmittedWorkDone().then(() => performance.now()), dispatches: ledger.dispatches, submits: ledger.submits, readbacks: backend.readbacks });
        } else if (phase === 'decode') decodeStart = performance.now();
      },
      onStep: (st) => {
        marks.push({ step: st.step, gpuDone: device.queue.onSubmittedWorkDone().then(() => performance.now()), dispatches: ledger.dispatches, submits: ledger.submits, readbacks: backend.readbacks });
        progress('steps', st.step, st.total, `Step ${st.step} of ${st.total}`);
      },
    });
    const done = await Promise.all(marks.map((m) => m.gpuDone));
    const stepMs = done.slice(1).map((t, i) => t - done[i]!);
    const steady = stepMs.slice(1);
    const msPerStep = median(steady);
    const last = marks.at(-1)!;
    const first = marks[1]!;
    const n = marks.length - 2;
    let finite = true;
    for (const v of result.images[0]!.rgba) if (!Number.isFinite(v)) finite = false;
    return {
      date: new Date().toISOString(),
      host,
      adapter: caps.adapterName ?? 'unknown',
      shaderF16: caps.shaderF16,
      limits,
      model: o.model,
      size: o.size,
      steps: o.steps,
      precision: o.precision,
      weights: 'fp16',
      msPerStep,
      stepMs,
      shaderCompileMs: Math.max(0, stepMs[0]! - msPerStep),
      unetTflopPerImage: flops / 2 / 1e12,
      tflops: flops / (msPerStep / 1000) / 1e12,
      dispatchesPerStep: (last.dispatches - first.dispatches) / n,
      submitsPerStep: (last.submits - first.submits) / n,
      readbacksPerStep: (last.readbacks - first.readbacks) / n,
      sessionCreateMs,
      sessions,
      encodeMs: (result.timings['encode'] ?? 0) * 1000,
      vaeMs: decodeStart ? (result.timings['decode'] ?? 0) * 1000 : NaN,
      gpuPeakBytes: ledger.peak,
      graphCapture: false,
      finite: finite && loopStart > 0,
      unetNodes: unetGraph.stats.nodes,
      unetOps: unetGraph.stats.opCounts,
    };
  } finally {
    await pipeline.release();
  }
}
