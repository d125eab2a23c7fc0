import { describe, expect, it } from 'vitest';
import { assess, largestBufferNeeded } from './capabilities';
import { findModel } from './models';
import { formatBytes, formatDuration, imageFileName } from './format';

const koala = findModel('etri-vilab/koala-700m-llava-cap');
const GiB = 2 ** 30;

describe('assess', () => {
  it('no navigator.gpu: names the browsers that work', () => {
    const a = assess(
      { webgpu: false, shaderF16: false, problem: 'This browser does not expose WebGPU (navigator.gpu is missing).' },
      koala,
      1024,
      1024,
    );
    expect(a.level).toBe('error');
    expect(a.title).toBe('This browser has no WebGPU');
    expect(a.detail).toMatch(/Chrome and Edge 113\+/);
    expect(a.detail).toMatch(/Safari 26/);
    expect(a.detail).toMatch(/Firefox 141\+ on Windows/);
  });

  it('no adapter: a different headline', () => {
    const a = assess({ webgpu: false, shaderF16: false, problem: 'no GPU adapter is available' }, koala, 1024, 1024);
    expect(a.title).toBe('WebGPU found no usable GPU adapter');
  });

  it('no shader-f16 (SwiftShader): fp32 with the larger download', () => {
    const a = assess(
      { webgpu: true, shaderF16: false, adapterName: 'google swiftshader', maxBufferSize: GiB, maxStorageBufferBindingSize: GiB },
      koala,
      1024,
      1024,
    );
    expect(a).toMatchObject({ level: 'warn', precision: 'fp32', downloadBytes: koala.download!.fp32 });
    expect(a.detail).toContain('6.74 GB');
    expect(a.detail).toContain('instead of 3.54 GB');
  });

  it('limits: fp16 runs within the WebGPU minimum 128 MiB binding at 1024² (the graphs are chunked); fp32 needs the 253 MB embedding', () => {
    const small = { webgpu: true, shaderF16: true, maxBufferSize: 4 * GiB, maxStorageBufferBindingSize: 128 * 2 ** 20 };
    expect(assess(small, koala, 1024, 1024).level).toBe('ok');
    expect(largestBufferNeeded(1024, 1024, 'fp16', koala)).toBe(49408 * 1280 * 2);
    const a = assess({ ...small, shaderF16: false }, koala, 1024, 1024);
    expect(a.level).toBe('error');
    expect(a.precision).toBe('fp32');
    expect(a.detail).toContain('253 MB');
    expect(a.detail).toContain('shader-f16');
    expect(a.suggestedSize).toBeUndefined();
    expect(assess({ ...small, shaderF16: false, maxStorageBufferBindingSize: GiB }, koala, 1024, 1024).level).toBe('warn');
  });

  it('tells the GPU memory a run needs, from the computed ledger (src/memory-estimates.json)', () => {
    const caps = { webgpu: true, shaderF16: true, adapterName: 'nvidia ada', maxBufferSize: 4 * GiB, maxStorageBufferBindingSize: 2 * GiB };
    const big = assess(caps, koala, 1024, 1024);
    const small = assess(caps, koala, 512, 512);
    expect(big.gpuMemoryBytes).toBeGreaterThan(5e9);
    expect(big.gpuMemoryBytes).toBeLessThan(8e9);
    expect(small.gpuMemoryBytes).toBeLessThan(big.gpuMemoryBytes!);
    expect(big.detail).toContain(`It needs about ${formatBytes(big.gpuMemoryBytes!)} of GPU memory at 1024×1024.`);
    const sdxl = assess(caps, findModel('stabilityai/stable-diffusion-xl-base-1.0'), 1024, 1024);
    expect(sdxl.gpuMemoryBytes).toBeGreaterThan(big.gpuMemoryBytes!);
    expect(assess(caps, findModel('someone/custom-sdxl'), 1024, 1024).gpuMemoryBytes).toBeNull();
  });

  it('ok with fp16', () => {
    const a = assess(
      { webgpu: true, shaderF16: true, adapterName: 'nvidia ada', maxBufferSize: 4 * GiB, maxStorageBufferBindingSize: 2 * GiB },
      koala,
      1024,
      1024,
    );
    expect(a).toMatchObject({ level: 'ok', precision: 'fp16', downloadBytes: 3_544_000_000 });
  });
});

describe('format', () => {
  it('bytes, durations, file names', () => {
    expect(formatBytes(999)).toBe('999 B');
    expect(formatBytes(1_570_000_000)).toBe('1.57 GB');
    expect(formatBytes(12_345_678)).toBe('12.3 MB');
    expect(formatDuration(4.25)).toBe('4.3 s');
    expect(formatDuration(75)).toBe('1 min 15 s');
    expect(formatDuration(3720)).toBe('1 h 02 min');
    expect(imageFileName('A <b>Koala</b> on a tree!', 42)).toBe('koala-a-b-koala-b-on-a-tree-42.png');
    expect(imageFileName('', 7, 1)).toBe('koala-image-7-2.png');
  });
});
