/**
 * `npm run bench:gpu -- [--model koala-700m|koala-1b|sdxl-base] [--size 1024] [--steps 5] [--precision fp16|fp32]
 *   [--graph-capture off|on|both] [--fused auto|off|both] [--no-vae] [--json FILE]`:
 * the GPU benchmark (workers/bench/gpu-bench.ts, the same module as the /bench.html page) in Node on whatever
 * WebGPU adapter Dawn finds (a real GPU, or Mesa lavapipe on a machine without one). Nothing is downloaded:
 * the full-size checkpoint is seeded random weights generated as they are uploaded. Prints the figures and
 * writes JSON (default bench-out/gpu-<model>-<size>-<precision>.json).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { parseArgs } from 'node:util';
import { setupNodeWebGpu } from '../test/webgpu-node';
import { BENCH_MODELS, type BenchModel } from '../workers/bench/random-repo';
import { GpuLedger } from '../workers/runtime/gpu-ledger';
import { benchFilesNode } from './bench/bench-files.node.js';
import { printGpuBench } from './bench/print-gpu-bench';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'koala-700m' },
    size: { type: 'string', default: '1024' },
    steps: { type: 'string', default: '5' },
    precision: { type: 'string' },
    json: { type: 'string' },
    browser: { type: 'boolean' },
    'graph-capture': { type: 'string', default: 'both' },
    fused: { type: 'string', default: 'auto' },
    'no-vae': { type: 'boolean' },
  },
});
if (values.browser) {
  // the page host: /bench.html in Debian's Chromium (SwiftShader here), driven through its URL parameters
  const { runInBrowser } = await import('./bench/gpu-bench-browser');
  const r = await runInBrowser({ model: values.model!, size: Number(values.size), steps: Number(values.steps), precision: values.precision, graphCapture: values['graph-capture'], fused: values.fused, noVae: values['no-vae'] });
  printGpuBench(r);
  const out = values.json ?? `bench-out/gpu-${r.model}-${r.size}-${r.precision}-browser.json`;
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify(r, null, 1));
  console.log(`wrote ${out}`);
  process.exit(0);
}
const graphCapture = values['graph-capture'] as 'off' | 'on' | 'both';
if (!['off', 'on', 'both'].includes(graphCapture)) throw new Error('--graph-capture must be off, on or both');
const model = values.model as BenchModel;
if (!BENCH_MODELS.includes(model)) throw new Error(`--model must be one of ${BENCH_MODELS.join(', ')}`);
const webgpu = await setupNodeWebGpu();
if (!webgpu.adapter) {
  console.error(`bench:gpu: no WebGPU adapter (${webgpu.reason})`);
  process.exit(1);
}
const ledger = new GpuLedger();
ledger.instrumentGpu(navigator.gpu);
const { runGpuBench } = await import('../workers/bench/gpu-bench');
const precision = (values.precision ?? (webgpu.shaderF16 ? 'fp16' : 'fp32')) as 'fp16' | 'fp32';
const size = Number(values.size);
const steps = Number(values.steps);
console.log(`bench:gpu ${model} ${size}² ${precision}, ${steps} CFG steps on ${webgpu.adapterName}`);
let last = '';
const r = await runGpuBench(
  {
    model,
    size,
    steps,
    precision,
    graphCapture,
    fused: values.fused === 'off' || values.fused === 'both' ? values.fused : 'auto',
    noDecode: values['no-vae'],
    files: benchFilesNode(model),
    ledger,
    onProgress: (p) => {
      if (p.message !== last) console.log(`  ${p.message}`);
      last = p.message;
    },
  },
  `node ${process.version} + webgpu (Dawn)`,
);
printGpuBench(r);
const out = values.json ?? `bench-out/gpu-${model}-${size}-${precision}.json`;
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, JSON.stringify(r, null, 1));
console.log(`wrote ${out}`);
