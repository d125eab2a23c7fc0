/**
 * /bench.html: the GPU benchmark for anyone with a WebGPU GPU. Builds a seeded random full-size checkpoint in
 * the browser (nothing downloaded), runs N CFG denoising steps and one VAE decode with the app's own engine
 * in a worker (workers/bench/bench.worker.ts → gpu-bench.ts, the module `npm run bench:gpu` runs in Node),
 * and shows — and offers as JSON — ms per step, TFLOP/s, dispatches and readbacks per step, session and
 * shader times, the VAE time and peak GPU memory. Plain DOM: this page stays small and apart from the app.
 */
import type { BenchEvent, BenchModel, BenchRequest, GpuBenchResult } from '../../workers/bench/bench-protocol';
import { ortWasmBase } from '../ort-assets';
import { benchFiles } from './files';
import './bench.css';

const MODELS: { id: BenchModel; label: string }[] = [
  { id: 'koala-700m', label: 'KOALA-700M' },
  { id: 'koala-1b', label: 'KOALA-1B' },
  { id: 'sdxl-base', label: 'SDXL-base' },
];

const root = document.getElementById('bench')!;
root.innerHTML = `
  <h1>KOALA web · GPU benchmark</h1>
  <p class="lede">Runs full-size denoising steps on <em>your</em> GPU with the app's engine (onnxruntime-web, WebGPU).
  The weights are seeded random numbers made in this tab: nothing is downloaded, nothing leaves the page.
  Numbers are comparable across machines; images are noise.</p>
  <p id="adapter" class="muted">Checking WebGPU…</p>
  <form id="form" novalidate>
    <label>Model <select id="model">${MODELS.map((m) => `<option value="${m.id}">${m.label}</option>`).join('')}</select></label>
    <label>Size <select id="size"><option>512</option><option>768</option><option selected>1024</option><option>256</option></select></label>
    <label>Steps <input id="steps" type="number" min="2" max="50" value="5" /></label>
    <label>Precision <select id="precision"><option value="">auto</option><option value="fp16">fp16</option><option value="fp32">fp32</option></select></label>
    <button id="run" type="submit">Run benchmark</button>
    <button id="cancel" type="button" disabled>Cancel</button>
  </form>
  <progress id="progress" max="1" value="0" hidden></progress>
  <p id="status" role="status" aria-live="polite"></p>
  <section id="results" hidden>
    <h2>Results</h2>
    <table id="table"></table>
    <p><button id="download" type="button">Download JSON</button> <button id="copy" type="button">Copy JSON</button></p>
  </section>
  <p class="muted">Needs a GPU memory of roughly 6 GB for KOALA-700M at 1024² (fp16), 7 GB for KOALA-1B, 10 GB for SDXL-base; the
  tab also needs free memory for the U-Net's weights while they upload (1.6 / 2.3 / 5.1 GB). <a href="./">Back to the app</a></p>`;

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const status = $<HTMLParagraphElement>('status');
const progress = $<HTMLProgressElement>('progress');
let worker: Worker | undefined;
let last: GpuBenchResult | undefined;

async function showAdapter() {
  const gpu = navigator.gpu;
  const adapter = gpu ? await gpu.requestAdapter().catch(() => null) : null;
  const el = $<HTMLParagraphElement>('adapter');
  if (!adapter) {
    el.textContent = 'WebGPU is not available in this browser (or no GPU adapter): the benchmark cannot run.';
    $<HTMLButtonElement>('run').disabled = true;
    return;
  }
  const info = (adapter as GPUAdapter & { info?: GPUAdapterInfo }).info;
  const name = [info?.vendor, info?.architecture, info?.device, info?.description].filter(Boolean).join(' · ') || 'unknown adapter';
  el.textContent = `Adapter: ${name}; shader-f16 ${adapter.features.has('shader-f16') ? 'yes' : 'no (fp32)'}; max buffer ${(Number(adapter.limits.maxBufferSize) / 2 ** 20).toFixed(0)} MiB; max binding ${(Number(adapter.limits.maxStorageBufferBindingSize) / 2 ** 20).toFixed(0)} MiB`;
}

function rows(r: GpuBenchResult): [string, string][] {
  const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
  return [
    ['Adapter', `${r.adapter} (shader-f16 ${r.shaderF16 ? 'yes' : 'no'})`],
    ['Model · size · precision', `${r.model} · ${r.size}×${r.size} · ${r.precision} (fp16 weight files)`],
    ['Per CFG step', `${r.msPerStep.toFixed(1)} ms (median of steps 2–${r.steps}; each ${r.stepMs.map((m) => m.toFixed(0)).join(', ')} ms)`],
    ['Achieved', `${r.tflops.toFixed(2)} TFLOP/s (U-Net ${r.unetTflopPerImage.toFixed(2)} TFLOP per image, 2 per CFG step)`],
    [`${r.steps} steps at this rate`, s(r.msPerStep * r.steps)],
    ['Per step', `${r.dispatchesPerStep} dispatches, ${r.submitsPerStep} submits, ${r.bindGroupsPerStep} bind groups, ${r.readbacksPerStep} GPU→CPU readbacks`],
    ...(r.fusedCut
      ? ([['Fused kernels cut', `${r.fusedCut.off.dispatchesPerStep} → ${r.fusedCut.on.dispatchesPerStep} dispatches per step; ${r.fusedCut.speedup.toFixed(2)}×`]] as [string, string][])
      : []),
    ['Fused kernels (self-test)', r.fusedOps === 'off' ? 'off' : Object.entries(r.fusedOps).map(([k, v]) => `${k}: ${v}`).join('; ')],
    ['Shader compilation', `~${s(r.shaderCompileMs)} (first step minus the median)`],
    ['Session creation', `${s(r.sessionCreateMs)}: ${r.sessions.map((x) => `${x.label.split(':')[0]} ${s(x.ms)}`).join(', ')}`],
    ['Prompt encode · VAE decode', `${s(r.encodeMs)} · ${s(r.vaeMs)}`],
    ['Peak GPU memory', `${(r.gpuPeakBytes / 1e9).toFixed(2)} GB`],
    [
      'Graph capture',
      r.capture
        ? `${r.capture.speedup.toFixed(2)}× (plain ${r.capture.off.msPerStep.toFixed(1)} ms, captured ${r.capture.on.msPerStep.toFixed(1)} ms per step; figures above: ${r.graphCapture ? 'captured' : 'plain'})`
        : r.graphCapture ? 'on' : 'off',
    ],
  ];
}

