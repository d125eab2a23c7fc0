/**
 * One full-size generation measured, through the app's own engine code: a seeded random-weight checkpoint
 * (scripts/fullsize/checkpoint.ts) opened like any diffusers folder, the page's SdxlPipeline on the page's
 * WebGPU backend (runtime/webgpu-backend.ts: every session under the strict placement check), in Node over
 * Dawn (Mesa lavapipe on a machine without a GPU). Used by `bench:fullsize` and `bench:memory`.
 *
 * Measured per phase — session creation of each component (weights read + upload), encode, the first CFG
 * step (includes shader compilation), the steady steps, the VAE decode: wall time, GPU time (queue
 * completion), peak GPU bytes (every createBuffer/destroy counted by runtime/gpu-ledger.ts), peak JS heap,
 * peak external + ArrayBuffer memory and peak process RSS (sampled every 50 ms and at every phase change).
 */
import { readFileSync } from 'node:fs';
import { setupNodeWebGpu } from '../../test/webgpu-node';
import { localRepoFromDir } from '../../workers/hub/node.node.js';
import { GpuLedger } from '../../workers/runtime/gpu-ledger';
import { writeRandomCheckpoint, type FullsizeModel } from '../fullsize/checkpoint';

export interface PhaseFigures {
  phase: string;
  seconds: number;
  gpuPeakBytes: number;
  gpuEndBytes: number;
  jsHeapPeakBytes: number;
  externalPeakBytes: number;
  rssPeakBytes: number;
}

export interface FullsizeRun {
  model: string;
  adapter: string;
  limits: { maxBufferSize: number; maxStorageBufferBindingSize: number };
  shaderF16: boolean;
  precision: 'fp16' | 'fp32';
  size: number;
  steps: number;
  checkpoint: { dir: string; bytesWritten: number; seconds: number };
  phases: PhaseFigures[];
  timings: Record<string, number>;
  /** Seconds between the GPU finishing step N-1 and step N (queue.onSubmittedWorkDone). */
  gpuStepSeconds: number[];
  /** GPU→CPU reads of the whole call (includes the --dump reads the NaN check needs). */
  readbacks: number;
  /** GPU→CPU reads between the first step and the decode: 0 when the loop stays on the GPU. */
  readbacksInLoop: number;
  gpuPeakBytes: number;
  rssPeakBytes: number;
  jsHeapPeakBytes: number;
  image: { meanRgb: number; finite: boolean };
}

export interface FullsizeRunOptions {
  model: FullsizeModel;
  /** Where the random checkpoint is (written when missing). */
  dir: string;
  /** Use `dir` as it is (any diffusers folder, e.g. a tiny fixture): nothing is written. */
  existing?: boolean;
  size: number;
  steps: number;
  seed?: number;
  precision?: 'fp16' | 'fp32';
  log?(line: string): void;
}

/** Peaks of process memory between marks. */
class MemorySampler {
  private peak = { heap: 0, external: 0, rss: 0 };
  private timer: ReturnType<typeof setInterval>;
  constructor() {
    this.timer = setInterval(() => this.sample(), 50);
  }
  sample() {
    const m = process.memoryUsage();
    this.peak.heap = Math.max(this.peak.heap, m.heapUsed);
    this.peak.external = Math.max(this.peak.external, m.external + m.arrayBuffers);
    this.peak.rss = Math.max(this.peak.rss, m.rss);
  }
  /** The peaks since the last take(); starts the next window from the current values. */
  take() {
    this.sample();
    const p = this.peak;
    const m = process.memoryUsage();
    this.peak = { heap: m.heapUsed, external: m.external + m.arrayBuffers, rss: m.rss };
    return p;
  }
  stop() {
    clearInterval(this.timer);
  }
}

