/**
 * `npm run bench:fullsize -- [--size 256|512|1024] [--dir DIR] [--steps N] [--fresh] [--no-text-encoders]`
 *
 * Scale test on real sizes: writes a random-weight fp16 KOALA-700M checkpoint in diffusers layout
 * (U-Net 1.57 GB, both text encoders, fp32 VAE; tensor names and shapes from test/fixtures/koala-configs/),
 * builds the graphs with the app's builders, creates WebGPU sessions in Node (Dawn; here Mesa lavapipe,
 * test/webgpu-node.ts) through workers/runtime/session.ts (strict CPU-fallback check), runs the text encoders,
 * one CFG denoising step (U-Net batch 2, latents on the GPU, helper graphs) and one VAE decode, and prints
 * load / step / decode times, GFLOP/s, peak memory and the readback count. Fails on NaN/Inf.
 * Results also go to bench-out/fullsize-<size>.json.
 */
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync, statfsSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { setupNodeWebGpu } from '../test/webgpu-node';
import { buildClipTextGraph, type ClipTextConfig } from '../workers/model/clip';
import type { BuiltGraph } from '../workers/model/graph';
import { floatToHalf, type ByteSource } from '../workers/model/safetensors';
import { buildUnetGraph } from '../workers/model/unet';
import { buildVaeDecoderGraph, type VaeConfig } from '../workers/model/vae';
import { WeightIndex } from '../workers/model/weights';
import { disposeAll, LatentOps, uploadF32 } from '../workers/runtime/gpu-tensors';
import { ort } from '../workers/runtime/ort';
import { ReadbackCounter } from '../workers/runtime/readback';
import { createSession } from '../workers/runtime/session';

const ROOT = resolve(import.meta.dirname, '..');
const CONFIGS = join(ROOT, 'test/fixtures/koala-configs');

const { values: args } = parseArgs({
  options: {
    size: { type: 'string', default: '256' },
    dir: { type: 'string' },
    steps: { type: 'string', default: '1' },
    fresh: { type: 'boolean', default: false },
    'no-text-encoders': { type: 'boolean', default: false },
  },
});
const size = Number(args.size);
if (![256, 512, 768, 1024].includes(size)) {
  console.error(`--size must be 256, 512, 768 or 1024, got ${args.size}`);
  process.exit(2);
}
const steps = Number(args.steps);
if (!Number.isInteger(steps) || steps < 1) {
  console.error(`--steps must be a positive integer, got ${args.steps}`);
  process.exit(2);
}
const dir = resolve(args.dir ?? join(tmpdir(), 'koala-bench-fullsize'));

// ---------- memory ----------
let peakRss = 0, peakHeap = 0, peakExternal = 0;
const sample = () => {
  const m = process.memoryUsage();
  peakRss = Math.max(peakRss, m.rss);
  peakHeap = Math.max(peakHeap, m.heapUsed);
  peakExternal = Math.max(peakExternal, m.external + m.arrayBuffers);
};
const sampler = setInterval(sample, 100);
const vmHwm = () => Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? 0) * 1024;
const GB = (n: number) => `${(n / 2 ** 30).toFixed(2)} GiB`;
const t = () => performance.now() / 1000;
const log = (s: string) => console.log(`[bench:fullsize] ${s}`);

// ---------- checkpoint writer ----------
interface KeyList { class: string; parameters: number; tensors: Record<string, number[]> }

function keyList(name: string): KeyList {
  return JSON.parse(readFileSync(join(CONFIGS, `${name}.keys.json`), 'utf8')) as KeyList;
}

/** Per-tensor scale: norm weights ~1, biases/embeddings small, matrices 1/sqrt(fan_in) (keeps activations O(1)). */
function tensorInit(name: string, shape: number[]): { mean: number; std: number } {
  if (shape.length === 1 && /norm/.test(name) && name.endsWith('weight')) return { mean: 1, std: 0.02 };
  if (shape.length === 1) return { mean: 0, std: 0.02 };
  if (/embedding/.test(name)) return { mean: 0, std: 0.02 };
  const fanIn = shape.slice(1).reduce((a, b) => a * b, 1);
  return { mean: 0, std: 0.5 / Math.sqrt(fanIn) };
}

const NORMALS = (() => {
  const out = new Float32Array(1 << 16);
  let s = 12345;
  const u = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) + 1) / 2 ** 32;
  for (let i = 0; i < out.length; i += 2) {
    const r = Math.sqrt(-2 * Math.log(u())), a = 2 * Math.PI * u();
    out[i] = r * Math.cos(a);
    out[i + 1] = r * Math.sin(a);
  }
  return out;
})();

