import { describe, expect, it } from 'vitest';
import { buildVaeDecoderGraph, type VaeConfig } from './vae';
import { openComponent } from './model-dir.node.js';
import { FIXTURE_NAMES, fixtureDir, golden, goldenCases } from './testing/fixtures.node.js';
import { createWasmSession, maxAbsDiff, runWasm } from './testing/run-wasm.node.js';
import { f32Copy } from './testing/weights-mem';

const GOLD = 'vae.safetensors';

describe.each(FIXTURE_NAMES)('VAE decoder vs %s goldens', (fx) => {
  it('fp32 weights: image within 1e-4 for every case', async () => {
    const { config, weights } = await openComponent(fixtureDir(fx), 'vae');
    for (const c of await goldenCases(fx, GOLD)) {
      const lat = await golden(fx, GOLD, `${c}.latents_scaled`);
      const ref = await golden(fx, GOLD, `${c}.image`);
      const [b, , h, w] = lat.shape;
      const graph = buildVaeDecoderGraph(config as VaeConfig, weights, { batch: b, height: h, width: w });
      expect(graph.outputs).toEqual([{ name: 'image', dtype: 'float32', shape: ref.shape }]);
      const out = await runWasm(graph, { latents_scaled: lat.data });
      const err = maxAbsDiff(out.image.data, ref.data);
      console.log(`${fx} vae ${c} fp32 max abs err ${err}`);
      expect(err).toBeLessThanOrEqual(1e-4);
    }
  });

  it('fp16 weight file: within 1e-2 of the goldens, and identical (1e-6) to the fp32 graph on the same rounded weights', async () => {
    const { config, weights } = await openComponent(fixtureDir(fx), 'vae', 'fp16');
    const lat = await golden(fx, GOLD, 'case1.latents_scaled');
    const ref = await golden(fx, GOLD, 'case1.image');
    const [b, , h, w] = lat.shape;
    const graph = buildVaeDecoderGraph(config as VaeConfig, weights, { batch: b, height: h, width: w });
    expect(graph.stats.opCounts.Cast).toBeGreaterThan(0);
    const out = (await runWasm(graph, { latents_scaled: lat.data })).image.data;
    const upcast = buildVaeDecoderGraph(config as VaeConfig, await f32Copy(weights), { batch: b, height: h, width: w });
    const same = (await runWasm(upcast, { latents_scaled: lat.data })).image.data;
    const err = maxAbsDiff(out, ref.data), exact = maxAbsDiff(out, same);
    console.log(`${fx} vae case1 fp16 weights: max abs err vs golden ${err}, vs fp32 graph on upcast weights ${exact}`);
    expect(exact).toBeLessThanOrEqual(1e-6);
    expect(err).toBeLessThanOrEqual(1e-2);
  });
});