export async function runFullsize(o: FullsizeRunOptions): Promise<FullsizeRun> {
  const log = o.log ?? (() => undefined);
  const precision = o.precision ?? 'fp16';
  const webgpu = await setupNodeWebGpu();
  if (!webgpu.adapter) throw new Error(`no WebGPU adapter: ${webgpu.reason}`);
  if (precision === 'fp16' && !webgpu.shaderF16) throw new Error(`adapter ${webgpu.adapterName} has no shader-f16`);
  const ledger = new GpuLedger();
  ledger.instrumentGpu(navigator.gpu);
  // only now: onnxruntime-web must see the instrumented navigator.gpu when it starts its WebGPU backend
  const { createWebgpuBackend } = await import('../../workers/runtime/webgpu-backend');
  const { BlobRegistry } = await import('../../workers/pipeline/ort-backend');
  const { openSdxlModel } = await import('../../workers/pipeline/sdxl-model');
  const { SdxlPipeline } = await import('../../workers/pipeline/sdxl-pipeline');
  const { ortDevice } = await import('../../workers/runtime/ort');

  log(
    `adapter ${webgpu.adapterName}; shader-f16 ${webgpu.shaderF16}; maxBufferSize ${webgpu.adapter.limits.maxBufferSize}; maxStorageBufferBindingSize ${webgpu.adapter.limits.maxStorageBufferBindingSize}`,
  );
  const variant = precision === 'fp16' ? 'fp16' : 'fp32';
  const ckpt = o.existing
    ? { dir: o.dir, bytesWritten: 0, seconds: 0 }
    : writeRandomCheckpoint({ out: o.dir, model: o.model, seed: o.seed ?? 1, variants: [variant], log });
  log(`checkpoint ${ckpt.dir}: ${ckpt.bytesWritten ? `written in ${ckpt.seconds.toFixed(1)} s` : 'already there'}`);

  const mem = new MemorySampler();
  const phases: PhaseFigures[] = [];
  let phaseName = 'open';
  let phaseStart = performance.now();
  const mark = (next: string) => {
    const m = mem.take();
    const gpu = ledger.report().at(-1)!;
    phases.push({
      phase: phaseName,
      seconds: (performance.now() - phaseStart) / 1000,
      gpuPeakBytes: gpu.peakBytes,
      gpuEndBytes: gpu.endBytes,
      jsHeapPeakBytes: m.heap,
      externalPeakBytes: m.external,
      rssPeakBytes: m.rss,
    });
    log(
      `${phaseName}: ${phases.at(-1)!.seconds.toFixed(1)} s, GPU peak ${(gpu.peakBytes / 2 ** 30).toFixed(2)} GiB, RSS peak ${(m.rss / 2 ** 30).toFixed(2)} GiB`,
    );
    ledger.mark(next);
    phaseName = next;
    phaseStart = performance.now();
  };
  ledger.mark('open');

  const blobs = new BlobRegistry();
  const files = await localRepoFromDir(ckpt.dir, { variant: variant === 'fp16' ? 'fp16' : null });
  const model = await openSdxlModel(files, blobs);
  const backend = createWebgpuBackend(blobs);
  // one phase per session: weights read from disk, uploaded, shaders of the graph prepared
  const create = backend.createSession.bind(backend);
  let preparing = true;
  backend.createSession = async (graph, opts) => {
    if (preparing) mark(`session ${opts.label}`);
    return create(graph, opts);
  };
  const pipeline = new SdxlPipeline(model, backend, { precision, maxBindingBytes: webgpu.adapter.limits.maxStorageBufferBindingSize });
  let device: GPUDevice | undefined;
  const gpuDone: Promise<[number, number]>[] = [];
  const now = () => performance.now() / 1000;
  try {
    await pipeline.prepare(1, o.size, o.size, true, false);
    preparing = false;
    device = await ortDevice();
    if (!ledger.created) throw new Error('the GPU ledger saw no buffer: onnxruntime-web did not use the instrumented navigator.gpu');
    mark('encode');
    let loopStart = 0;
    let readbacksAtLoop = 0;
    let readbacksInLoop = 0;
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
      dump: true,
      onPhase: (phase) => {
        if (phase === 'denoise') {
          mark('step 1');
          loopStart = now();
          readbacksAtLoop = backend.readbacks;
          gpuDone.push(Promise.resolve([0, loopStart]));
        } else if (phase === 'decode') {
          mark('vae decode');
        }
      },
      onStep: (st) => {
        const t = device!.queue.onSubmittedWorkDone().then((): [number, number] => [st.step, now()]);
        gpuDone.push(t);
        if (st.step === st.total) readbacksInLoop = backend.readbacks - readbacksAtLoop;
        // GPU bytes are allocated when work is submitted, so the phase boundary is the CPU-side one
        if (st.step === 1 && o.steps > 1) mark('steady steps');
      },
    });
    mark('done');
    const done = await Promise.all(gpuDone);
    const gpuStepSeconds = done.slice(1).map(([, t], i) => t - done[i]![1]);
    let sum = 0;
    for (const px of result.images[0]!.rgba) sum += px;
    // NaN/Inf anywhere in the final latents or the decoded image (8-bit pixels would hide them)
    const finite = ['latents', 'image'].every((k) => result.dump![k]!.data.every((v) => Number.isFinite(v)));
    mem.stop();
    const all = ledger.report();
    return {
      model: o.existing ? o.dir : o.model,
      adapter: webgpu.adapterName,
      shaderF16: webgpu.shaderF16,
      precision,
      size: o.size,
      steps: o.steps,
      limits: {
        maxBufferSize: webgpu.adapter.limits.maxBufferSize,
        maxStorageBufferBindingSize: webgpu.adapter.limits.maxStorageBufferBindingSize,
      },
      checkpoint: { dir: ckpt.dir, bytesWritten: ckpt.bytesWritten, seconds: ckpt.seconds },
      phases,
      timings: result.timings,
      gpuStepSeconds,
      readbacks: result.readbacks,
      readbacksInLoop,
      gpuPeakBytes: Math.max(...all.map((p) => p.peakBytes)),
      rssPeakBytes: Math.max(...phases.map((p) => p.rssPeakBytes)),
      jsHeapPeakBytes: Math.max(...phases.map((p) => p.jsHeapPeakBytes)),
      image: { meanRgb: sum / result.images[0]!.rgba.length, finite },
    };
  } finally {
    mem.stop();
    await pipeline.release();
  }
}

/** VmHWM of this process (Linux), bytes; 0 elsewhere. */
export function processHighWater(): number {
  try {
    return Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? 0) * 1024;
  } catch {
    return 0;
  }
}
