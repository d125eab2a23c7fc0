/**
 * `npm run bench:lora -- [--model koala-700m|koala-1b|sdxl-base] [--rank 32] [--dtype F16|F32]`: what a LoRA
 * costs at full size, with the app's own code (workers/model/lora.ts) on synthesized full-size weights
 * (headers of test/fixtures/koala-configs, data reading as zeros: the arithmetic is the same as on real
 * weights). The LoRA is seeded-random, kohya layout, rank R, on every attention projection of the U-Net
 * (to_q, to_k, to_v, to_out.0) and every self-attention projection of both text encoders — the modules
 * a typical SDXL LoRA trains. Prints and writes bench-out/lora-<model>.json:
 * - LoRA file size, modules, header read + key match time;
 * - fuse time (up·down on onnxruntime-web's wasm backend, as the engine does; `--gemm js`: the plain-JS loop),
 *   multiply-adds and GMAC/s, bytes of fused tensors held;
 * - how an SDXL-base LoRA (diffusers module names) matches this model's modules (KOALA's blocks differ).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { fuseLoras, openLora, type LoraTargets } from '../workers/model/lora';
import { bytesSource, encodeSafetensors, type TensorToEncode } from '../workers/model/safetensors';
import { synthWeights, type KeyList } from '../workers/model/testing/synth';
import { uniformLayersPerBlock } from '../workers/pipeline/sdxl-pipeline';
import { createOrtGemm } from '../workers/pipeline/cpu-gemm';
import * as ort from 'onnxruntime-web';
import { availableParallelism } from 'node:os';

ort.env.wasm.numThreads = Math.min(4, availableParallelism());

const { values } = parseArgs({
  options: { model: { type: 'string', default: 'koala-700m' }, rank: { type: 'string', default: '32' }, dtype: { type: 'string', default: 'F16' }, gemm: { type: 'string', default: 'wasm' } },
});
const model = values.model!;
const rank = Number(values.rank);
const dtype = values.dtype === 'F32' ? 'F32' : 'F16';
const CONFIGS = resolve(import.meta.dirname, '../test/fixtures/koala-configs');
const keys = (f: string) => JSON.parse(readFileSync(resolve(CONFIGS, `${f}.keys.json`), 'utf8')) as KeyList;
const config = (f: string) => JSON.parse(readFileSync(resolve(CONFIGS, `${f}.json`), 'utf8')) as Record<string, unknown>;

const unetKeys = keys(`${model}-unet`);
const te1Keys = keys('clip-vit-l-text-encoder');
const te2Keys = keys('clip-vit-bigg-text-encoder');
const targets: LoraTargets = {
  unet: await synthWeights(unetKeys, { dtype, zeros: true, name: 'diffusion_pytorch_model.safetensors' }),
  text_encoder: await synthWeights(te1Keys, { dtype, zeros: true, name: 'te1.safetensors' }),
  text_encoder_2: await synthWeights(te2Keys, { dtype, zeros: true, name: 'te2.safetensors' }),
  layersPerBlock: uniformLayersPerBlock(config(`${model}-unet`)),
};

let seed = 12345;
const rnd = () => ((seed = (seed * 1664525 + 1013904223) >>> 0) / 2 ** 32 - 0.5) * 0.02;
const UNET_MODULE = /\.(attn[12])\.(to_q|to_k|to_v|to_out\.0)\.weight$/;
const TE_MODULE = /\.self_attn\.(q_proj|k_proj|v_proj|out_proj)\.weight$/;

/** A kohya-layout LoRA over the matching 2-D weights of these key lists (module names as given). */
function makeLora(lists: [prefix: string, KeyList, RegExp][]): { bytes: Uint8Array; modules: number; macs: number } {
  const t: Record<string, TensorToEncode> = {};
  let modules = 0;
  let macs = 0;
  for (const [prefix, list, re] of lists) {
    for (const [name, shape] of Object.entries(list.tensors)) {
      if (!re.test(name) || shape.length !== 2) continue;
      const [out, inner] = shape as [number, number];
      const p = prefix + name.slice(0, -'.weight'.length).replace(/\./g, '_');
      t[`${p}.lora_down.weight`] = { dtype: 'F16', shape: [rank, inner], data: Uint16Array.from({ length: rank * inner }, () => 0x2000 + (Math.abs(rnd()) * 1000) | 0) };
      t[`${p}.lora_up.weight`] = { dtype: 'F16', shape: [out, rank], data: Uint16Array.from({ length: out * rank }, () => 0x2000 + (Math.abs(rnd()) * 1000) | 0) };
      t[`${p}.alpha`] = { dtype: 'F32', shape: [], data: Float32Array.of(rank / 2) };
      modules++;
      macs += out * inner * rank;
    }
  }
  return { bytes: encodeSafetensors(t), modules, macs };
}

