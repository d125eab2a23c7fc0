/**
 * Browser side of `bench:fullsize --browser` (scripts/bench-fullsize-browser.ts): a full-size checkpoint put
 * into the page's own IndexedDB model cache by the engine's hub code, then, after a reload, opened from that
 * cache and run once through the page's SdxlPipeline on the page's WebGPU backend (createWebgpuBackend: strict
 * placement), in this document's main thread (the page runs the same code in its module worker).
 *
 * - `fillFullsizeCache`: `openModel()` (workers/hub/open.ts, the engine's one call: ensureModel into
 *   browserStore(), the IndexedDB store `koala-web-hub`) against a hub URL (the bench's local mock hub):
 *   resolve, sha256-verified chunked download, manifest. Write MB/s = bytes stored / wall time (network from
 *   loopback + hashing + IndexedDB writes: what a user's download costs beyond the network).
 * - `runFullsizeCached`: `openModel(..., { offline: true })` (the hub is not contacted), every cached file read
 *   back as a stream (read MB/s of the ModelFiles Blobs), openSdxlModel, SdxlPipeline.prepare (one timed entry
 *   per session), one generation (CFG, N Euler steps) with the decoded image read back.
 *   Memory: GPU bytes from runtime/gpu-ledger.ts (every buffer ORT creates on its device), JS heap from
 *   `performance.memory.usedJSHeapSize` of this document (sampled every 250 ms when the thread is free and at
 *   every phase change). Progress goes to the console as `[fullsize] ...` lines.
 */
import { browserStore, openModel } from '../../workers/hub/open';
import { BlobRegistry } from '../../workers/pipeline/ort-backend';
import { openSdxlModel } from '../../workers/pipeline/sdxl-model';
import { SdxlPipeline } from '../../workers/pipeline/sdxl-pipeline';
import { GpuLedger } from '../../workers/runtime/gpu-ledger';
import { ortDevice } from '../../workers/runtime/ort';
import { createWebgpuBackend } from '../../workers/runtime/webgpu-backend';

export interface FullsizeSource {
  hub: string;
  repo: string;
  /** 'fp16' = the `*.fp16.safetensors` files; null = the fp32 files. */
  variant: 'fp16' | null;
}

export interface FillResult {
  commit: string;
  files: { path: string; bytes: number }[];
  bytes: number;
  seconds: number;
  writeMBps: number;
  /** navigator.storage.estimate() after the fill. */
  usage: number;
  quota: number;
  persisted: boolean;
}

const log = (line: string) => console.log(`[fullsize] ${line}`);
const now = () => performance.now() / 1000;
const MB = (b: number) => (b / 1e6).toFixed(0);

function heapNow(): number {
  return (performance as Performance & { memory?: { usedJSHeapSize: number } }).memory?.usedJSHeapSize ?? 0;
}

export async function fillFullsizeCache(o: FullsizeSource): Promise<FillResult> {
  const t0 = now();
  let lastLog = 0;
  const files = await openModel({ repo: o.repo, hubUrl: o.hub, variant: o.variant ?? undefined }, undefined, {
    onProgress: (p) => {
      if (p.phase !== 'download' || !p.bytesTotal) return;
      const t = now();
      if (t - lastLog < 15 && p.bytesDone < p.bytesTotal) return;
      lastLog = t;
      log(
        `cache fill: ${MB(p.bytesDone)} / ${MB(p.bytesTotal)} MB (${((100 * p.bytesDone) / p.bytesTotal).toFixed(0)} %), ${(p.rate / 1e6).toFixed(0)} MB/s now, ${(t - t0).toFixed(0)} s`,
      );
    },
  });
  const seconds = now() - t0;
  const list = files.paths.map((path) => ({ path, bytes: files.size(path) ?? 0 }));
  const bytes = list.reduce((s, f) => s + f.bytes, 0);
  const est = await navigator.storage.estimate();
  const persisted = await navigator.storage.persisted().catch(() => false);
  log(`cache fill done: ${list.length} files, ${MB(bytes)} MB in ${seconds.toFixed(1)} s (${(bytes / 1e6 / seconds).toFixed(1)} MB/s)`);
  return {
    commit: files.commit ?? '',
    files: list,
    bytes,
    seconds,
    writeMBps: bytes / 1e6 / seconds,
    usage: est.usage ?? 0,
    quota: est.quota ?? 0,
    persisted,
  };
}

