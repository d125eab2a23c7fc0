import { describe, expect, it } from 'vitest';
import { webgpuSuite } from './webgpu-node';

const { skip, webgpu } = await webgpuSuite();

describe.skipIf(skip)('WebGPU in Node (Dawn)', () => {
  it('gives an adapter with shader-f16 and usable limits', () => {
    const adapter = webgpu.adapter!;
    expect(webgpu.shaderF16).toBe(true);
    expect(adapter.limits.maxBufferSize).toBeGreaterThanOrEqual(256 * 1024 * 1024);
    expect(adapter.limits.maxStorageBufferBindingSize).toBeGreaterThanOrEqual(128 * 1024 * 1024);
    expect(navigator.gpu).toBe(webgpu.gpu);
    console.log(`adapter: ${webgpu.adapterName}`);
  });

  it('writeBuffer accepts SharedArrayBuffer ranges (the onnxruntime-web shim)', async () => {
    const adapter = await navigator.gpu.requestAdapter();
    const device = await adapter!.requestDevice();
    const shared = new SharedArrayBuffer(64);
    const all = new Uint8Array(shared);
    for (let i = 0; i < 64; i++) all[i] = i;
    const gpuBuf = device.createBuffer({ size: 32, usage: GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC });
    const read = device.createBuffer({ size: 32, usage: GPUBufferUsage.COPY_DST | GPUBufferUsage.MAP_READ });
    // byte offset 8, 16 bytes from a SharedArrayBuffer; then a Uint32Array view over shared memory (element units)
    device.queue.writeBuffer(gpuBuf, 0, shared, 8, 16);
    device.queue.writeBuffer(gpuBuf, 16, new Uint32Array(shared, 32, 8) as unknown as Uint32Array<ArrayBuffer>, 1, 4);
    const enc = device.createCommandEncoder();
    enc.copyBufferToBuffer(gpuBuf, 0, read, 0, 32);
    device.queue.submit([enc.finish()]);
    await read.mapAsync(GPUMapMode.READ);
    const got = Array.from(new Uint8Array(read.getMappedRange()));
    read.unmap();
    device.destroy();
    const want = [...Array.from({ length: 16 }, (_, i) => 8 + i), ...Array.from({ length: 16 }, (_, i) => 36 + i)];
    expect(got).toEqual(want);
  });
});