const MB = (n: number) => `${(n / 1e6).toFixed(1)} MB`;
const out: Record<string, unknown> = { date: new Date().toISOString(), model, rank, modelDtype: dtype, node: process.version };

// 1. a LoRA made for this model
const own = makeLora([
  ['lora_unet_', unetKeys, UNET_MODULE],
  ['lora_te1_', te1Keys, TE_MODULE],
  ['lora_te2_', te2Keys, TE_MODULE],
]);
const heap0 = process.memoryUsage();
let t0 = performance.now();
const opened = await openLora(bytesSource(own.bytes, `${model}-r${rank}.safetensors`), targets, `${model}-r${rank}`);
const openMs = performance.now() - t0;
t0 = performance.now();
// the engine's path: up·down on onnxruntime-web's wasm backend (cpu-gemm.ts); --gemm js: the plain-JS loop
const gemm = values.gemm === 'js' ? undefined : createOrtGemm(ort);
const fused = await fuseLoras(targets, [{ lora: opened, scale: 0.8 }], undefined, { gemm });
const fuseMs = performance.now() - t0;
const heap1 = process.memoryUsage();
// the fused copies of every changed weight (stored dtype), which the sessions then read instead of the file's
const fusedBytes = opened.matches.reduce((n, m) => n + (fused[m.component].get(m.target)!.info.end - fused[m.component].get(m.target)!.info.begin), 0);
console.log(`LoRA for ${model}, rank ${rank}, kohya layout, ${own.modules} modules (U-Net attention + both text encoders' self-attention): ${MB(own.bytes.length)}`);
console.log(`  open (header + key match): ${openMs.toFixed(0)} ms; matched ${opened.report.matched}/${opened.report.modules} (U-Net ${opened.report.perComponent.unet}, TE1 ${opened.report.perComponent.text_encoder}, TE2 ${opened.report.perComponent.text_encoder_2})`);
console.log(`  fuse into ${dtype} weights (${gemm ? `onnxruntime-web wasm GEMM, ${ort.env.wasm.numThreads} threads` : 'plain JS, one thread'}): ${(fuseMs / 1000).toFixed(1)} s for ${(own.macs / 1e9).toFixed(1)} G multiply-adds (${(own.macs / 1e9 / (fuseMs / 1000)).toFixed(2)} GMAC/s)`);
console.log(`  fused tensors held in memory: ${MB(fusedBytes)} (the GPU gets them instead of the file's; JS heap + external grew by ${MB(heap1.heapUsed + heap1.external + heap1.arrayBuffers - heap0.heapUsed - heap0.external - heap0.arrayBuffers)})`);
Object.assign(out, { gemm: gemm ? `wasm, ${ort.env.wasm.numThreads} threads` : 'js', loraBytes: own.bytes.length, modules: own.modules, openMs, fuseMs, macs: own.macs, gmacPerS: own.macs / 1e9 / (fuseMs / 1000), fusedBytes, report: opened.report });

// 2. an SDXL-base LoRA (diffusers module names, U-Net attention only) on this model
if (model !== 'sdxl-base') {
  const sdxl = makeLora([['lora_unet_', keys('sdxl-base-unet'), UNET_MODULE]]);
  try {
    const r = (await openLora(bytesSource(sdxl.bytes, 'sdxl-base-lora.safetensors'), targets, 'sdxl-base-lora')).report;
    console.log(`SDXL-base LoRA on ${model}: ${r.matched} of ${r.modules} U-Net modules match (${r.unmatchedCount} do not exist here, e.g. ${r.unmatched.slice(0, 2).join(', ')}); applied only with "allow partial"`);
    out.sdxlLoraOnThisModel = r;
  } catch (e) {
    console.log(`SDXL-base LoRA on ${model}: refused: ${(e as Error).message}`);
    out.sdxlLoraOnThisModel = { refused: (e as Error).message };
  }
}

mkdirSync('bench-out', { recursive: true });
writeFileSync(`bench-out/lora-${model}.json`, JSON.stringify(out, null, 1));
console.log(`wrote bench-out/lora-${model}.json`);