describe('VAE decoder variants', () => {
  it('old attention names (query/key/value/proj_attn, Linear and 1x1-conv shaped) and chunked attention give the same image', async () => {
    const fx = 'tiny-sdxl';
    const { config, weights } = await openComponent(fixtureDir(fx), 'vae');
    const lat = await golden(fx, GOLD, 'case1.latents_scaled');
    const ref = await golden(fx, GOLD, 'case1.image');
    const [b, , h, w] = lat.shape;
    const names: Record<string, string> = { to_q: 'query', to_k: 'key', to_v: 'value', 'to_out.0': 'proj_attn' };
    const rename = (conv: boolean) => (key: string, shape: number[]) => {
      const m = /^(decoder\.mid_block\.attentions\.0)\.(to_q|to_k|to_v|to_out\.0)\.(weight|bias)$/.exec(key);
      if (!m) return { key, shape };
      return { key: `${m[1]}.${names[m[2]]}.${m[3]}`, shape: conv && m[3] === 'weight' ? [...shape, 1, 1] : shape };
    };
    for (const [label, ws, maxBindingBytes] of [
      ['old Linear names', await f32Copy(weights, { rename: rename(false) }), undefined],
      ['old 1x1-conv names', await f32Copy(weights, { rename: rename(true) }), undefined],
      // 8x12 latents -> 96 tokens: 96*96*4 bytes of probabilities; 4 KiB forces 11 query chunks
      ['chunked attention', weights, 4096],
    ] as const) {
      const graph = buildVaeDecoderGraph(config as VaeConfig, ws, { batch: b, height: h, width: w, maxBindingBytes });
      if (maxBindingBytes) expect(graph.stats.opCounts.Softmax).toBe(Math.ceil(96 / Math.floor(4096 / (96 * 4))));
      const err = maxAbsDiff((await runWasm(graph, { latents_scaled: lat.data })).image.data, ref.data);
      console.log(`vae ${label}: max abs err ${err}`);
      expect(err, label).toBeLessThanOrEqual(1e-4);
    }
  });

  it.each(['tiny-sdxl', 'tiny-koala'] as const)('%s: row-banded up path (forced by a small maxBindingBytes) is exact', async (fx) => {
    const { config, weights } = await openComponent(fixtureDir(fx), 'vae');
    for (const c of ['case0', 'case1']) {
      const lat = await golden(fx, GOLD, `${c}.latents_scaled`);
      const ref = await golden(fx, GOLD, `${c}.image`);
      const [b, , h, w] = lat.shape;
      // largest up-path tensor is 16 ch x 64 x 96 x 4 B = 384 KiB (tiny-sdxl case1): 48 KiB -> 8 bands
      const graph = buildVaeDecoderGraph(config as VaeConfig, weights, { batch: b, height: h, width: w, maxBindingBytes: 48 * 1024 });
      expect(graph.stats.opCounts.ReduceSum).toBeGreaterThan(0);
      // every tensor fits, except the 3-channel output image itself (Concat of the bands)
      if (graph.stats.largest.bytes > 48 * 1024) expect(graph.stats.largest.shape).toEqual(ref.shape);
      const err = maxAbsDiff((await runWasm(graph, { latents_scaled: lat.data })).image.data, ref.data);
      console.log(`${fx} vae ${c} banded (${graph.stats.opCounts.Split} Splits): max abs err ${err}, largest tensor ${graph.stats.largest.bytes} B`);
      expect(err).toBeLessThanOrEqual(1e-4);
    }
  });

  it('batch 2 decodes both latents', async () => {
    const fx = 'tiny-koala';
    const { config, weights } = await openComponent(fixtureDir(fx), 'vae');
    const lat = await golden(fx, GOLD, 'case0.latents_scaled');
    const ref = await golden(fx, GOLD, 'case0.image');
    const graph = buildVaeDecoderGraph(config as VaeConfig, weights, { batch: 2, height: 8, width: 8 });
    const session = await createWasmSession(graph);
    const out = await runWasm(graph, { latents_scaled: [...lat.data, ...lat.data] }, session);
    await session.release();
    expect(maxAbsDiff(out.image.data, [...ref.data, ...ref.data])).toBeLessThanOrEqual(1e-4);
  });

  it('unsupported config fields and missing tensors are named', async () => {
    const { config, weights } = await openComponent(fixtureDir('tiny-koala'), 'vae');
    const c = config as VaeConfig;
    const o = { batch: 1, height: 8, width: 8 };
    expect(() => buildVaeDecoderGraph({ ...c, act_fn: 'gelu' }, weights, o)).toThrow('vae/config.json: unsupported "act_fn" "gelu"');
    expect(() => buildVaeDecoderGraph({ ...c, norm_type: 'spatial' }, weights, o)).toThrow('unsupported "norm_type" "spatial"');
    expect(() => buildVaeDecoderGraph({ ...c, up_block_types: ['UpDecoderBlock2D', 'UpDecoderBlock2D', 'UpDecoderBlock2D', 'AttnUpDecoderBlock2D'] }, weights, o))
      .toThrow('unsupported "up_block_types" "AttnUpDecoderBlock2D"');
    expect(() => buildVaeDecoderGraph({ ...c, layers_per_block: 2 }, weights, o))
      .toThrow('vae/diffusion_pytorch_model.safetensors: missing tensor "decoder.up_blocks.0.resnets.2.norm1.weight" (expected shape [12])');
    expect(() => buildVaeDecoderGraph({ ...c, latent_channels: 8 }, weights, o))
      .toThrow('vae/diffusion_pytorch_model.safetensors: tensor "post_quant_conv.weight" has shape [4,4,1,1], expected [4,8,1,1]');
  });
});
