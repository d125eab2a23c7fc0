import { describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createFsStore } from './fs-store.node.js';
import { cachedModelFiles } from './model-files';

describe('reading a cached 1.5 GB weight file', () => {
  it('hands out a disk-backed Blob: slicing tensors costs only the slices, never a full copy', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'koala-mem-'));
    const chunkSize = 32 * 1024 * 1024;
    const size = 1_500_000_000;
    const store = createFsStore({ dir, chunkSize, sync: false });
    const key = 'sha256:' + 'ab'.repeat(32);
    // A sparse 1.5 GB file: only the last chunk is written (the bytes themselves do not matter here).
    const last = Math.floor(size / chunkSize);
    const tail = new Uint8Array(size - last * chunkSize).fill(7);
    await store.writeChunk({ key, size, chunkSize, done: size, updatedAt: 0 }, last, tail);
    await store.commit({ key, size, chunkSize, chunks: last + 1, sha256: 'ab'.repeat(32), completedAt: 0 });
    const files = cachedModelFiles(store, {
      id: 'x',
      hubUrl: 'http://hub',
      repo: 'o/m',
      commit: 'c'.repeat(40),
      revision: 'main',
      files: [{ path: 'unet/diffusion_pytorch_model.fp16.safetensors', size, sha256: 'ab'.repeat(32), key }],
      weights: { unet: ['unet/diffusion_pytorch_model.fp16.safetensors'] },
      complete: true,
      bytes: size,
      createdAt: 0,
    });
    global.gc?.();
    const before = process.memoryUsage();
    const blob = await files.get('unet/diffusion_pytorch_model.fp16.safetensors');
    expect(blob.size).toBe(size);
    // read 16 "tensors" of 8 MiB spread over the file, as the engine does with blob.slice().arrayBuffer()
    let peak = 0;
    for (let i = 0; i < 16; i++) {
      const at = Math.floor((i / 16) * (size - 8 * 2 ** 20));
      const buf = await blob.slice(at, at + 8 * 2 ** 20).arrayBuffer();
      expect(buf.byteLength).toBe(8 * 2 ** 20);
      const m = process.memoryUsage();
      peak = Math.max(peak, m.arrayBuffers - before.arrayBuffers, m.rss - before.rss);
    }
    console.log(`peak extra memory while slicing: ${(peak / 2 ** 20).toFixed(1)} MiB`);
    const end = new Uint8Array(await blob.slice(size - 4).arrayBuffer());
    expect([...end]).toEqual([7, 7, 7, 7]);
    // far below the 1.5 GB a full read would cost (the slices are 8 MiB; allow GC slack)
    expect(peak).toBeLessThan(300 * 2 ** 20);
    await rm(dir, { recursive: true, force: true });
  });
});
