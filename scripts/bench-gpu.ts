/**
 * `npm run bench:gpu -- [--model koala-700m|koala-1b|sdxl-base] [--size 1024] [--steps 5] [--precision fp16|fp32] [--json FILE]`:
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

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'koala-700m' },
    size: { type: 'string', default: '1024' },
    steps: { type: 'string', default: '5' },
    precision: { type: 'string' },
    json: { type: 'string' },
  },
});
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
    files: benchFilesNode(model),
    ledger,
    onProgress: (p) => {
      if (p.message !== last) console.log(`  ${p.message}`);
      last = p.message;
    },
  },
  `node ${process.version} + webgpu (Dawn)`,
);
const GB = (n: number) => `${(n / 1e9).toFixed(2)} GB`;
console.log(`adapter            ${r.adapter} (shader-f16 ${r.shaderF16}; maxBufferSize ${r.limits.maxBufferSize}, maxStorageBufferBindingSize ${r.limits.maxStorageBufferBindingSize})`);
console.log(`ms per CFG step    ${r.msPerStep.toFixed(1)} (median of steps 2…${r.steps}; each: ${r.stepMs.map((m) => m.toFixed(0)).join(', ')} ms)`);
console.log(`TFLOP/s            ${r.tflops.toFixed(3)} (U-Net ${r.unetTflopPerImage.toFixed(3)} TFLOP per image, 2 per step)`);
console.log(`per step           ${r.dispatchesPerStep} dispatches, ${r.submitsPerStep} submits, ${r.readbacksPerStep} readbacks`);
console.log(`U-Net graph        ${r.unetNodes} nodes: ${Object.entries(r.unetOps).sort((a, b) => b[1] - a[1]).slice(0, 8).map(([k, v]) => `${k} ${v}`).join(', ')}`);
console.log(`shader compile     ~${(r.shaderCompileMs / 1000).toFixed(1)} s (first step minus the median)`);
console.log(`sessions           ${(r.sessionCreateMs / 1000).toFixed(1)} s: ${r.sessions.map((s) => `${s.label} ${(s.ms / 1000).toFixed(1)} s`).join(', ')}`);
console.log(`encode / VAE       ${(r.encodeMs / 1000).toFixed(1)} s / ${(r.vaeMs / 1000).toFixed(1)} s`);
console.log(`GPU peak           ${GB(r.gpuPeakBytes)}; graph capture ${r.graphCapture}; image finite ${r.finite}`);
const out = values.json ?? `bench-out/gpu-${model}-${size}-${precision}.json`;
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, JSON.stringify(r, null, 1));
console.log(`wrote ${out}`);