export interface CachedRunOptions extends FullsizeSource {
  size: number;
  steps: number;
  guidance: number;
  precision: 'fp32' | 'fp16';
}

export interface PhaseFigure {
  phase: string;
  seconds: number;
  /** Live GPU bytes at the end of the phase and the highest during it (runtime/gpu-ledger.ts). */
  gpuEndBytes: number;
  gpuPeakBytes: number;
  /**
   * Highest performance.memory.usedJSHeapSize seen during the phase (this document). In Chromium it counts
   * ArrayBuffer memory too: it rises by each session's weight bytes while ORT holds the external-data parts.
   */
  jsHeapPeakBytes: number;
}

export interface CachedRun {
  adapter: string;
  shaderF16: boolean;
  limits: { maxBufferSize: number; maxStorageBufferBindingSize: number };
  crossOriginIsolated: boolean;
  open: { seconds: number; commit: string; files: number; bytes: number };
  read: { bytes: number; seconds: number; MBps: number; files: { path: string; bytes: number; seconds: number }[] };
  /** Weight files the pipeline opened, per component. */
  weights: Record<string, { path: string; bytes: number }[]>;
  /**
   * Per session: ORT session creation (weights read from the cache, Casts folded, upload; the graph was built
   * before), the weight bytes its external data covers in the files, the GPU bytes it added and the total after.
   */
  sessions: { label: string; seconds: number; weightBytes: number; gpuBytesAdded: number; gpuBytesAfter: number }[];
  prepareSeconds: number;
  phases: PhaseFigure[];
  /** PipelineResult.timings (seconds): encode, build, step1.., denoise, decode, total. */
  timings: Record<string, number>;
  /** Seconds between the GPU finishing the previous step's work (or the loop start) and this step's. */
  gpuStepSeconds: number[];
  readbacks: number;
  readbacksInLoop: number;
  gpuPeakBytes: number;
  jsHeapPeakBytes: number;
  image: { width: number; height: number; meanRgb: number; finite: boolean; latentsAbsMax: number };
}

async function adapterInfo(): Promise<{ name: string; shaderF16: boolean; limits: CachedRun['limits'] }> {
  const a = await navigator.gpu?.requestAdapter();
  if (!a)
    throw new Error(
      'navigator.gpu.requestAdapter() returned no adapter (is Chromium started with --enable-unsafe-webgpu --use-webgpu-adapter=swiftshader?)',
    );
  const i = a.info;
  return {
    name: [i.vendor, i.architecture, i.description].filter(Boolean).join(' / ') || 'unknown adapter',
    shaderF16: a.features.has('shader-f16'),
    limits: { maxBufferSize: a.limits.maxBufferSize, maxStorageBufferBindingSize: a.limits.maxStorageBufferBindingSize },
  };
}