/** Writes one safetensors file tensor by tensor in 16 MiB chunks (never the whole file in memory). */
function writeSafetensors(path: string, tensors: Record<string, number[]>, dtype: 'F16' | 'F32', seed: number): number {
  const names = Object.keys(tensors).sort();
  const bpe = dtype === 'F16' ? 2 : 4;
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  let off = 0;
  for (const n of names) {
    const bytes = tensors[n].reduce((a, b) => a * b, 1) * bpe;
    header[n] = { dtype, shape: tensors[n], data_offsets: [off, off + bytes] };
    off += bytes;
  }
  const hb = Buffer.from(JSON.stringify(header));
  const pad = (8 - (hb.length % 8)) % 8;
  const total = 8 + hb.length + pad + off;
  if (existsSync(path) && statSync(path).size === total && !args.fresh) return total;
  mkdirSync(join(path, '..'), { recursive: true });
  const fd = openSync(path, 'w');
  try {
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(hb.length + pad));
    writeSync(fd, len);
    writeSync(fd, Buffer.concat([hb, Buffer.alloc(pad, 0x20)]));
    const CHUNK = 8 << 20; // elements
    const buf16 = new Uint16Array(CHUNK), buf32 = new Float32Array(CHUNK);
    const table16 = new Uint16Array(1 << 16), table32 = new Float32Array(1 << 16);
    let state = seed >>> 0 || 1;
    for (const n of names) {
      const { mean, std } = tensorInit(n, tensors[n]);
      for (let i = 0; i < NORMALS.length; i++) {
        const v = mean + std * NORMALS[i];
        if (dtype === 'F16') table16[i] = floatToHalf(v);
        else table32[i] = v;
      }
      let left = tensors[n].reduce((a, b) => a * b, 1);
      while (left > 0) {
        const k = Math.min(left, CHUNK);
        if (dtype === 'F16') {
          for (let i = 0; i < k; i++) {
            state ^= state << 13; state ^= state >>> 17; state ^= state << 5;
            buf16[i] = table16[state & 0xffff];
          }
          writeSync(fd, new Uint8Array(buf16.buffer, 0, k * 2));
        } else {
          for (let i = 0; i < k; i++) {
            state ^= state << 13; state ^= state >>> 17; state ^= state << 5;
            buf32[i] = table32[state & 0xffff];
          }
          writeSync(fd, new Uint8Array(buf32.buffer, 0, k * 4));
        }
        left -= k;
      }
    }
  } finally {
    closeSync(fd);
  }
  return total;
}

/** A ByteSource over a local file (positioned reads; the header only is read to index weights). */
function fileSource(path: string, name: string): ByteSource {
  const size = statSync(path).size;
  return {
    name,
    size,
    async read(offset, length) {
      const out = new Uint8Array(length);
      const fd = openSync(path, 'r');
      try {
        let done = 0;
        while (done < length) {
          const n = readSync(fd, out, done, Math.min(length - done, 1 << 30), offset + done);
          if (n === 0) throw new Error(`${name}: unexpected end of file at ${offset + done}`);
          done += n;
        }
      } finally {
        closeSync(fd);
      }
      return out;
    },
  };
}

function writeCheckpoint(): { bytes: number; seconds: number } {
  const t0 = t();
  let bytes = 0;
  const cfg = (n: string) => readFileSync(join(CONFIGS, `${n}.json`), 'utf8');
  const put = (rel: string, text: string) => {
    mkdirSync(join(dir, rel, '..'), { recursive: true });
    writeFileSync(join(dir, rel), text);
  };
  put('model_index.json', JSON.stringify({
    _class_name: 'StableDiffusionXLPipeline', force_zeros_for_empty_prompt: true,
    text_encoder: ['transformers', 'CLIPTextModel'], text_encoder_2: ['transformers', 'CLIPTextModelWithProjection'],
    unet: ['diffusers', 'UNet2DConditionModel'], vae: ['diffusers', 'AutoencoderKL'],
  }, null, 2));
  put('unet/config.json', cfg('koala-700m-unet'));
  put('text_encoder/config.json', cfg('clip-vit-l-text-encoder'));
  put('text_encoder_2/config.json', cfg('clip-vit-bigg-text-encoder'));
  put('vae/config.json', cfg('sdxl-vae'));
  bytes += writeSafetensors(join(dir, 'unet/diffusion_pytorch_model.fp16.safetensors'), keyList('koala-700m-unet').tensors, 'F16', 1);
  bytes += writeSafetensors(join(dir, 'text_encoder/model.fp16.safetensors'), keyList('clip-vit-l-text-encoder').tensors, 'F16', 2);
  bytes += writeSafetensors(join(dir, 'text_encoder_2/model.fp16.safetensors'), keyList('clip-vit-bigg-text-encoder').tensors, 'F16', 3);
  bytes += writeSafetensors(join(dir, 'vae/diffusion_pytorch_model.safetensors'), keyList('sdxl-vae').tensors, 'F32', 4);
  return { bytes, seconds: t() - t0 };
}

