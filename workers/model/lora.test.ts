/**
 * LoRA keys and fusing on hand-made files: the fused weight is checked against W + s·(α/r)·up·down
 * computed here in float64, for linear and conv (LoCon) weights, F32 and F16 models, several LoRAs on
 * one weight; and every refusal (SD 1.5 keys, a rank or shape that does not fit, NaN, not safetensors,
 * a partial match) happens before anything is fused. The diffusers goldens are in lora-goldens.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { candidateKeys, groupLoraKeys, LoraFormatError, sgmNames } from './lora-keys';
import { fuseLoras, LoraPartialError, openLora, type LoraTargets } from './lora';
import { bytesSource, encodeSafetensors, floatToHalf, halfToFloat, readSafetensorsHeader, readTensorF32, type TensorToEncode } from './safetensors';
import { WeightIndex } from './weights';

function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32 - 0.5;
  };
}
const rand = (n: number, r: () => number, k = 1) => Float32Array.from({ length: n }, () => r() * k);
const f32 = (shape: number[], data: Float32Array): TensorToEncode => ({ dtype: 'F32', shape, data });
const f16 = (shape: number[], data: Float32Array): TensorToEncode => ({ dtype: 'F16', shape, data: Uint16Array.from(data, floatToHalf) });

async function index(tensors: Record<string, TensorToEncode>, name: string): Promise<WeightIndex> {
  return WeightIndex.open([bytesSource(encodeSafetensors(tensors), name)]);
}

const r = rng(1);
const W = {
  q: rand(6 * 4, r),
  k: rand(6 * 4, r),
  conv: rand(5 * 3 * 3 * 3, r),
  te: rand(4 * 4, r),
};

async function model(dtype: 'F32' | 'F16' = 'F32'): Promise<LoraTargets> {
  const t = dtype === 'F32' ? f32 : f16;
  return {
    unet: await index(
      {
        'down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q.weight': t([6, 4], W.q),
        'down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_k.weight': t([6, 4], W.k),
        'down_blocks.0.resnets.0.conv1.weight': t([5, 3, 3, 3], W.conv),
        'down_blocks.0.resnets.0.conv1.bias': t([5], rand(5, r)),
      },
      `unet-${dtype}.safetensors`,
    ),
    text_encoder: await index({ 'text_model.encoder.layers.0.self_attn.q_proj.weight': t([4, 4], W.te) }, 'te1.safetensors'),
    text_encoder_2: await index({ 'text_model.encoder.layers.0.mlp.fc1.weight': t([4, 4], W.te) }, 'te2.safetensors'),
    layersPerBlock: 2,
  };
}

/** W + factor·(up·down) in float64, up [out, r], down [r, inner]. */
function expectFused(base: Float32Array, up: Float32Array, down: Float32Array, rank: number, factor: number): Float64Array {
  const out = up.length / rank;
  const inner = down.length / rank;
  const w = Float64Array.from(base);
  for (let o = 0; o < out; o++) for (let i = 0; i < inner; i++) {
    let acc = 0;
    for (let k = 0; k < rank; k++) acc += up[o * rank + k]! * down[k * inner + i]!;
    w[o * inner + i]! += factor * acc;
  }
  return w;
}

const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
};

async function fusedTensor(idx: WeightIndex, name: string): Promise<Float32Array> {
  const e = idx.get(name)!;
  return readTensorF32(e.file, e.info.name);
}