function show(r: GpuBenchResult) {
  last = r;
  // for automation (npm run bench:gpu -- --browser): the result as JSON on the page
  document.body.dataset.benchResult = JSON.stringify(r);
  const table = $<HTMLTableElement>('table');
  table.replaceChildren(
    ...rows(r).map(([k, v]) => {
      const tr = document.createElement('tr');
      const th = document.createElement('th');
      th.textContent = k;
      const td = document.createElement('td');
      td.textContent = v;
      tr.append(th, td);
      return tr;
    }),
  );
  $<HTMLElement>('results').hidden = false;
}

function setRunning(on: boolean) {
  $<HTMLButtonElement>('run').disabled = on;
  $<HTMLButtonElement>('cancel').disabled = !on;
  progress.hidden = !on;
}

$<HTMLFormElement>('form').addEventListener('submit', (e) => {
  e.preventDefault();
  const model = $<HTMLSelectElement>('model').value as BenchModel;
  const steps = Number($<HTMLInputElement>('steps').value);
  if (!Number.isInteger(steps) || steps < 2 || steps > 50) {
    status.textContent = 'Steps must be a whole number from 2 to 50 (the first step compiles shaders and is not counted).';
    return;
  }
  worker?.terminate();
  worker = new Worker(new URL('../../workers/bench/bench.worker.ts', import.meta.url), { type: 'module', name: 'koala-bench' });
  worker.addEventListener('message', (ev: MessageEvent<BenchEvent>) => {
    const m = ev.data;
    if (m.type === 'progress') {
      status.textContent = m.message;
      progress.max = m.phase === 'steps' ? m.total : 1;
      progress.value = m.phase === 'steps' ? m.done : 0;
      if (m.phase !== 'steps') progress.removeAttribute('value');
    } else if (m.type === 'result') {
      status.textContent = 'Done.';
      setRunning(false);
      show(m.result);
    } else {
      status.textContent = `Stopped: ${m.message}`;
      document.body.dataset.benchError = m.message;
      setRunning(false);
    }
  });
  worker.addEventListener('error', (ev) => {
    status.textContent = `The benchmark worker crashed (${ev.message || 'out of memory?'}).`;
    setRunning(false);
  });
  const precision = ($<HTMLSelectElement>('precision').value || undefined) as 'fp16' | 'fp32' | undefined;
  const capture = new URLSearchParams(location.search).get('capture');
  const graphCapture = capture === 'off' || capture === 'on' ? capture : 'both';
  const f = new URLSearchParams(location.search).get('fused');
  const fused = f === 'off' || f === 'both' ? f : 'auto';
  const noDecode = new URLSearchParams(location.search).get('vae') === '0';
  const req: BenchRequest = { type: 'run', model, size: Number($<HTMLSelectElement>('size').value), steps, precision, graphCapture, fused, noDecode, ortWasmBase: ortWasmBase(), files: benchFiles(model) };
  setRunning(true);
  status.textContent = 'Starting…';
  worker.postMessage(req);
});

$<HTMLButtonElement>('cancel').addEventListener('click', () => {
  worker?.postMessage({ type: 'cancel' } satisfies BenchRequest);
  // a GPU call in flight may not stop: end the worker after a grace period
  setTimeout(() => {
    if (!$<HTMLButtonElement>('run').disabled) return;
    worker?.terminate();
    worker = undefined;
    status.textContent = 'Cancelled.';
    setRunning(false);
  }, 3000);
});

const json = () => JSON.stringify(last, null, 1);
$<HTMLButtonElement>('download').addEventListener('click', () => {
  if (!last) return;
  const a = document.createElement('a');
  a.href = URL.createObjectURL(new Blob([json()], { type: 'application/json' }));
  a.download = `koala-bench-${last.model}-${last.size}-${last.precision}.json`;
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
});
$<HTMLButtonElement>('copy').addEventListener('click', () => {
  if (last) void navigator.clipboard.writeText(json()).then(() => (status.textContent = 'JSON copied.'));
});

/**
 * `?model=koala-700m&size=512&steps=5&precision=fp16&run=1` presets the form (and starts it); `capture=off|on`
 * runs one loop instead of both (plain, then graph-captured); `fused=off|both` none / a first loop without the
 * self-tested fused kernels; `vae=0` skips the VAE decode.
 */
function fromUrl() {
  const q = new URLSearchParams(location.search);
  const set = (id: string, v: string | null) => {
    if (v !== null) ($<HTMLInputElement | HTMLSelectElement>(id).value = v);
  };
  const size = q.get('size');
  if (size && !Array.from($<HTMLSelectElement>('size').options).some((o) => o.value === size)) $<HTMLSelectElement>('size').add(new Option(size, size));
  set('model', q.get('model'));
  set('size', size);
  set('steps', q.get('steps'));
  set('precision', q.get('precision'));
  return q.get('run') === '1';
}

void showAdapter().then(() => {
  if (fromUrl() && !$<HTMLButtonElement>('run').disabled) $<HTMLFormElement>('form').requestSubmit();
});
