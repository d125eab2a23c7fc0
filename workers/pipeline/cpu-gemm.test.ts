/** The LoRA GEMM on onnxruntime-web's wasm backend: A·B to float32 rounding, and fuseLoras gives the same weights with it as without. */
import * as ort from 'onnxruntime-web';
import { describe, expect, it } from 'vitest';
import { fuseLoras, openLora } from '../model/lora';
import { bytesSource, encodeSafetensors, readTensorF32 } from '../model/safetensors';
import { WeightIndex } from '../model/weights';
import { createOrtGemm } from './cpu-gemm';

ort.env.wasm.numThreads = 1;
const rnd = (n: number, seed: number) => {
  let s = seed;
  return Float32Array.from({ length: n }, () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32 - 0.5));
};

describe('LoRA GEMM on the wasm backend', () => {
  it('A·B matches a float64 product', async () => {
    const gemm = createOrtGemm(ort);
    const [m, k, n] = [37, 8, 53];
    const a = rnd(m * k, 1);
    const b = rnd(k * n, 2);
    const c = await gemm(a, b, m, k, n);
    let err = 0;
    for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) {
      let s = 0;
      for (let t = 0; t < k; t++) s += a[i * k + t]! * b[t * n + j]!;
      err = Math.max(err, Math.abs(c[i * n + j]! - s));
    }
    expect(err).toBeLessThan(1e-6);
  });

  it('fuseLoras with the GEMM equals fuseLoras without it (two LoRAs on one weight, linear and conv)', async () => {
    const w = { 'a.to_q.weight': { dtype: 'F32' as const, shape: [6, 4], data: rnd(24, 3) }, 'b.conv1.weight': { dtype: 'F16' as const, shape: [5, 3, 3, 3], data: Uint16Array.from(rnd(135, 4), () => 0x3c00) } };
    const unet = await WeightIndex.open([bytesSource(encodeSafetensors(w), 'unet.safetensors')]);
    const empty = new WeightIndex([]);
    const targets = { unet, text_encoder: empty, text_encoder_2: empty };
    const lora = (seed: number) =>
      bytesSource(
        encodeSafetensors({
          'lora_unet_a_to_q.lora_down.weight': { dtype: 'F32', shape: [2, 4], data: rnd(8, seed) },
          'lora_unet_a_to_q.lora_up.weight': { dtype: 'F32', shape: [6, 2], data: rnd(12, seed + 1) },
          'lora_unet_b_conv1.lora_down.weight': { dtype: 'F32', shape: [3, 3, 3, 3], data: rnd(81, seed + 2) },
          'lora_unet_b_conv1.lora_up.weight': { dtype: 'F32', shape: [5, 3, 1, 1], data: rnd(15, seed + 3) },
          'lora_unet_b_conv1.alpha': { dtype: 'F32', shape: [], data: Float32Array.of(1.5) },
        }),
        `l${seed}.safetensors`,
      );
    const uses = [
      { lora: await openLora(lora(10), targets, 'one'), scale: 0.7 },
      { lora: await openLora(lora(20), targets, 'two'), scale: 1.3 },
    ];
    const js = await fuseLoras(targets, uses);
    const viaOrt = await fuseLoras(targets, uses, undefined, { gemm: createOrtGemm(ort) });
    for (const name of ['a.to_q.weight', 'b.conv1.weight']) {
      const x = await readTensorF32(js.unet.get(name)!.file, name);
      const y = await readTensorF32(viaOrt.unet.get(name)!.file, name);
      let err = 0;
      for (let i = 0; i < x.length; i++) err = Math.max(err, Math.abs(x[i]! - y[i]!));
      // fp16 storage: one rounding step at most; fp32: float rounding
      expect(err).toBeLessThanOrEqual(name.includes('conv') ? 1e-3 : 1e-6);
    }
  });
});
