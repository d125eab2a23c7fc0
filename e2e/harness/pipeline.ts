/**
 * Browser side: the real SdxlPipeline (workers/pipeline/sdxl-pipeline.ts) on onnxruntime-web's WebGPU EP,
 * fp32, with a fixture repo fetched from the mock hub. Used by the e2e pipeline assertion and by
 * e2e/bench-browser.ts.
 */
import { modelFilesFromMap } from '../../workers/hub/model-files';
import { BlobRegistry } from '../../workers/pipeline/ort-backend';
import { encodePng } from '../../workers/pipeline/png';
import { openSdxlModel } from '../../workers/pipeline/sdxl-model';
import { SdxlPipeline } from '../../workers/pipeline/sdxl-pipeline';
import { ortDevice } from '../../workers/runtime/ort';
import { createWebgpuBackend } from '../../workers/runtime/webgpu-backend';
import { fetchRepoFiles } from './hub-files';

export interface PipelineRunOptions {
  hub: string;
  repo: string;
  width: number;
  height: number;
  steps: number;
  guidance: number;
  runs: number;
  prompt?: string;
  negativePrompt?: string;
  /** Ask for a latent preview every N steps (each one is a GPU->CPU read). */
  previewEvery?: number;
}

export interface PipelineRun {
  /**
   * Seconds per phase, PipelineResult.timings (encode, build, step1..N, denoise, decode, total) plus png; total
   * includes png. Those are CPU-side: a step's time is its submission (nothing waits for the GPU until a
   * preview or the decoded image is read back). Added from the GPUDevice's queue: gpu_stepN (seconds between the
   * GPU finishing step N-1's and step N's work) and gpu_denoise (denoise start to the GPU finishing the last step).
   */
  timings: Record<string, number>;
  readbacks: number;
  /** Steps at which a preview arrived. */
  previews: number[];
  /** Mean of the image's RGB bytes (a sanity figure: the image is not blank or NaN). */
  meanRgb: number;
  pngBytes: number;
}

export interface PipelineBench {
  adapter: string;
  backend: 'webgpu';
  precision: 'fp32';
  /** Seconds: fetching the repo and opening it (configs, tokenizers, safetensors headers). */
  openSeconds: number;
  /** Seconds: building every graph and creating every session (SdxlPipeline.prepare). */
  prepareSeconds: number;
  runs: PipelineRun[];
}

async function adapterName(): Promise<string> {
  const a = await navigator.gpu?.requestAdapter();
  if (!a) return 'none';
  const i = a.info;
  return [i.vendor, i.architecture, i.description].filter(Boolean).join(' / ') || 'unknown adapter';
}

export async function runPipeline(o: PipelineRunOptions): Promise<PipelineBench> {
  const now = () => performance.now() / 1000;
  const t0 = now();
  const blobs = new BlobRegistry();
  const model = await openSdxlModel(await modelFilesFromMap(o.repo, await fetchRepoFiles(o.hub, o.repo)), blobs);
  const openSeconds = now() - t0;
  const backend = createWebgpuBackend(blobs);
  const pipe = new SdxlPipeline(model, backend, { precision: 'fp32' });
  const runs: PipelineRun[] = [];
  let prepareSeconds = 0;
  try {
    const t1 = now();
    await pipe.prepare(1, o.width, o.height, o.guidance > 1);
    prepareSeconds = now() - t1;
    const device = await ortDevice().catch(() => undefined);
    for (let r = 0; r < o.runs; r++) {
      const previews: number[] = [];
      const gpuDone: Promise<[number, number]>[] = [];
      let tDenoise = 0;
      const res = await pipe.generate({
        onPhase: (phase) => {
          if (phase === 'denoise') tDenoise = now();
        },
        onStep: device?.queue ? (st) => gpuDone.push(device.queue.onSubmittedWorkDone().then(() => [st.step, now()])) : undefined,
        prompts: [o.prompt ?? 'a koala bear eating eucalyptus leaves, watercolor'],
        negativePrompts: o.negativePrompt === undefined ? undefined : [o.negativePrompt],
        promptStyle: 'plain',
        numImagesPerPrompt: 1,
        steps: o.steps,
        guidance: o.guidance,
        scheduler: 'euler',
        width: o.width,
        height: o.height,
        seed: r,
        previewEvery: o.previewEvery,
        onPreview: o.previewEvery ? (p) => previews.push(p.step) : undefined,
      });
      const img = res.images[0]!;
      const tp = now();
      const png = await encodePng(img.rgba, img.width, img.height, { text: { parameters: 'bench' } });
      const pngSeconds = now() - tp;
      let sum = 0;
      for (let p = 0; p < img.width * img.height; p++) sum += img.rgba[p * 4]! + img.rgba[p * 4 + 1]! + img.rgba[p * 4 + 2]!;
      const gpu: Record<string, number> = {};
      const done = (await Promise.all(gpuDone)).sort((a, b) => a[0] - b[0]);
      for (const [k, [step, t]] of done.entries()) gpu[`gpu_step${step}`] = t - (k === 0 ? tDenoise : done[k - 1]![1]);
      if (done.length && tDenoise) gpu['gpu_denoise'] = done[done.length - 1]![1] - tDenoise;
      runs.push({
        timings: { ...res.timings, ...gpu, png: pngSeconds, total: (res.timings['total'] ?? 0) + pngSeconds },
        readbacks: res.readbacks,
        previews,
        meanRgb: sum / (3 * img.width * img.height),
        pngBytes: png.byteLength,
      });
    }
  } finally {
    await pipe.release();
  }
  return { adapter: await adapterName(), backend: 'webgpu', precision: 'fp32', openSeconds, prepareSeconds, runs };
}
