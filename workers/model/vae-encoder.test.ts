/**
 * The VAE encoder (AutoencoderKL `encoder` + `quant_conv`, the distribution's mean × scaling_factor) against
 * diffusers on both tiny fixtures (test/fixtures/img2img-goldens, scripts/goldens/img2img.py): two sizes,
 * fp32 and fp16 weight files, ≤ 1e-4 abs; the row-banded down path (forced by a small binding limit) gives
 * the same latents as the unbanded graph; full size: the SDXL VAE encoder at 1024² stays within 128 MiB.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildVaeEncoderGraph, type VaeConfig } from './vae';
import { openComponent } from './model-dir.node.js';
import { readSafetensorsHeader, readTensorF32 } from './safetensors';
import { fileSource } from './safetensors.node.js';
import { FIXTURE_NAMES, FIXTURES, fixtureDir } from './testing/fixtures.node.js';
import { maxAbsDiff, runWasm } from './testing/run-wasm.node.js';
import { synthWeights, type KeyList } from './testing/synth';

async function read(file: string) {
  const f = await readSafetensorsHeader(fileSource(file));
  const out: Record<string, { data: Float32Array; shape: number[] }> = {};
  for (const [k, info] of f.tensors) out[k] = { data: await readTensorF32(f, k), shape: info.shape };
  return out;
}

describe.each(FIXTURE_NAMES)('VAE encoder vs diffusers, %s', (fx) => {
  const dir = join(FIXTURES, 'img2img-goldens', fx);
  const files = readdirSync(dir).filter((f) => f.startsWith('vae_encoder'));

  it.each(files)('%s: latents (mean × scaling_factor) and moments within 1e-4', async (file) => {
    const variant = file.includes('.fp16.') ? 'fp16' : undefined;
    const { config, weights } = await openComponent(fixtureDir(fx), 'vae', variant);
    const g = await read(join(dir, file));
    const [b, , h, w] = g['image_input']!.shape;
    const vc = config as VaeConfig;
    const graph = buildVaeEncoderGraph(vc, weights, { batch: b!, height: h!, width: w!, scale: Number(vc['scaling_factor']) });
    const out = await runWasm(graph, { image: g['image_input']!.data });
    const errs = { latents: maxAbsDiff(out.latents.data, g['image_latents']!.data), moments: maxAbsDiff(out.moments.data, g['moments']!.data) };
    console.log(`[vae-encoder] ${fx} ${file}: ${JSON.stringify(errs)}`);
    expect(out.latents.dims).toEqual(g['image_latents']!.shape);
    expect(errs.latents).toBeLessThanOrEqual(1e-4);
    expect(errs.moments).toBeLessThanOrEqual(1e-4);
    // banded: a 16 KiB limit splits the down path into row bands; the result is the same
    const banded = buildVaeEncoderGraph(vc, weights, { batch: b!, height: h!, width: w!, scale: Number(vc['scaling_factor']), maxBindingBytes: 16 * 1024 });
    expect(banded.stats.opCounts.Split ?? 0).toBeGreaterThan(0);
    const bo = await runWasm(banded, { image: g['image_input']!.data });
    expect(maxAbsDiff(bo.latents.data, out.latents.data)).toBeLessThanOrEqual(1e-5);
  });
});

describe('VAE encoder at full size', () => {
  it('the SDXL VAE encoder at 1024² in fp32 runs in row bands: no tensor above 128 MiB', async () => {
    const keys = JSON.parse(readFileSync(join(FIXTURES, 'koala-configs', 'sdxl-vae.keys.json'), 'utf8')) as KeyList;
    const config = JSON.parse(readFileSync(join(FIXTURES, 'koala-configs', 'sdxl-vae.json'), 'utf8')) as VaeConfig;
    const weights = await synthWeights(keys, { dtype: 'F32' });
    const graph = buildVaeEncoderGraph(config, weights, { batch: 1, height: 1024, width: 1024, scale: 0.13025 });
    expect(graph.outputs.find((o) => o.name === 'latents')!.shape).toEqual([1, 4, 128, 128]);
    expect(graph.stats.largest.bytes).toBeLessThanOrEqual(128 * 2 ** 20);
    console.log(`[vae-encoder] 1024²: largest tensor ${(graph.stats.largest.bytes / 2 ** 20).toFixed(1)} MiB (${graph.stats.largest.name}), ${graph.stats.nodes} nodes`);
  });
});
