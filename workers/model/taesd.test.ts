/**
 * The TAESD decoder (diffusers AutoencoderTiny, TAESDXL layout) against diffusers on a tiny random
 * AutoencoderTiny (test/fixtures/tiny-taesd, goldens in img2img-goldens/taesd.safetensors): two latent
 * sizes, fp32 file ≤ 1e-4 (fp16 file ≤ 1e-2: the goldens use the fp32 weights); banded (small binding limit) = unbanded; TAESDXL's real size at
 * 1024² stays within 128 MiB per tensor.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readSafetensorsHeader, readTensorF32 } from './safetensors';
import { fileSource } from './safetensors.node.js';
import { buildTaesdDecoderGraph, type TaesdConfig } from './taesd';
import { FIXTURES } from './testing/fixtures.node.js';
import { maxAbsDiff, runWasm } from './testing/run-wasm.node.js';
import { synthWeights } from './testing/synth';
import { WeightIndex } from './weights';

const dir = join(FIXTURES, 'tiny-taesd');
const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as TaesdConfig;

async function golden(name: string) {
  const f = await readSafetensorsHeader(fileSource(join(FIXTURES, 'img2img-goldens', 'taesd.safetensors')));
  return { data: await readTensorF32(f, name), shape: f.tensors.get(name)!.shape };
}

describe('TAESD decoder vs diffusers AutoencoderTiny', () => {
  for (const variant of ['', '.fp16'] as const) {
    for (const size of ['8x8', '6x8']) {
      it(`latents ${size}, ${variant ? 'fp16' : 'fp32'} file: decoded image within 1e-4 (banded too)`, async () => {
        const weights = await WeightIndex.open([fileSource(join(dir, `diffusion_pytorch_model${variant}.safetensors`))]);
        const lat = await golden(`latents_${size}`);
        const ref = await golden(`image_decoded_${size}`);
        const [b, , h, w] = lat.shape;
        const graph = buildTaesdDecoderGraph(config, weights, { batch: b!, height: h!, width: w! });
        const out = (await runWasm(graph, { latents_scaled: lat.data })).image;
        expect(out.dims).toEqual(ref.shape);
        const err = maxAbsDiff(out.data, ref.data);
        const banded = buildTaesdDecoderGraph(config, weights, { batch: b!, height: h!, width: w!, maxBindingBytes: 8 * 1024 });
        expect(banded.stats.opCounts.Split ?? 0).toBeGreaterThan(0);
        const bErr = maxAbsDiff((await runWasm(banded, { latents_scaled: lat.data })).image.data, out.data);
        console.log(`[taesd] ${size}${variant}: max abs err ${err.toExponential(2)}, banded vs whole ${bErr.toExponential(2)}`);
        // the goldens come from the fp32 file; the fp16 file's rounded weights move the image by ~2.5e-3 (as the VAE's: 1e-2 bound)
        expect(err).toBeLessThanOrEqual(variant ? 1e-2 : 1e-4);
        expect(bErr).toBeLessThanOrEqual(1e-5);
      });
    }
  }

  it('TAESDXL (64 channels) at 1024² runs in row bands within 128 MiB; fp16 compute too', async () => {
    const real: TaesdConfig = { ...config, decoder_block_out_channels: [64, 64, 64, 64] };
    const tensors: Record<string, number[]> = {};
    const f = await readSafetensorsHeader(fileSource(join(dir, 'diffusion_pytorch_model.safetensors')));
    for (const [k, info] of f.tensors) if (k.startsWith('decoder.')) tensors[k] = info.shape.map((d, i) => (d === 8 && i < 2 ? 64 : d));
    const weights = await synthWeights({ class: 'AutoencoderTiny', parameters: 0, tensors }, { dtype: 'F16' });
    for (const compute of ['float32', 'float16'] as const) {
      const graph = buildTaesdDecoderGraph(real, weights, { batch: 1, height: 128, width: 128, compute });
      expect(graph.outputs[0]!.shape).toEqual([1, 3, 1024, 1024]);
      expect(graph.stats.largest.bytes).toBeLessThanOrEqual(128 * 2 ** 20);
    }
  });
});
