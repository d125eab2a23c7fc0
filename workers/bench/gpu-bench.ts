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
 * - compute dispatches, queue submits, bind groups and GPU→CPU readbacks per step (steps 2…N); session creation
 *   per component; encode and VAE decode time; peak GPU bytes (every buffer counted: runtime/gpu-ledger.ts);
 * - graph capture (`graphCapture`: 'off', 'on' or 'both'): with 'both' the N steps run twice in one run, first
 *   plain, then replaying the captured U-Net (PipelineOptions.graphCapture) and the VAE decode, and the
 *   result gives both medians and their ratio; the headline figures are the faster loop's.
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
  /** The denoising loop without, with, or (default) both without and with graph capture. */
  graphCapture?: 'off' | 'on' | 'both';
  /** Skip the VAE decode (vaeMs NaN): loops only. */
  noDecode?: boolean;
  /** Fused kernels: chosen by the adapter self-test as the app does (default), none, or a loop without them first. */
  fused?: 'auto' | 'off' | 'both';
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
  /** Bind groups created per step: onnxruntime makes one per kernel launch; a replayed U-Net makes none. */
  bindGroupsPerStep: number;
  readbacksPerStep: number;
  sessionCreateMs: number;
  sessions: { label: string; ms: number }[];
  encodeMs: number;
  vaeMs: number;
  gpuPeakBytes: number;
  /** The fused-kernel self-test's verdicts (runtime/fused-ops-probe.ts), or 'off'. */
  fusedOps: Record<string, string> | 'off';
  /** Whether the headline figures (msPerStep, tflops, per-step counts) come from the captured loop. */
  graphCapture: boolean;
  /** Both loops in one run (graphCapture 'both'): median ms per step and counts, and plain / captured. */
  capture?: { off: LoopStats; on: LoopStats; speedup: number };
  /** With fused 'both': the plain loop without and with the fused kernels, and without / with. */
  fusedCut?: { off: LoopStats; on: LoopStats; speedup: number; dispatchCut: number };
  finite: boolean;
  /** The U-Net graph as built (before onnxruntime's own fusions): nodes by op type, where dispatches come from. */
  unetNodes: number;
  unetOps: Record<string, number>;
}

/** One denoising loop's figures (steps 2…N). */
export interface LoopStats {
  msPerStep: number;
  stepMs: number[];
  dispatchesPerStep: number;
  submitsPerStep: number;
  bindGroupsPerStep: number;
  readbacksPerStep: number;
  /** Peak GPU bytes during the loop (every live buffer, weights included). */
  peakBytes: number;
}