const lr = rng(7);
const kohya = {
  qDown: rand(2 * 4, lr),
  qUp: rand(6 * 2, lr),
  cDown: rand(2 * 3 * 3 * 3, lr),
  cUp: rand(5 * 2, lr),
  teDown: rand(2 * 4, lr),
  teUp: rand(4 * 2, lr),
};
function kohyaFile(extra: Record<string, TensorToEncode> = {}): Uint8Array {
  return encodeSafetensors({
    // SGM name of down_blocks.1.attentions.0 for layers_per_block 2 (input_blocks.4.1)
    'lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q.lora_down.weight': f32([2, 4], kohya.qDown),
    'lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q.lora_up.weight': f32([6, 2], kohya.qUp),
    'lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q.alpha': f32([], Float32Array.of(1)),
    'lora_unet_down_blocks_0_resnets_0_conv1.lora_down.weight': f32([2, 3, 3, 3], kohya.cDown),
    'lora_unet_down_blocks_0_resnets_0_conv1.lora_up.weight': f32([5, 2, 1, 1], kohya.cUp),
    'lora_unet_down_blocks_0_resnets_0_conv1.alpha': f32([], Float32Array.of(4)),
    'lora_te1_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight': f32([2, 4], kohya.teDown),
    'lora_te1_text_model_encoder_layers_0_self_attn_q_proj.lora_up.weight': f32([4, 2], kohya.teUp),
    ...extra,
  });
}
const pr = rng(11);
const peft = { down: rand(3 * 4, pr), up: rand(6 * 3, pr), teDown: rand(3 * 4, pr), teUp: rand(4 * 3, pr) };
function peftFile(): Uint8Array {
  return encodeSafetensors({
    'unet.down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q.lora_A.weight': f32([3, 4], peft.down),
    'unet.down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q.lora_B.weight': f32([6, 3], peft.up),
    'text_encoder_2.text_model.encoder.layers.0.mlp.fc1.lora_A.weight': f32([3, 4], peft.teDown),
    'text_encoder_2.text_model.encoder.layers.0.mlp.fc1.lora_B.weight': f32([4, 3], peft.teUp),
  });
}
const Q = 'down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q.weight';

describe('LoRA key layouts', () => {
  it('groups kohya and PEFT modules, with alphas', () => {
    const k = groupLoraKeys(['lora_unet_a.lora_down.weight', 'lora_unet_a.lora_up.weight', 'lora_unet_a.alpha']);
    expect(k).toEqual({ layout: 'kohya', modules: [{ prefix: 'lora_unet_a', down: 'lora_unet_a.lora_down.weight', up: 'lora_unet_a.lora_up.weight', alpha: 'lora_unet_a.alpha' }], other: [] });
    const p = groupLoraKeys(['unet.x.lora_A.weight', 'unet.x.lora_B.weight', 'text_encoder.y.lora_linear_layer.down.weight', 'text_encoder.y.lora_linear_layer.up.weight']);
    expect(p.layout).toBe('peft');
    expect(p.modules.map((m) => m.prefix)).toEqual(['unet.x', 'text_encoder.y']);
  });

  it('refuses SD 1.x files, mixed layouts, files without LoRA keys, and unpaired weights', () => {
    expect(() => groupLoraKeys(['lora_te_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight'])).toThrow(/Stable Diffusion 1.x\/2.x/);
    expect(() => groupLoraKeys(['lora_unet_a.lora_down.weight', 'lora_unet_a.lora_up.weight', 'unet.b.lora_A.weight'])).toThrow(/mixes kohya/);
    expect(() => groupLoraKeys(['model.diffusion_model.x.weight'])).toThrow(/No LoRA keys found.*model.diffusion_model.x.weight/);
    expect(() => groupLoraKeys(['lora_unet_a.lora_down.weight'])).toThrow(/has no matching lora_unet_a.lora_up.weight/);
    expect(() => groupLoraKeys(['lora_unet_a.lora_up.weight', 'lora_unet_b.lora_down.weight', 'lora_unet_b.lora_up.weight'])).toThrow(/lora_unet_a.lora_up.weight has no matching down/);
  });

  it('names U-Net modules the way the original SDXL code does, for SDXL (2 layers per block) and KOALA (1)', () => {
    expect(sgmNames('down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q', 2)).toEqual(['input_blocks.4.1.transformer_blocks.0.attn1.to_q']);
    expect(sgmNames('down_blocks.2.attentions.1.proj_in', 2)).toEqual(['input_blocks.8.1.proj_in']);
    expect(sgmNames('down_blocks.0.resnets.1.conv1', 2)).toEqual(['input_blocks.2.0.in_layers.2']);
    expect(sgmNames('down_blocks.0.downsamplers.0.conv', 2)).toEqual(['input_blocks.3.0.op']);
    expect(sgmNames('mid_block.attentions.0.proj_out', 2)).toEqual(['middle_block.1.proj_out']);
    expect(sgmNames('mid_block.resnets.1.time_emb_proj', 2)).toEqual(['middle_block.2.emb_layers.1']);
    expect(sgmNames('up_blocks.1.attentions.2.transformer_blocks.0.attn2.to_k', 2)).toEqual(['output_blocks.5.1.transformer_blocks.0.attn2.to_k']);
    expect(sgmNames('up_blocks.0.upsamplers.0.conv', 2)).toEqual(['output_blocks.2.1.conv', 'output_blocks.2.2.conv']);
    // KOALA-700M: one resnet per down block
    expect(sgmNames('down_blocks.2.attentions.0.proj_in', 1)).toEqual(['input_blocks.5.1.proj_in']);
    expect(sgmNames('up_blocks.1.attentions.1.proj_out', 1)).toEqual(['output_blocks.3.1.proj_out']);
    expect(candidateKeys('text_encoder_2', 'text_model.encoder.layers.3.mlp.fc2')).toEqual([
      'text_encoder_2.text_model.encoder.layers.3.mlp.fc2',
      'lora_te2_text_model_encoder_layers_3_mlp_fc2',
    ]);
  });
});