export async function runFullsizeCached(o: CachedRunOptions): Promise<CachedRun> {
  // before onnxruntime-web asks for its device: every buffer of its device is counted
  const ledger = new GpuLedger();
  ledger.instrumentGpu(navigator.gpu);
  const adapter = await adapterInfo();
  log(
    `adapter ${adapter.name}; shader-f16 ${adapter.shaderF16}; maxBufferSize ${adapter.limits.maxBufferSize}; maxStorageBufferBindingSize ${adapter.limits.maxStorageBufferBindingSize}`,
  );
  if (o.precision === 'fp16' && !adapter.shaderF16) throw new Error(`precision fp16 needs shader-f16, which ${adapter.name} lacks`);

  let heapPeak = heapNow();
  let heapPeakAll = heapPeak;
  const sampleHeap = () => {
    const h = heapNow();
    if (h > heapPeak) heapPeak = h;
    if (h > heapPeakAll) heapPeakAll = h;
  };
  const timer = setInterval(sampleHeap, 250);
  const phases: PhaseFigure[] = [];
  let phaseName = 'open (IndexedDB)';
  let phaseStart = now();
  ledger.mark(phaseName);
  const mark = (next: string) => {
    sampleHeap();
    const gpu = ledger.report().at(-1)!;
    const f: PhaseFigure = {
      phase: phaseName,
      seconds: now() - phaseStart,
      gpuEndBytes: gpu.endBytes,
      gpuPeakBytes: gpu.peakBytes,
      jsHeapPeakBytes: heapPeak,
    };
    phases.push(f);
    log(
      `${f.phase}: ${f.seconds.toFixed(1)} s, GPU ${(f.gpuEndBytes / 2 ** 30).toFixed(2)} GiB (peak ${(f.gpuPeakBytes / 2 ** 30).toFixed(2)}), JS heap peak ${(f.jsHeapPeakBytes / 2 ** 20).toFixed(0)} MiB`,
    );
    heapPeak = heapNow();
    ledger.mark(next);
    phaseName = next;
    phaseStart = now();
  };

  let pipeline: SdxlPipeline | undefined;
  try {
    // ---- open from the cache: offline, so a missing or incomplete cache fails instead of downloading
    const t0 = now();
    const files = await openModel({ repo: o.repo, hubUrl: o.hub, variant: o.variant ?? undefined }, undefined, {
      offline: true,
      store: browserStore(),
    });
    const sizes = files.paths.map((p) => files.size(p) ?? 0);
    const open = { seconds: now() - t0, commit: files.commit ?? '', files: files.paths.length, bytes: sizes.reduce((a, b) => a + b, 0) };
    mark('read cache (stream every file)');

    // ---- read throughput: every file's Blob (IndexedDB chunk Blobs joined) streamed to the end
    const readFiles: CachedRun['read']['files'] = [];
    const tr = now();
    for (const path of files.paths) {
      const t = now();
      const blob = await files.get(path);
      const reader = blob.stream().getReader();
      let n = 0;
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        n += value.byteLength;
      }
      if (n !== blob.size) throw new Error(`${path}: read ${n} bytes back from IndexedDB, the Blob says ${blob.size}`);
      readFiles.push({ path, bytes: n, seconds: now() - t });
      if (n > 1e8) log(`read ${path}: ${MB(n)} MB in ${(now() - t).toFixed(1)} s`);
    }
    const readBytes = readFiles.reduce((s, f) => s + f.bytes, 0);
    const readSeconds = now() - tr;
    const read = { bytes: readBytes, seconds: readSeconds, MBps: readBytes / 1e6 / readSeconds, files: readFiles };
    log(`cache read: ${MB(readBytes)} MB in ${readSeconds.toFixed(1)} s (${read.MBps.toFixed(1)} MB/s)`);
    mark('open model (configs, tokenizers, headers)');

    const blobs = new BlobRegistry();
    const model = await openSdxlModel(files, blobs);
    const weights = Object.fromEntries(
      Object.entries(files.weights).map(([c, ps]) => [c, ps.map((p) => ({ path: p, bytes: files.size(p) ?? 0 }))]),
    );

    // ---- sessions: the page's backend, one timed entry per session
    const backend = createWebgpuBackend(blobs);
    const create = backend.createSession.bind(backend);
    const sessions: CachedRun['sessions'] = [];
    let preparing = true;
    backend.createSession = async (graph, opts) => {
      if (!preparing) return create(graph, opts);
      mark(`session ${opts.label}`);
      const t = now();
      const weightBytes = graph.externalData.reduce((n, r) => n + r.end - r.begin, 0);
      const before = ledger.live;
      log(`creating session ${opts.label} (${graph.externalData.length} external-data parts, ${MB(weightBytes)} MB of weights)`);
      const s = await create(graph, opts);
      sessions.push({
        label: opts.label,
        seconds: now() - t,
        weightBytes,
        gpuBytesAdded: ledger.live - before,
        gpuBytesAfter: ledger.live,
      });
      return s;
    };
    pipeline = new SdxlPipeline(model, backend, { precision: o.precision, maxBindingBytes: adapter.limits.maxStorageBufferBindingSize });
    const tp = now();
    await pipeline.prepare(1, o.size, o.size, o.guidance > 1, false);
    const prepareSeconds = now() - tp;
    preparing = false;
    if (!ledger.created) throw new Error('the GPU ledger saw no buffer: onnxruntime-web did not use the instrumented navigator.gpu');
    const device = await ortDevice();

    // ---- one generation
    mark('encode');
    const gpuDone: Promise<[number, number]>[] = [];
    let readbacksAtLoop = 0;
    let readbacksInLoop = 0;
    const result = await pipeline.generate({
      prompts: ['a koala sitting in a eucalyptus tree, photo'],
      negativePrompts: ['blurry'],
      numImagesPerPrompt: 1,
      steps: o.steps,
      guidance: o.guidance,
      scheduler: 'euler',
      width: o.size,
      height: o.size,
      seed: 42,
      dump: true,
      onPhase: (phase) => {
        if (phase === 'denoise') {
          mark(o.steps === 1 ? 'denoise step (incl. shader compilation)' : 'step 1 (incl. shader compilation)');
          readbacksAtLoop = backend.readbacks;
          gpuDone.push(Promise.resolve([0, now()]));
        } else if (phase === 'decode') {
          mark('vae decode + readback');
        }
      },
      onStep: (st) => {
        gpuDone.push(device.queue.onSubmittedWorkDone().then((): [number, number] => [st.step, now()]));
        if (st.step === st.total) readbacksInLoop = backend.readbacks - readbacksAtLoop;
        log(`step ${st.step}/${st.total} submitted`);
        if (st.step === 1 && o.steps > 1) mark('steady steps');
      },
    });
    mark('done');
    const done = (await Promise.all(gpuDone)).sort((a, b) => a[0] - b[0]);
    const gpuStepSeconds = done.slice(1).map(([, t], i) => t - done[i]![1]);
    const img = result.images[0]!;
    let sum = 0;
    for (let p = 0; p < img.width * img.height; p++) sum += img.rgba[p * 4]! + img.rgba[p * 4 + 1]! + img.rgba[p * 4 + 2]!;
    const lat = result.dump!['latents']!.data;
    const finite = ['latents', 'image'].every((k) => result.dump![k]!.data.every((v) => Number.isFinite(v)));
    let latentsAbsMax = 0;
    for (const v of lat) latentsAbsMax = Math.max(latentsAbsMax, Math.abs(v));
    clearInterval(timer);
    const all = ledger.report();
    return {
      adapter: adapter.name,
      shaderF16: adapter.shaderF16,
      limits: adapter.limits,
      crossOriginIsolated: globalThis.crossOriginIsolated === true,
      open,
      read,
      weights,
      sessions,
      prepareSeconds,
      phases,
      timings: result.timings,
      gpuStepSeconds,
      readbacks: result.readbacks,
      readbacksInLoop,
      gpuPeakBytes: Math.max(...all.map((p) => p.peakBytes)),
      jsHeapPeakBytes: heapPeakAll,
      image: { width: img.width, height: img.height, meanRgb: sum / (3 * img.width * img.height), finite, latentsAbsMax },
    };
  } catch (e) {
    const err = e as Error;
    // name the phase: the message crosses to Node as text
    throw new Error(
      `during "${phaseName}" (${(now() - phaseStart).toFixed(0)} s in, GPU ${(ledger.live / 2 ** 30).toFixed(2)} GiB live): ${err?.message ?? String(e)}`,
      { cause: e },
    );
  } finally {
    clearInterval(timer);
    await pipeline?.release().catch(() => undefined);
  }
}
