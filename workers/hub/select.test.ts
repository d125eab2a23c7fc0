import { describe, expect, it } from 'vitest';
import { parseIndexName, parseWeightName, selectPipelineFiles, shardsFromIndex } from './select';

const modelIndex = {
  _class_name: 'StableDiffusionXLPipeline',
  force_zeros_for_empty_prompt: true,
  scheduler: ['diffusers', 'EulerDiscreteScheduler'],
  text_encoder: ['transformers', 'CLIPTextModel'],
  tokenizer: ['transformers', 'CLIPTokenizer'],
  unet: ['diffusers', 'UNet2DConditionModel'],
  vae: ['diffusers', 'AutoencoderKL'],
  feature_extractor: [null, null],
};

const repo = [
  'model_index.json',
  'README.md',
  'sd_xl_base_1.0.safetensors',
  'scheduler/scheduler_config.json',
  'text_encoder/config.json',
  'text_encoder/model.safetensors',
  'text_encoder/model.fp16.safetensors',
  'text_encoder/pytorch_model.bin',
  'text_encoder/model.onnx',
  'tokenizer/merges.txt',
  'tokenizer/vocab.json',
  'tokenizer/special_tokens_map.json',
  'tokenizer/tokenizer_config.json',
  'unet/config.json',
  'unet/diffusion_pytorch_model.safetensors.index.json',
  'unet/diffusion_pytorch_model-00001-of-00002.safetensors',
  'unet/diffusion_pytorch_model-00002-of-00002.safetensors',
  'unet/diffusion_pytorch_model.safetensors.index.fp16.json',
  'unet/diffusion_pytorch_model.fp16-00001-of-00002.safetensors',
  'unet/diffusion_pytorch_model.fp16-00002-of-00002.safetensors',
  'unet/diffusion_pytorch_model.fp16.bin',
  'vae/config.json',
  'vae/diffusion_pytorch_model.safetensors',
  'vae/diffusion_pytorch_model.bin',
];

describe('weight names', () => {
  it('parses variants and shards', () => {
    expect(parseWeightName('model.fp16.safetensors')).toEqual({ stem: 'model', variant: 'fp16', shard: undefined });
    expect(parseWeightName('diffusion_pytorch_model.safetensors')).toEqual({ stem: 'diffusion_pytorch_model', variant: undefined, shard: undefined });
    expect(parseWeightName('diffusion_pytorch_model.fp16-00001-of-00002.safetensors')).toEqual({ stem: 'diffusion_pytorch_model', variant: 'fp16', shard: '00001-of-00002' });
    expect(parseWeightName('model.bin')).toBeUndefined();
    expect(parseIndexName('diffusion_pytorch_model.safetensors.index.fp16.json')).toEqual({ stem: 'diffusion_pytorch_model', variant: 'fp16' });
    expect(parseIndexName('diffusion_pytorch_model.fp16.safetensors.index.json')).toEqual({ stem: 'diffusion_pytorch_model', variant: 'fp16' });
    expect(parseIndexName('model.safetensors.index.json')).toEqual({ stem: 'model', variant: undefined });
  });
});

describe('selectPipelineFiles', () => {
  it('takes the fp16 variant where it exists, fp32 elsewhere, safetensors only', () => {
    const sel = selectPipelineFiles(repo, modelIndex, 'fp16');
    expect(sel.sideFiles).toEqual([
      'model_index.json',
      'scheduler/scheduler_config.json',
      'text_encoder/config.json',
      'tokenizer/merges.txt',
      'tokenizer/special_tokens_map.json',
      'tokenizer/tokenizer_config.json',
      'tokenizer/vocab.json',
      'unet/config.json',
      'vae/config.json',
    ]);
    expect(sel.weights).toEqual({
      text_encoder: { kind: 'single', path: 'text_encoder/model.fp16.safetensors', variant: 'fp16' },
      unet: { kind: 'sharded', path: 'unet/diffusion_pytorch_model.safetensors.index.fp16.json', variant: 'fp16' },
      vae: { kind: 'single', path: 'vae/diffusion_pytorch_model.safetensors', variant: undefined },
    });
  });

  it('takes fp32 files when no variant is asked', () => {
    const sel = selectPipelineFiles(repo, modelIndex, undefined);
    expect(sel.weights.text_encoder.path).toBe('text_encoder/model.safetensors');
    expect(sel.weights.unet.path).toBe('unet/diffusion_pytorch_model.safetensors.index.json');
  });

  it('says when a component has only .bin weights', () => {
    const only = repo.filter((p) => p !== 'vae/diffusion_pytorch_model.safetensors');
    expect(() => selectPipelineFiles(only, modelIndex, 'fp16')).toThrow(/vae\/ has no .safetensors weights \(found diffusion_pytorch_model.bin; only .safetensors is read\)/);
  });

  it('says when only a variant exists and fp32 was asked', () => {
    const only = repo.filter((p) => p !== 'text_encoder/model.safetensors');
    expect(() => selectPipelineFiles(only, modelIndex, undefined)).toThrow(/text_encoder\/ has only fp16 weights/);
  });

  it('names a missing component folder', () => {
    expect(() => selectPipelineFiles(['model_index.json'], modelIndex, 'fp16')).toThrow(/component "scheduler" but the repo has no scheduler\/ folder/);
  });

  it('lists shards from an index', () => {
    const shards = shardsFromIndex('unet/diffusion_pytorch_model.safetensors.index.fp16.json', {
      metadata: { total_size: 10 },
      weight_map: { a: 'diffusion_pytorch_model.fp16-00002-of-00002.safetensors', b: 'diffusion_pytorch_model.fp16-00001-of-00002.safetensors', c: 'diffusion_pytorch_model.fp16-00001-of-00002.safetensors' },
    });
    expect(shards).toEqual(['unet/diffusion_pytorch_model.fp16-00001-of-00002.safetensors', 'unet/diffusion_pytorch_model.fp16-00002-of-00002.safetensors']);
  });
});