describe('fusing LoRAs into weights', () => {
  it('kohya (SGM names, alpha, conv LoCon, text encoder) = W + s·(α/r)·up·down, other tensors untouched', async () => {
    const targets = await model();
    const lora = await openLora(bytesSource(kohyaFile(), 'k.safetensors'), targets, 'k');
    expect(lora.report).toMatchObject({ layout: 'kohya', modules: 3, matched: 3, perComponent: { unet: 2, text_encoder: 1, text_encoder_2: 0 }, unmatchedCount: 0 });
    const fused = await fuseLoras(targets, [{ lora, scale: 0.7 }]);
    expect(maxDiff(await fusedTensor(fused.unet, Q), expectFused(W.q, kohya.qUp, kohya.qDown, 2, 0.7 * (1 / 2)))).toBeLessThan(1e-6);
    expect(maxDiff(await fusedTensor(fused.unet, 'down_blocks.0.resnets.0.conv1.weight'), expectFused(W.conv, kohya.cUp, kohya.cDown, 2, 0.7 * (4 / 2)))).toBeLessThan(1e-6);
    expect(maxDiff(await fusedTensor(fused.text_encoder, 'text_model.encoder.layers.0.self_attn.q_proj.weight'), expectFused(W.te, kohya.teUp, kohya.teDown, 2, 0.7))).toBeLessThan(1e-6);
    // not changed: same entries (same file) as before
    expect(fused.unet.get('down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_k.weight')).toBe(targets.unet.get('down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_k.weight'));
    expect(fused.text_encoder_2).toBe(targets.text_encoder_2);
    // and the change is real: far above rounding
    expect(maxDiff(await fusedTensor(fused.unet, Q), W.q)).toBeGreaterThan(1e-3);
  });

  it('PEFT layout (no alpha: factor 1) and two LoRAs on one weight add up; F16 weights stay F16', async () => {
    for (const dtype of ['F32', 'F16'] as const) {
      const targets = await model(dtype);
      const a = await openLora(bytesSource(peftFile(), 'p.safetensors'), targets, 'p');
      const b = await openLora(bytesSource(kohyaFile(), 'k.safetensors'), targets, 'k');
      expect(a.report).toMatchObject({ layout: 'peft', matched: 2, perComponent: { unet: 1, text_encoder: 0, text_encoder_2: 1 } });
      const fused = await fuseLoras(targets, [
        { lora: a, scale: 1.5 },
        { lora: b, scale: 0.5 },
      ]);
      const base = dtype === 'F16' ? Float32Array.from(W.q, (v) => halfToFloat(floatToHalf(v))) : W.q;
      const want = expectFused(Float32Array.from(expectFused(base, peft.up, peft.down, 3, 1.5)), kohya.qUp, kohya.qDown, 2, 0.5 * 0.5);
      const got = await fusedTensor(fused.unet, Q);
      expect(fused.unet.get(Q)!.info.dtype).toBe(dtype);
      expect(maxDiff(got, want)).toBeLessThan(dtype === 'F16' ? 2e-3 : 1e-6);
      expect(maxDiff(await fusedTensor(fused.text_encoder_2, 'text_model.encoder.layers.0.mlp.fc1.weight'), expectFused(dtype === 'F16' ? Float32Array.from(W.te, (v) => halfToFloat(floatToHalf(v))) : W.te, peft.teUp, peft.teDown, 3, 1.5))).toBeLessThan(dtype === 'F16' ? 2e-3 : 1e-6);
    }
  });

  it('fuses only the components asked for', async () => {
    const targets = await model();
    const lora = await openLora(bytesSource(kohyaFile(), 'k.safetensors'), targets, 'k');
    const fused = await fuseLoras(targets, [{ lora, scale: 1 }], ['text_encoder']);
    expect(fused.unet).toBe(targets.unet);
    expect(fused.text_encoder).not.toBe(targets.text_encoder);
  });

  it('refuses before fusing: partial matches (unless allowed), shapes of another architecture, rank mismatch, NaN, not safetensors', async () => {
    const targets = await model();
    const partial = await openLora(
      bytesSource(
        kohyaFile({
          'lora_unet_down_blocks_5_attentions_0_proj_in.lora_down.weight': f32([2, 4], rand(8, lr)),
          'lora_unet_down_blocks_5_attentions_0_proj_in.lora_up.weight': f32([6, 2], rand(12, lr)),
        }),
        'partial.safetensors',
      ),
      targets,
      'partial',
    );
    expect(partial.report).toMatchObject({ modules: 4, matched: 3, unmatchedCount: 1, unmatched: ['lora_unet_down_blocks_5_attentions_0_proj_in'] });
    await expect(fuseLoras(targets, [{ lora: partial, scale: 1 }])).rejects.toThrow(LoraPartialError);
    await expect(fuseLoras(targets, [{ lora: partial, scale: 1 }])).rejects.toThrow(/only 3 of 4 modules match.*down_blocks_5/);
    const ok = await fuseLoras(targets, [{ lora: partial, scale: 1, allowPartial: true }]);
    expect(ok.unet).not.toBe(targets.unet);

    const wrongShape = encodeSafetensors({
      'lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn1_to_q.lora_down.weight': f32([2, 768], rand(1536, lr)),
      'lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn1_to_q.lora_up.weight': f32([6, 2], rand(12, lr)),
    });
    await expect(openLora(bytesSource(wrongShape, 'sd15.safetensors'), targets, 'sd15')).rejects.toThrow(/\[6, 4\] but its weights make \[6, 768\].*another architecture/);
    const rank = encodeSafetensors({
      'lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn1_to_q.lora_down.weight': f32([2, 4], rand(8, lr)),
      'lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn1_to_q.lora_up.weight': f32([6, 3], rand(18, lr)),
    });
    await expect(openLora(bytesSource(rank, 'rank.safetensors'), targets, 'rank')).rejects.toThrow(/rank 2 vs 3/);
    const nanDown = rand(8, lr);
    nanDown[5] = NaN;
    const nan = await openLora(
      bytesSource(
        encodeSafetensors({
          'lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn1_to_q.lora_down.weight': f32([2, 4], nanDown),
          'lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn1_to_q.lora_up.weight': f32([6, 2], rand(12, lr)),
        }),
        'nan.safetensors',
      ),
      targets,
      'nan',
    );
    await expect(fuseLoras(targets, [{ lora: nan, scale: 1 }])).rejects.toThrow(/lora_down.weight has a NaN value at index 5/);
    await expect(openLora(bytesSource(new TextEncoder().encode('<html>not a lora</html>'), 'page.html'), targets, 'page')).rejects.toThrow(LoraFormatError);
    await expect(openLora(bytesSource(new TextEncoder().encode('<html>not a lora</html>'), 'page.html'), targets, 'page')).rejects.toThrow(/page is not a safetensors LoRA file/);
    const none = await openLora(
      bytesSource(
        encodeSafetensors({
          'lora_unet_nothing_here.lora_down.weight': f32([2, 4], rand(8, lr)),
          'lora_unet_nothing_here.lora_up.weight': f32([6, 2], rand(12, lr)),
        }),
        'none.safetensors',
      ),
      targets,
      'none',
    );
    await expect(fuseLoras(targets, [{ lora: none, scale: 1, allowPartial: true }])).rejects.toThrow(/none of its 1 modules/);
  });

  it('reads the fused file back as a safetensors overlay (the graphs mount it as external data)', async () => {
    const targets = await model();
    const lora = await openLora(bytesSource(kohyaFile(), 'k.safetensors'), targets, 'k');
    const fused = await fuseLoras(targets, [{ lora, scale: 1 }]);
    const e = fused.unet.get(Q)!;
    expect(e.file).not.toBe(targets.unet.get(Q)!.file);
    const again = await readSafetensorsHeader(e.file.source);
    expect([...again.tensors.keys()].sort()).toEqual(['down_blocks.0.resnets.0.conv1.weight', Q]);
    expect(fused.unet.names().length).toBe(targets.unet.names().length);
  });
});
