/**
 * `npm run bench:pipeline [-- --model DIR --steps N --size WxH --runs N --browser]`
 * Per-phase times of one generation (tokenize, encode, each U-Net step, decode, PNG) and the
 * GPU→CPU readback count, for the tiny fixture model by default:
 *   - Node, onnxruntime-web wasm backend (always);
 *   - Chromium (Debian's, WebGPU through SwiftShader) through the built page, with --browser
 *     (runs `e2e/bench-browser.ts`; needs `npm run build` first).
 * Prints a table and writes bench-out/pipeline.json. Figures, not assertions.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-web';
import { localRepoFromDir } from '../workers/hub/node.node.js';
import { BlobRegistry, createOrtBackend } from '../workers/pipeline/ort-backend';
import { encodePng } from '../workers/pipeline/png';
import { openSdxlModel } from '../workers/pipeline/sdxl-model';
import { SdxlPipeline } from '../workers/pipeline/sdxl-pipeline';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'test/fixtures/tiny-koala' },
    steps: { type: 'string', default: '25' },
    size: { type: 'string', default: '64x64' },
    runs: { type: 'string', default: '3' },
    guidance: { type: 'string', default: '7.5' },
    browser: { type: 'boolean', default: false },
  },
});
const [width, height] = values.size!.split('x').map(Number) as [number, number];
const steps = Number(values.steps);
const runs = Number(values.runs);

const ms = (s: number) => (s * 1000).toFixed(1);

async function node() {
  ort.env.wasm.numThreads = 1;
  const blobs = new BlobRegistry();
  const t0 = performance.now();
  const model = await openSdxlModel(await localRepoFromDir(values.model!, { variant: null }), blobs);
  const open = (performance.now() - t0) / 1000;
  const pipe = new SdxlPipeline(model, createOrtBackend(ort, 'wasm', blobs), { precision: 'fp32' });
  const t1 = performance.now();
  await pipe.prepare(1, width, height, Number(values.guidance) > 1);
  const sessions = (performance.now() - t1) / 1000;
  const results = [];
  for (let r = 0; r < runs; r++) {
    const tt = performance.now();
    model.tokenizers.encode('a koala bear eating eucalyptus leaves, watercolor');
    const tokenize = (performance.now() - tt) / 1000;
    const res = await pipe.generate({
      prompts: ['a koala bear eating eucalyptus leaves, watercolor'], numImagesPerPrompt: 1, steps, guidance: Number(values.guidance),
      scheduler: 'euler', width, height, seed: r,
    });
    const tp = performance.now();
    await encodePng(res.images[0]!.rgba, width, height, { text: { parameters: 'bench' } });
    const png = (performance.now() - tp) / 1000;
    const stepTimes = Object.entries(res.timings).filter(([k]) => /^step\d+$/.test(k)).map(([, v]) => v);
    results.push({ tokenize, encode: res.timings['encode']!, steps: stepTimes, denoise: res.timings['denoise']!, decode: res.timings['decode']!, png, total: res.timings['total']! + png, readbacks: res.readbacks });
  }
  await pipe.release();
  return { backend: 'wasm (Node)', open, sessions, runs: results };
}

const out: Record<string, unknown> = { model: values.model, width, height, steps, guidance: Number(values.guidance) };
const n = await node();
out['node'] = n;
console.log(`model ${values.model}, ${width}x${height}, ${steps} steps, guidance ${values.guidance}`);
console.log(`Node wasm: open model ${ms(n.open)} ms, build+create sessions ${ms(n.sessions)} ms`);
console.log('run  tokenize  encode  step(mean/min/max)        denoise  decode   png    total   readbacks');
for (const [i, r] of n.runs.entries()) {
  const mean = r.steps.reduce((a, b) => a + b, 0) / r.steps.length;
  console.log(
    `${i + 1}    ${ms(r.tokenize).padStart(6)}  ${ms(r.encode).padStart(6)}  ${ms(mean)}/${ms(Math.min(...r.steps))}/${ms(Math.max(...r.steps))} ms`.padEnd(58) +
      `${ms(r.denoise).padStart(7)}  ${ms(r.decode).padStart(6)}  ${ms(r.png).padStart(5)}  ${ms(r.total).padStart(7)}   ${r.readbacks}`,
  );
}
if (values.browser) {
  const { benchBrowser } = await import('../e2e/bench-browser');
  const b = await benchBrowser({ width, height, steps, guidance: Number(values.guidance), runs });
  out['chromium'] = b;
  console.log(`\nChromium (${b.adapter}, ${b.backend} ${b.precision}):`);
  console.log('(step/denoise = time to queue the work; gpu step/gpu denoise = when the GPU finished it)');
  console.log('run  encode  step(mean)  gpu step(mean)  gpu denoise  decode   png    total   readbacks');
  for (const [i, r] of b.runs.entries()) {
    const t = r.timings;
    const stepsT = Object.entries(t).filter(([k]) => /^step\d+$/.test(k)).map(([, v]) => v);
    const mean = stepsT.reduce((a, c) => a + c, 0) / Math.max(1, stepsT.length);
    const gpuSteps = Object.entries(t).filter(([k]) => /^gpu_step\d+$/.test(k)).map(([, v]) => v);
    const gpuMean = gpuSteps.reduce((a, c) => a + c, 0) / Math.max(1, gpuSteps.length);
    console.log(`${i + 1}    ${ms(t['encode'] ?? 0).padStart(6)}  ${ms(mean).padStart(9)}  ${ms(gpuMean).padStart(14)}  ${ms(t['gpu_denoise'] ?? 0).padStart(11)}  ${ms(t['decode'] ?? 0).padStart(6)}  ${ms(t['png'] ?? 0).padStart(5)}  ${ms(t['total'] ?? 0).padStart(7)}   ${r.readbacks}`);
  }
}
await mkdir('bench-out', { recursive: true });
await writeFile('bench-out/pipeline.json', JSON.stringify(out, null, 2));
console.log('\nwrote bench-out/pipeline.json');
