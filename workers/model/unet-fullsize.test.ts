/**
 * Full-size U-Net graphs built on synthesized safetensors headers (no weight data) of the configs in
 * test/fixtures/koala-configs: exact parameter counts, every checkpoint tensor used, attention chunked
 * to the 128 MiB binding limit at 1024x1024, and clear errors for unsupported configs and bad weights.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FIXTURES } from './testing/fixtures.node.js';
import { synthWeights, type KeyList } from './testing/synth';
import { buildUnetGraph, DEFAULT_MAX_BINDING_BYTES, planUnet, unusedWeights, type UnetConfig } from './unet';

const load = <T>(f: string): T => JSON.parse(readFileSync(resolve(FIXTURES, 'koala-configs', f), 'utf8')) as T;

const MODELS = [
  ['koala-700m', 782_822_724],
  ['koala-1b', 1_161_184_324],
  ['sdxl-base', 2_567_463_684],
] as const;

describe.each(MODELS)('%s U-Net (synthesized fp16 header)', (name, params) => {
  const config = load<UnetConfig>(`${name}-unet.json`);
  const keys = load<KeyList>(`${name}-unet.keys.json`);

  it(`has exactly ${params.toLocaleString('en')} parameters, every tensor of the key list used`, async () => {
    expect(keys.parameters).toBe(params);
    const weights = await synthWeights(keys, { name: 'diffusion_pytorch_model.fp16.safetensors' });
    const t0 = performance.now();
    const graph = buildUnetGraph(config, weights, { batch: 2, height: 128, width: 128, compute: 'float16' });
    const ms = performance.now() - t0;
    console.log(`[unet] ${name}: built in ${ms.toFixed(0)} ms, ${graph.model.length} graph bytes, ${graph.stats.nodes} nodes, ${graph.stats.params} params, ${(graph.report.flops / 2 / 1e12).toFixed(3)} TFLOP per image`);
    expect(unusedWeights(graph, weights)).toEqual([]);
    expect(graph.report.usedWeights.size).toBe(Object.keys(keys.tensors).length);
    expect(graph.stats.params).toBe(params);
    // fp16 file, fp16 compute: no weight needs a Cast
    expect(graph.stats.weightBytes).toBe(params * 2);
  });

  it('at 1024x1024 (latent 128x128) chunks every attention to the 128 MiB binding limit', async () => {
    const weights = await synthWeights(keys);
    for (const [batch, compute] of [[1, 'float16'], [2, 'float16'], [2, 'float32']] as const) {
      const graph = buildUnetGraph(config, weights, { batch, height: 128, width: 128, compute });
      const r = graph.report;
      const bytes = compute === 'float16' ? 2 : 4;
      const heads0 = planUnet(config).down.find((b) => b.transformerDepths.length)!.heads;
      // the first attention level: 64x64 = 4096 tokens; unchunked probabilities would not fit
      expect(batch * heads0 * 4096 * 4096 * bytes).toBeGreaterThan(DEFAULT_MAX_BINDING_BYTES);
      const selfScores = r.attentionScores.filter((s) => s.shape[3] === 4096);
      expect(selfScores.length).toBeGreaterThan(0);
      expect(selfScores.every((s) => s.shape[2] < 4096)).toBe(true);
      const worst = Math.max(...r.attentionMatMuls.map((m) => m.bytes));
      expect(worst).toBeLessThanOrEqual(DEFAULT_MAX_BINDING_BYTES);
      // no other tensor of the graph exceeds the limit either (feed-forward chunked too)
      expect(r.largest.bytes).toBeLessThanOrEqual(DEFAULT_MAX_BINDING_BYTES);
      console.log(`[unet] ${name} B=${batch} ${compute}: ${selfScores.length} self-attention score chunks at 4096 tokens, largest attention MatMul ${(worst / 2 ** 20).toFixed(1)} MiB, largest tensor ${(r.largest.bytes / 2 ** 20).toFixed(1)} MiB (${r.largest.op} ${r.largest.name.split('/')[0]})`);
    }
  });
});

describe('long prompts at full size: the U-Net takes 3 chunks of text (lpw: 77 + 77 + 40 = 194 tokens)', () => {
  it.each(MODELS.map((m) => m[0]))('%s at 1024², B=2, fp16: cross-attention spans 194 keys, every tensor within the binding limit', async (name) => {
    const config = load<UnetConfig>(`${name}-unet.json`);
    const weights = await synthWeights(load<KeyList>(`${name}-unet.keys.json`));
    const textTokens = 77 + 77 + 40;
    const graph = buildUnetGraph(config, weights, { batch: 2, height: 128, width: 128, compute: 'float16', textTokens });
    expect(graph.inputs.find((i) => i.name === 'encoder_hidden_states')!.shape).toEqual([2, textTokens, 2048]);
    expect(graph.outputs).toEqual([{ name: 'out', dtype: 'float32', shape: [2, 4, 128, 128] }]);
    const cross = graph.report.attentionScores.filter((s) => s.shape[3] === textTokens);
    expect(cross.length).toBeGreaterThan(0);
    expect(graph.report.attentionScores.every((s) => s.shape[3] === textTokens || s.shape[3] === s.shape[2] || s.shape[3] >= 1024)).toBe(true);
    expect(graph.report.largest.bytes).toBeLessThanOrEqual(DEFAULT_MAX_BINDING_BYTES);
    // the 77-token graph of the same model differs only in that length
    const plain = buildUnetGraph(config, weights, { batch: 2, height: 128, width: 128, compute: 'float16' });
    expect(plain.report.attentionScores.filter((s) => s.shape[3] === 77).length).toBe(cross.length);
    expect(plain.stats.params).toBe(graph.stats.params);
  });
});

describe('U-Net config and weight errors', () => {
  const config = load<UnetConfig>('koala-700m-unet.json');
  const keys = load<KeyList>('koala-700m-unet.keys.json');
  const opts = { batch: 1, height: 16, width: 16, compute: 'float32' as const };

  it.each([
    ['class_embed_type', 'timestep'],
    ['addition_embed_type', 'text'],
    ['resnet_time_scale_shift', 'scale_shift'],
    ['time_cond_proj_dim', 256],
    ['mid_block_type', 'UNetMidBlock2DSimpleCrossAttn'],
    ['center_input_sample', true],
    ['only_cross_attention', true],
    ['act_fn', 'gelu'],
    ['downsample_padding', 0],
  ])('unsupported %s = %j is an error naming the field', async (field, value) => {
    const weights = await synthWeights(keys);
    expect(() => buildUnetGraph({ ...config, [field]: value }, weights, opts)).toThrow(new RegExp(`"${field}"`));
  });

  it('an unsupported block type names the field and the value', () => {
    expect(() => planUnet({ ...config, down_block_types: ['DownBlock2D', 'SimpleCrossAttnDownBlock2D', 'CrossAttnDownBlock2D'] }))
      .toThrow(/"down_block_types"\[1\] = "SimpleCrossAttnDownBlock2D" is not supported/);
  });

  it('a missing tensor names the file and the tensor', async () => {
    const t = { ...keys.tensors };
    delete t['up_blocks.0.attentions.1.transformer_blocks.3.attn2.to_v.weight'];
    const weights = await synthWeights({ ...keys, tensors: t }, { name: 'diffusion_pytorch_model.safetensors' });
    expect(() => buildUnetGraph(config, weights, opts)).toThrow(/diffusion_pytorch_model\.safetensors: missing tensor "up_blocks\.0\.attentions\.1\.transformer_blocks\.3\.attn2\.to_v\.weight"/);
  });

  it('a wrong shape names the file, tensor, found and expected shapes', async () => {
    const weights = await synthWeights({ ...keys, tensors: { ...keys.tensors, 'down_blocks.1.resnets.0.conv1.weight': [640, 320, 1, 1] } }, { name: 'u.safetensors' });
    expect(() => buildUnetGraph(config, weights, opts)).toThrow(/u\.safetensors: tensor "down_blocks\.1\.resnets\.0\.conv1\.weight" has shape \[640,320,1,1\], expected \[640,320,3,3\]/);
  });

  it('a config that disagrees with the checkpoint (transformer depth) is caught by the key check', async () => {
    const weights = await synthWeights(keys);
    const deeper = buildUnetGraph({ ...config, transformer_layers_per_block: [1, 2, 4] }, weights, opts);
    expect(unusedWeights(deeper, weights).some((k) => k.startsWith('down_blocks.2.attentions.0.transformer_blocks.4.'))).toBe(true);
  });

  it('transformer_layers_per_block as an int, and as per-layer lists with reverse_transformer_layers_per_block', () => {
    const sdxl = load<UnetConfig>('sdxl-base-unet.json');
    const a = planUnet({ ...sdxl, transformer_layers_per_block: 3 });
    expect(a.down.map((b) => b.transformerDepths)).toEqual([[], [3, 3], [3, 3]]);
    expect(a.mid!.transformerDepths).toEqual([3]);
    expect(a.up.map((b) => b.transformerDepths)).toEqual([[3, 3, 3], [3, 3, 3], []]);
    const b = planUnet({ ...sdxl, transformer_layers_per_block: [1, [2, 3], [4, 5]], reverse_transformer_layers_per_block: [[6, 7, 8], [9, 10, 11], [1, 1, 1]] });
    expect(b.down.map((x) => x.transformerDepths)).toEqual([[], [2, 3], [4, 5]]);
    expect(b.mid!.transformerDepths).toEqual([4]);
    expect(b.up.map((x) => x.transformerDepths)).toEqual([[6, 7, 8], [9, 10, 11], []]);
    expect(() => planUnet({ ...sdxl, transformer_layers_per_block: [1, [2, 3], [4, 5]] })).toThrow(/"reverse_transformer_layers_per_block" must be given/);
    // the head-count quirk: attention_head_dim is the head count unless num_attention_heads is set
    expect(planUnet(sdxl).down.map((x) => x.heads)).toEqual([5, 10, 20]);
    expect(planUnet({ ...sdxl, num_attention_heads: [2, 4, 8] }).up.map((x) => x.heads)).toEqual([8, 4, 2]);
  });
});
