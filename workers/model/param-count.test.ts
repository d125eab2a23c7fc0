/** Full-size graphs built from synthesized headers: parameter counts equal the published ones. */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { buildClipTextGraph, type ClipTextConfig } from './clip';
import { buildVaeDecoderGraph, type VaeConfig } from './vae';
import { synthWeights, type KeyList } from './testing/synth';

const DIR = resolve(__dirname, '../../test/fixtures/koala-configs');
const json = <T>(f: string) => JSON.parse(readFileSync(resolve(DIR, f), 'utf8')) as T;

describe('parameter counts of full-size graphs (synthesized safetensors headers)', () => {
  it('CLIP ViT-L text encoder: 123,060,480', async () => {
    const keys = json<KeyList>('clip-vit-l-text-encoder.keys.json');
    const t0 = performance.now();
    const g = buildClipTextGraph(json<ClipTextConfig>('clip-vit-l-text-encoder.json'), await synthWeights(keys), { batch: 2, compute: 'float16' });
    console.log(`CLIP-L: build ${(performance.now() - t0).toFixed(0)} ms, ${g.model.length} graph bytes, ${g.stats.nodes} nodes`);
    expect(keys.parameters).toBe(123_060_480);
    expect(g.stats.params).toBe(123_060_480);
    expect(g.outputs.map((o) => [o.name, o.shape])).toEqual([['hidden_states_m2', [2, 77, 768]], ['last_hidden_state', [2, 77, 768]]]);
  });

  it('OpenCLIP bigG text encoder with projection: 694,659,840 (sharded in 2 files)', async () => {
    const keys = json<KeyList>('clip-vit-bigg-text-encoder.keys.json');
    const g = buildClipTextGraph(json<ClipTextConfig>('clip-vit-bigg-text-encoder.json'), await synthWeights(keys, { shards: 2, name: 'model.fp16.safetensors' }), { batch: 2, compute: 'float16' });
    expect(keys.parameters).toBe(694_659_840);
    expect(g.stats.params).toBe(694_659_840);
    expect(g.stats.weightBytes).toBe(694_659_840 * 2);
    expect(new Set(g.externalData.map((r) => r.file)).size).toBe(2);
    expect(g.outputs.map((o) => [o.name, o.shape])).toEqual([['hidden_states_m2', [2, 77, 1280]], ['last_hidden_state', [2, 77, 1280]], ['text_embeds', [2, 1280]]]);
  });

  it('SDXL VAE decoder (post_quant_conv + decoder): 49,490,199; the encoder weights are never referenced', async () => {
    const keys = json<KeyList>('sdxl-vae.keys.json');
    const weights = await synthWeights(keys, { dtype: 'F32', name: 'diffusion_pytorch_model.safetensors' });
    const t0 = performance.now();
    const g = buildVaeDecoderGraph(json<VaeConfig>('sdxl-vae.json'), weights, { batch: 1, height: 128, width: 128 });
    console.log(`VAE 1024²: build ${(performance.now() - t0).toFixed(0)} ms, ${g.stats.nodes} nodes, Softmax ${g.stats.opCounts.Softmax}, largest tensor ${g.stats.largest.name} [${g.stats.largest.shape}] ${g.stats.largest.bytes / 2 ** 20} MiB`);
    // unsplit, 256 channels x 1024² x fp32 after up_blocks.2's upsampler would be 1 GiB in one tensor;
    // the row-banded up path keeps every tensor within the default 128 MiB binding limit
    expect(g.stats.largest.bytes).toBeLessThanOrEqual(128 * 2 ** 20);
    const unbanded = buildVaeDecoderGraph(json<VaeConfig>('sdxl-vae.json'), weights, { batch: 1, height: 128, width: 128, maxBindingBytes: 2 ** 31 });
    expect(unbanded.stats.largest.bytes).toBe(256 * 1024 * 1024 * 4);
    expect(unbanded.stats.params).toBe(49_490_199);
    expect(keys.decoder_parameters).toBe(49_490_199);
    expect(g.stats.params).toBe(49_490_199);
    expect(g.outputs[0].shape).toEqual([1, 3, 1024, 1024]);
    // 16384 tokens, one head, fp32: 1 GiB of probabilities -> 8 chunks of 2048 queries under 128 MiB
    expect(g.stats.opCounts.Softmax).toBe(8);
    // external data covers only decoder tensors: one contiguous range well short of the file
    const total = g.externalData.reduce((s, r) => s + r.end - r.begin, 0);
    expect(total).toBeLessThan(weights.files[0].source.size - 100 * 2 ** 20);
  });

  it('external data of a > 2 GB file is split into ranges under the part limit', async () => {
    const keys = json<KeyList>('clip-vit-bigg-text-encoder.keys.json');
    const g = buildClipTextGraph(json<ClipTextConfig>('clip-vit-bigg-text-encoder.json'), await synthWeights(keys, { dtype: 'F32' }), { batch: 1 });
    expect(g.stats.weightBytes).toBeGreaterThan(2 ** 31);
    expect(g.externalData.length).toBeGreaterThanOrEqual(3);
    for (const r of g.externalData) expect(r.end - r.begin).toBeLessThanOrEqual(2 ** 30);
    const covered = g.externalData.reduce((s, r) => s + r.end - r.begin, 0);
    expect(covered).toBe(g.stats.weightBytes); // contiguous tensors: no gaps loaded
  });
});