const ratio = (off: LoopStats, on: LoopStats) => ({ off, on, speedup: off.msPerStep / on.msPerStep });

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
  const { probeFusedOpsWebgpu } = await import('../runtime/fused-ops-webgpu');
  const { fusedProbeShapes } = await import('../pipeline/sdxl-pipeline');
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
  const compute = o.precision === 'fp16' ? 'float16' : 'float32';
  const fused = o.fused === 'off' ? undefined : await probeFusedOpsWebgpu(compute, fusedProbeShapes(model.unet.weights));
  const pipeline = new SdxlPipeline(model, backend, { precision: o.precision, maxBindingBytes: limits.maxStorageBufferBindingSize, fused: fused?.ops });
  const h = o.size / 8;
  const unetGraph = buildUnetGraph(model.unet.config, model.unet.weights, { batch: 2, height: h, width: h, compute, maxBindingBytes: limits.maxStorageBufferBindingSize, fused: fused?.ops });
  const flops = unetGraph.report.flops;
  try {
    const t0 = performance.now();
    const captures = o.graphCapture === 'on' ? [true] : o.graphCapture === 'off' ? [false] : [false, true];
    // fused 'both': first a plain loop without the fused kernels (the before of the dispatch cut)
    const plans = [...(o.fused === 'both' ? [{ capture: false, fused: false }] : []), ...captures.map((capture) => ({ capture, fused: o.fused !== 'off' }))];
    const modes = plans.map((p) => p.capture);
    pipeline.setGraphCapture(modes[0]!);
    if (!plans[0]!.fused) pipeline.setFused(undefined);
    await pipeline.prepare(1, o.size, o.size, true, false, o.signal);
    const sessionCreateMs = performance.now() - t0;
    const device = await ortDevice();
    let encodeMs = NaN;
    let vaeMs = NaN;
    let finite = true;
    const loops: LoopStats[] = [];
    for (const [k, capture] of modes.entries()) {
      pipeline.setGraphCapture(capture);
      if (k > 0 && plans[k]!.fused !== plans[k - 1]!.fused) pipeline.setFused(plans[k]!.fused ? fused?.ops : undefined);
      const label = modes.length > 1 ? `${capture ? ' (graph capture' : ' (plain'}${o.fused === 'both' ? (plans[k]!.fused ? ', fused kernels)' : ', no fused kernels)') : ')'}` : '';
      const marks: { gpuDone: Promise<number>; dispatches: number; submits: number; groups: number; readbacks: number }[] = [];
      const mark = () =>
        marks.push({ gpuDone: device.queue.onSubmittedWorkDone().then(() => performance.now()), dispatches: ledger.dispatches, submits: ledger.submits, groups: ledger.bindGroups, readbacks: backend.readbacks });
      let looped = false;
      const last = k === modes.length - 1;
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
        // one VAE decode per run, after the last loop (a full-size decode before a session switch has exhausted
        // SwiftShader's memory in Chromium)
        skipDecode: !last || !!o.noDecode,
        signal: o.signal,
        onPhase: (phase) => {
          if (phase === 'denoise') {
            looped = true;
            ledger.mark(`denoise${label}`);
            mark();
          } else if (phase === 'decode') ledger.mark('decode');
        },
        onStep: (st) => {
          mark();
          progress('steps', st.step, st.total, `Step ${st.step} of ${st.total}${label}`);
        },
      });
      const done = await Promise.all(marks.map((m) => m.gpuDone));
      const stepMs = done.slice(1).map((t, i) => t - done[i]!);
      const first = marks[1]!;
      const end = marks.at(-1)!;
      const n = marks.length - 2;
      const phase = ledger.report().findLast((p) => p.phase === `denoise${label}`);
      loops.push({
        peakBytes: phase?.peakBytes ?? NaN,
        msPerStep: median(stepMs.slice(1)),
        stepMs,
        dispatchesPerStep: (end.dispatches - first.dispatches) / n,
        submitsPerStep: (end.submits - first.submits) / n,
        bindGroupsPerStep: (end.groups - first.groups) / n,
        readbacksPerStep: (end.readbacks - first.readbacks) / n,
      });
      if (k === 0) encodeMs = (result.timings['encode'] ?? 0) * 1000;
      if (last && !o.noDecode) {
        vaeMs = (result.timings['decode'] ?? NaN) * 1000;
        for (const v of result.images[0]?.rgba ?? []) if (!Number.isFinite(v)) finite = false;
      }
      finite &&= looped;
      if (!last) progress('steps', 0, o.steps, `Again${plans[k + 1]!.capture ? ', replaying the captured U-Net' : ', with the fused kernels'}`);
    }
    // the headline: the faster of the loops the app could run (with the fused kernels unless 'off')
    const candidates = loops.filter((_, i) => plans[i]!.fused === (o.fused !== 'off'));
    const best = candidates.reduce((a, b) => (b.msPerStep < a.msPerStep ? b : a));
    const bestCaptured = modes[loops.indexOf(best)]!;
    const at = (capture: boolean, f: boolean) => loops[plans.findIndex((p) => p.capture === capture && p.fused === f)];
    const compileLoop = loops[0]!;
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
      msPerStep: best.msPerStep,
      stepMs: best.stepMs,
      shaderCompileMs: Math.max(0, compileLoop.stepMs[0]! - compileLoop.msPerStep),
      unetTflopPerImage: flops / 2 / 1e12,
      tflops: flops / (best.msPerStep / 1000) / 1e12,
      dispatchesPerStep: best.dispatchesPerStep,
      submitsPerStep: best.submitsPerStep,
      bindGroupsPerStep: best.bindGroupsPerStep,
      readbacksPerStep: best.readbacksPerStep,
      sessionCreateMs,
      sessions,
      encodeMs,
      vaeMs,
      gpuPeakBytes: ledger.peak,
      fusedOps: fused ? { ...fused.report, selfTestMs: fused.ms.toFixed(0) } : 'off',
      graphCapture: bestCaptured,
      capture: captures.length === 2 ? ratio(at(false, o.fused !== 'off')!, at(true, o.fused !== 'off')!) : undefined,
      fusedCut: o.fused === 'both' ? { ...ratio(at(false, false)!, at(false, true)!), dispatchCut: 1 - at(false, true)!.dispatchesPerStep / at(false, false)!.dispatchesPerStep } : undefined,
      finite,
      unetNodes: unetGraph.stats.nodes,
      unetOps: unetGraph.stats.opCounts,
    };
  } finally {
    await pipeline.release();
  }
}
