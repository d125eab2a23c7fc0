import { describe, expect, it } from 'vitest';
import { EngineError } from '../protocol';
import { assertLimits, checkLimits, probeCapabilities, requirements } from './capabilities';

const MiB = 2 ** 20;

function fakeGpu(adapter: Partial<GPUAdapter> | null | Error): GPU {
  return {
    requestAdapter: async () => {
      if (adapter instanceof Error) throw adapter;
      return adapter as GPUAdapter | null;
    },
  } as unknown as GPU;
}

function fakeAdapter(opts: { features?: string[]; maxBufferSize: number; maxStorageBufferBindingSize: number; info?: Partial<GPUAdapterInfo> }): Partial<GPUAdapter> {
  return {
    features: new Set(opts.features ?? []) as unknown as GPUSupportedFeatures,
    limits: { maxBufferSize: opts.maxBufferSize, maxStorageBufferBindingSize: opts.maxStorageBufferBindingSize } as GPUSupportedLimits,
    info: { vendor: 'nvidia', architecture: 'ada', device: '', description: 'NVIDIA GeForce RTX 4090', ...opts.info } as GPUAdapterInfo,
  };
}

describe('probeCapabilities', () => {
  it('reports name, shader-f16 and limits of the adapter', async () => {
    const caps = await probeCapabilities(fakeGpu(fakeAdapter({ features: ['shader-f16'], maxBufferSize: 4 * 1024 * MiB, maxStorageBufferBindingSize: 2048 * MiB })));
    expect(caps).toMatchObject({ webgpu: true, shaderF16: true, adapterName: 'nvidia ada NVIDIA GeForce RTX 4090', maxBufferSize: 4096 * MiB, maxStorageBufferBindingSize: 2048 * MiB });
    expect(caps.problem).toBeUndefined();
  });
  it('no shader-f16 on an adapter without the feature', async () => {
    const caps = await probeCapabilities(fakeGpu(fakeAdapter({ maxBufferSize: 1024 * MiB, maxStorageBufferBindingSize: 128 * MiB, info: { vendor: 'google', architecture: 'swiftshader', description: '' } })));
    expect(caps.shaderF16).toBe(false);
    expect(caps.adapterName).toBe('google swiftshader');
  });
  it('no navigator.gpu, a null adapter, or a throwing request: webgpu false with the reason', async () => {
    expect(await probeCapabilities(undefined)).toMatchObject({ webgpu: false, shaderF16: false, problem: expect.stringMatching(/navigator\.gpu is missing/) });
    expect(await probeCapabilities(fakeGpu(null))).toMatchObject({ webgpu: false, problem: expect.stringMatching(/no GPU adapter/) });
    expect(await probeCapabilities(fakeGpu(new Error('boom')))).toMatchObject({ webgpu: false, problem: expect.stringMatching(/failed: boom/) });
  });
});

describe('requirements', () => {
  it('U-Net, VAE and embedding sizes at 1024² fp16 with CFG', () => {
    const r = requirements('koala-700m', 1024, 1024, 'fp16');
    const by = (re: RegExp) => r.items.find((i) => re.test(i.what))!.bytes;
    expect(by(/^U-Net activation/)).toBe(2 * 960 * 128 * 128 * 2);
    expect(by(/^U-Net GroupNorm/)).toBe(2 * 960 * 128 * 128 * 4);
    expect(by(/^VAE decoder activation/)).toBe(256 * 1024 * 1024 * 4); // 1 GiB
    expect(by(/text_encoder_2 token/)).toBe(49408 * 1280 * 2);
    expect(by(/largest U-Net weight/)).toBe(10240 * 1280 * 2);
    expect(r.largestBuffer).toBe(1024 * MiB);
    expect(r.largestBinding).toBe(1024 * MiB);
  });
  it('scales with size, batch and precision; fp32 doubles the embedding tables', () => {
    const a = requirements('sdxl-base', 512, 512, 'fp16', { batch: 2, cfg: false });
    expect(a.items.find((i) => /^U-Net activation/.test(i.what))!.bytes).toBe(2 * 960 * 64 * 64 * 2);
    const f32 = requirements('koala-1b', 512, 512, 'fp32');
    expect(f32.items.find((i) => /text_encoder_2 token/.test(i.what))!.bytes).toBe(49408 * 1280 * 4);
    expect(requirements('koala-700m', 512, 512, 'fp16', { textEncodersOnGpu: false }).items.some((i) => /token embedding/.test(i.what))).toBe(false);
  });
  it('rejects sizes that are not multiples of 8 and unknown models', () => {
    expect(() => requirements('koala-700m', 1000, 1001, 'fp16')).toThrow(/multiples of 8, got 1000×1001/);
    expect(() => requirements('sd15' as never, 512, 512, 'fp16')).toThrow(/unknown model kind "sd15"/);
  });
});

describe('checkLimits', () => {
  const big = { adapterName: 'RTX 4090', maxBufferSize: 4096 * MiB, maxStorageBufferBindingSize: 4096 * MiB - 4 };
  const small = { adapterName: 'Mesa lavapipe', maxBufferSize: 4096 * MiB, maxStorageBufferBindingSize: 128 * MiB };
  it('fits on a large adapter', () => {
    expect(checkLimits(big, 'koala-700m', 1024, 1024, 'fp16')).toBeUndefined();
    expect(() => assertLimits(big, 'koala-700m', 1024, 1024, 'fp16')).not.toThrow();
  });
  it('names the tensor, both sizes and the largest size that fits when the binding limit is too low', () => {
    const msg = checkLimits(small, 'koala-700m', 1024, 1024, 'fp16')!;
    expect(msg).toBe(
      'Mesa lavapipe allows maxStorageBufferBindingSize = 128 MiB, but 1024×1024 fp16 needs 1024 MiB for the VAE decoder activation (256 channels at 1024×1024, fp32). Choose 320×320 or smaller.',
    );
    // 320²: VAE 256·320²·4 = 100 MiB, fits; 384²: 144 MiB, does not
    expect(checkLimits(small, 'koala-700m', 320, 320, 'fp16')).toBeUndefined();
    expect(checkLimits(small, 'koala-700m', 384, 384, 'fp16')).toMatch(/needs 144 MiB for the VAE/);
  });
  it('maxBufferSize too low is reported as such', () => {
    const msg = checkLimits({ maxBufferSize: 256 * MiB, maxStorageBufferBindingSize: 256 * MiB }, 'koala-700m', 768, 768, 'fp32');
    expect(msg).toBe(
      'This GPU allows maxBufferSize = 256 MiB, but 768×768 fp32 needs 576 MiB for the VAE decoder activation (256 channels at 768×768, fp32). Choose 512×512 or smaller.',
    );
  });
  it('fp32 text_encoder_2 embedding (241 MiB) does not fit a 128 MiB binding at any size', () => {
    expect(checkLimits(small, 'koala-700m', 256, 256, 'fp32')).toBe(
      'Mesa lavapipe allows maxStorageBufferBindingSize = 128 MiB, but 256×256 fp32 needs 241 MiB for the text_encoder_2 token embedding (49408×1280, fp32). This GPU cannot run this model at any size.',
    );
    let err: unknown;
    try {
      assertLimits(small, 'koala-700m', 256, 256, 'fp32');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(EngineError);
    expect((err as EngineError).code).toBe('limits-too-low');
  });
});