async function openWeights(rel: string): Promise<WeightIndex> {
  return WeightIndex.open([fileSource(join(dir, rel), rel)]);
}

function assertFinite(what: string, data: ArrayLike<number>): { min: number; max: number; meanAbs: number } {
  let min = Infinity, max = -Infinity, sum = 0;
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (!Number.isFinite(v)) throw new Error(`${what}: element ${i} is ${v} (NaN/Inf)`);
    if (v < min) min = v;
    if (v > max) max = v;
    sum += Math.abs(v);
  }
  return { min, max, meanAbs: sum / data.length };
}

// ---------- main ----------
async function main() {
  const free = (() => {
    try {
      mkdirSync(dir, { recursive: true });
      const st = statfsSync(dir);
      return st.bavail * st.bsize;
    } catch {
      return Infinity;
    }
  })();
  if (free < 4.5 * 2 ** 30 && !existsSync(join(dir, 'unet/diffusion_pytorch_model.fp16.safetensors'))) {
    throw new Error(`${dir}: needs ~3.6 GB free disk for the checkpoint, ${GB(free)} available`);
  }
  const webgpu = await setupNodeWebGpu();
  if (!webgpu.adapter) throw new Error(`no WebGPU adapter: ${webgpu.reason}`);
  log(`adapter: ${webgpu.adapterName}; shader-f16 ${webgpu.shaderF16}; maxBufferSize ${GB(webgpu.adapter.limits.maxBufferSize)}; maxStorageBufferBindingSize ${GB(webgpu.adapter.limits.maxStorageBufferBindingSize)}; ${availableParallelism()} CPUs`);
  log(`checkpoint in ${dir}`);
  const ckpt = writeCheckpoint();
  log(`checkpoint: ${GB(ckpt.bytes)} ready in ${ckpt.seconds.toFixed(1)} s`);

  const h = size / 8, w = size / 8;
  const timings: Record<string, number> = {};
  const info: Record<string, unknown> = {};
  const rb = new ReadbackCounter();
  const loadComponent = async (name: string, build: () => BuiltGraph | Promise<BuiltGraph>, gpuOutputs: boolean, allowCpu?: RegExp[]) => {
    let t0 = t();
    const graph = await build();
    timings[`${name}.build`] = t() - t0;
    t0 = t();
    const s = await createSession(graph, { backend: 'webgpu', name, gpuOutputs, allowCpu });
    timings[`${name}.load`] = t() - t0;
    sample();
    log(`${name}: graph ${(graph.model.byteLength / 1024).toFixed(0)} KiB, ${graph.stats.nodes} nodes, ${(graph.stats.params / 1e6).toFixed(1)} M params; built in ${timings[`${name}.build`].toFixed(2)} s, session ${timings[`${name}.load`].toFixed(1)} s; CPU nodes: ${s.cpuNodes.length ? s.cpuNodes.join(', ') : 'none'}`);
    info[`${name}.cpuNodes`] = s.cpuNodes;
    return { graph, s };
  };

  // text encoders: positive prompt ids; the negative prompt is None -> zeros (force_zeros_for_empty_prompt)
  const ehs = new Float32Array(2 * 77 * 2048);
  const pooled = new Float32Array(2 * 1280);
  if (!args['no-text-encoders']) {
    const ids = [49406, 320, 1125, 539, 320, 2368, 530, 518, 2117, 49407];
    for (const [folder, dim, pad] of [['text_encoder', 768, 49407], ['text_encoder_2', 1280, 0]] as const) {
      const weights = await openWeights(`${folder}/model.fp16.safetensors`);
      const config = JSON.parse(readFileSync(join(dir, folder, 'config.json'), 'utf8')) as ClipTextConfig;
      // text_encoder_2's EOS pooling casts the int64 ids for ArgMax: a [1,77] Cast that ORT keeps on the CPU
      const allow = folder === 'text_encoder_2' ? [/^Cast \(pool\/Cast\)$/] : undefined;
      const { s } = await loadComponent(folder, () => buildClipTextGraph(config, weights, { batch: 1, compute: 'float16', configName: `${folder}/config.json` }), false, allow);
      const input = BigInt64Array.from({ length: 77 }, (_, i) => BigInt(i < ids.length ? ids[i] : pad));
      const t0 = t();
      const out = await s.run({ input_ids: new ort.Tensor('int64', input, [1, 77]) }, { readbacks: rb });
      timings[`${folder}.run`] = t() - t0;
      const m2 = out.hidden_states_m2.data as Float32Array;
      info[`${folder}.hidden_states_m2`] = assertFinite(`${folder} hidden_states_m2`, m2);
      for (let tok = 0; tok < 77; tok++) ehs.set(m2.subarray(tok * dim, (tok + 1) * dim), (77 + tok) * 2048 + (folder === 'text_encoder' ? 0 : 768));
      if (out.text_embeds) pooled.set(out.text_embeds.data as Float32Array, 1280);
      log(`${folder}: run ${timings[`${folder}.run`].toFixed(1)} s`);
      await s.release();
      sample();
    }
  }

  // U-Net: one CFG step (batch 2) with latents on the GPU
  const unetWeights = await openWeights('unet/diffusion_pytorch_model.fp16.safetensors');
  const unetConfig = JSON.parse(readFileSync(join(dir, 'unet/config.json'), 'utf8')) as Record<string, unknown>;
  let unetFlops = 0;
  const { s: unet } = await loadComponent('unet', () => {
    const g = buildUnetGraph(unetConfig, unetWeights, { batch: 2, height: h, width: w, compute: 'float16', name: 'unet' });
    unetFlops = g.report.flops;
    info['unet.largestTensor'] = g.report.largest;
    return g;
  }, true);
  const ops = await LatentOps.create('webgpu', { batch: 1, channels: 4, height: h, width: w }, { cfg: true });
  const sigma = 14.6146; // Euler, first step: x0 = x - sigma*eps, x' = x + (sigma_next - sigma) * eps
  const sigmaNext = 11.0;
  let latents = await uploadF32('webgpu', Float32Array.from({ length: 4 * h * w }, (_, i) => NORMALS[i % NORMALS.length] * Math.sqrt(sigma * sigma + 1)), [1, 4, h, w]);
  const f32 = (d: Float32Array, dims: number[]) => new ort.Tensor('float32', d, dims);
  const timeIds = Float32Array.from([size, size, 0, 0, size, size, size, size, 0, 0, size, size]);
  const stepTimes: number[] = [];
  let x0: import('../workers/runtime/ort').OrtTensor | undefined;
  for (let i = 0; i < steps; i++) {
    const t0 = t();
    const input = await ops.modelInput(latents, 1 / Math.sqrt(sigma * sigma + 1));
    const out = await unet.run({
      sample: input, timestep: f32(new Float32Array([999 - 40 * i]), [1]), encoder_hidden_states: f32(ehs, [2, 77, 2048]),
      text_embeds: f32(pooled, [2, 1280]), time_ids: f32(timeIds, [2, 6]),
    }, { readbacks: rb });
    const next = await ops.step({ sample: latents, modelOutput: out.out, coefficients: Float32Array.from([1, sigmaNext - sigma, 0, 0, 1, -sigma]), guidance: 7.5 });
    // the step's outputs are queued GPU work; wait for it so the time is the step's
    await ortDeviceIdle();
    disposeAll(input, ...Object.values(out), latents, x0);
    latents = next.prev;
    x0 = next.x0;
    stepTimes.push(t() - t0);
    sample();
    log(`CFG step ${i + 1}/${steps}: ${stepTimes[i].toFixed(1)} s${i === 0 ? ' (includes shader compilation)' : ''}`);
  }
  const finalLatents = Float32Array.from(await rb.read<Float32Array>(latents, 'final latents', { release: true }));
  disposeAll(x0);
  info.latents = assertFinite('final latents', finalLatents);
  await ops.release();
  await unet.release();
  sample();

  // VAE decode (fp32, batch 1)
  const vaeWeights = await openWeights('vae/diffusion_pytorch_model.safetensors');
  const vaeConfig = JSON.parse(readFileSync(join(dir, 'vae/config.json'), 'utf8')) as VaeConfig;
  const maxBinding = webgpu.adapter.limits.maxStorageBufferBindingSize;
  const { s: vae } = await loadComponent('vae_decoder', () => buildVaeDecoderGraph(vaeConfig, vaeWeights, { batch: 1, height: h, width: w, compute: 'float32', maxBindingBytes: maxBinding }), false);
  const scaled = finalLatents.map((v) => v / 0.13025);
  let t0 = t();
  const img = await vae.run({ latents_scaled: f32(scaled, [1, 4, h, w]) }, { readbacks: rb });
  timings['vae_decoder.run'] = t() - t0;
  const image = img.image.data as Float32Array;
  info.image = assertFinite('image', image);
  await vae.release();
  sample();
  clearInterval(sampler);
  log(`VAE decode: ${timings['vae_decoder.run'].toFixed(1)} s`);

  const vaeFlops = 10.5e12 * (size / 1024) ** 2; // REFERENCE.md analytic count, scaled by pixels
  t0 = t();
  const result = {
    size, steps, adapter: webgpu.adapterName, ortBuild: (await import('../workers/runtime/ort')).ORT_BUILD,
    checkpointBytes: ckpt.bytes, checkpointWriteSeconds: ckpt.seconds,
    timings: { ...timings, unetStepFirst: stepTimes[0], unetStepLast: stepTimes.at(-1) },
    unet: { flopsPerStep: unetFlops, gflopsPerSecond: unetFlops / stepTimes.at(-1)! / 1e9 },
    vae: { flopsAnalytic: vaeFlops, gflopsPerSecond: vaeFlops / timings['vae_decoder.run'] / 1e9 },
    memory: { peakRss, vmHwm: vmHwm(), peakHeapUsed: peakHeap, peakExternalAndArrayBuffers: peakExternal },
    readbacks: rb.log,
    values: info,
  };
  mkdirSync(join(ROOT, 'bench-out'), { recursive: true });
  writeFileSync(join(ROOT, 'bench-out', `fullsize-${size}.json`), JSON.stringify(result, null, 2));
  console.log('');
  console.log(`KOALA-700M fp16 (random weights), ${size}×${size}, ORT ${result.ortBuild} on ${webgpu.adapterName}`);
  console.log(`  checkpoint     ${GB(ckpt.bytes)} (written/checked in ${ckpt.seconds.toFixed(1)} s)`);
  for (const c of ['text_encoder', 'text_encoder_2', 'unet', 'vae_decoder']) {
    if (timings[`${c}.load`] !== undefined) console.log(`  ${c.padEnd(15)} build ${timings[`${c}.build`].toFixed(2)} s, session load ${timings[`${c}.load`].toFixed(1)} s${timings[`${c}.run`] !== undefined ? `, run ${timings[`${c}.run`].toFixed(1)} s` : ''}`);
  }
  console.log(`  CFG step (B=2) ${stepTimes.map((s) => s.toFixed(1)).join(' / ')} s; ${(unetFlops / 1e12).toFixed(3)} TFLOP -> ${result.unet.gflopsPerSecond.toFixed(2)} GFLOP/s`);
  console.log(`  VAE decode     ${timings['vae_decoder.run'].toFixed(1)} s; ~${(vaeFlops / 1e12).toFixed(3)} TFLOP -> ${result.vae.gflopsPerSecond.toFixed(2)} GFLOP/s`);
  console.log(`  memory         peak RSS ${GB(peakRss)} (VmHWM ${GB(result.memory.vmHwm)}), JS heap ${GB(peakHeap)}, external+ArrayBuffers ${GB(peakExternal)}`);
  console.log(`  readbacks      ${rb.count}: ${rb.log.map((r) => r.what).join(', ')}`);
  console.log(`  latents        ${JSON.stringify(info.latents)}; image ${JSON.stringify(info.image)} (no NaN)`);
  console.log(`  -> bench-out/fullsize-${size}.json`);
}

/** Waits until the GPU has finished the queued work (so step times are not just enqueue times). */
async function ortDeviceIdle(): Promise<void> {
  const { ortDevice } = await import('../workers/runtime/ort');
  await (await ortDevice()).queue.onSubmittedWorkDone();
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(`[bench:fullsize] FAILED: ${(e as Error).stack ?? e}`);
    process.exit(1);
  },
);
