/**
 * Cache throughput: write `bytes` of synthetic data through a store's chunk path (the same calls a
 * download makes, without network and hashing), commit it, read it back through `readBlob()`
 * streaming, then delete it. `benchIdb` is what the page calls to measure Chromium's IndexedDB.
 */
import { IdbBlobStore } from './idb-store';
import type { BlobStore } from './types';

export interface BenchResult {
  store: string;
  bytes: number;
  chunkSize: number;
  writeSeconds: number;
  readSeconds: number;
  writeMBps: number;
  readMBps: number;
}

const now = () => (globalThis.performance ?? Date).now();

export async function benchStore(store: BlobStore, bytes: number): Promise<BenchResult> {
  const chunkSize = store.chunkSize;
  const key = `path:bench-${Date.now()}-${Math.random().toString(36).slice(2)}`;
  const pattern = new Uint8Array(Math.min(chunkSize, bytes));
  for (let i = 0; i < pattern.length; i++) pattern[i] = (i * 2654435761) >>> 24;
  await store.deleteBlob(key);
  const t0 = now();
  let done = 0;
  for (let index = 0; done < bytes; index++) {
    const n = Math.min(chunkSize, bytes - done);
    const data = n === pattern.length ? pattern : pattern.subarray(0, n);
    data[0] = index & 255; // not all chunks identical
    done += n;
    await store.writeChunk({ key, size: bytes, chunkSize, done, updatedAt: Date.now() }, index, data);
  }
  await store.commit({ key, size: bytes, chunkSize, chunks: Math.ceil(bytes / chunkSize), completedAt: Date.now() });
  const t1 = now();
  const blob = await store.readBlob(key);
  if (!blob) throw new Error(`bench: ${store.kind} store lost the file it just wrote`);
  const reader = blob.stream().getReader();
  let read = 0;
  for (;;) {
    const { value, done: end } = await reader.read();
    if (end) break;
    read += value.length;
  }
  const t2 = now();
  await store.deleteBlob(key);
  if (read !== bytes) throw new Error(`bench: read ${read} bytes back, wrote ${bytes}`);
  const mb = bytes / 1e6;
  return {
    store: store.kind,
    bytes,
    chunkSize,
    writeSeconds: (t1 - t0) / 1000,
    readSeconds: (t2 - t1) / 1000,
    writeMBps: mb / ((t1 - t0) / 1000),
    readMBps: mb / ((t2 - t1) / 1000),
  };
}

/** IndexedDB throughput in this browser (or fake-indexeddb in Node), default 1 GB in 32 MiB chunks. */
export function benchIdb(bytes = 1e9, chunkSize = 32 * 1024 * 1024): Promise<BenchResult> {
  return benchStore(new IdbBlobStore({ name: 'koala-web-bench', chunkSize }), bytes);
}
