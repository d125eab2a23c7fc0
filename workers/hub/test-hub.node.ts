/** Test helpers: a temp copy of the tiny fixture served by the mock hub, and store factories. */
import 'fake-indexeddb/auto';
import { createHash } from 'node:crypto';
import { cp, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startMockHub, type MockHub } from '../../scripts/mock-hub/server';
import { createFsStore } from './fs-store.node.js';
import { IdbBlobStore } from './idb-store';
import type { BlobStore } from './types';

export const FIXTURE = join(import.meta.dirname, '../../test/fixtures/tiny-sdxl');
export const REPO = 'test/tiny-sdxl';
export const CHUNK = 64 * 1024;
export const FAST_RETRY = { retries: 4, baseDelayMs: 5, maxDelayMs: 20 };

export interface HubEnv {
  root: string;
  repoDir: string;
  hub: MockHub;
  close(): Promise<void>;
}

/** Copy the fixture (without goldens) to a temp root as `<root>/test/tiny-sdxl` and serve it. */
export async function startHubEnv(opts: { treePageSize?: number; redirectLfs?: boolean } = {}): Promise<HubEnv> {
  const root = await mkdtemp(join(tmpdir(), 'koala-hub-'));
  const repoDir = join(root, 'test', 'tiny-sdxl');
  await cp(FIXTURE, repoDir, { recursive: true, filter: (src) => !src.includes('goldens') });
  const hub = await startMockHub({ root, ...opts });
  return {
    root,
    repoDir,
    hub,
    async close() {
      await hub.close();
      await rm(root, { recursive: true, force: true });
    },
  };
}

export type StoreKind = 'idb' | 'fs';

let counter = 0;
/** A fresh store; `reopen()` gives a second instance over the same data (a reload / another tab). */
export async function makeStore(kind: StoreKind, chunkSize = CHUNK): Promise<{ store: BlobStore; reopen(): BlobStore; cleanup(): Promise<void> }> {
  if (kind === 'idb') {
    const name = `hub-test-${process.pid}-${counter++}`;
    return {
      store: new IdbBlobStore({ name, chunkSize }),
      reopen: () => new IdbBlobStore({ name, chunkSize }),
      cleanup: async () => {},
    };
  }
  const dir = await mkdtemp(join(tmpdir(), 'koala-cache-'));
  return {
    store: createFsStore({ dir, chunkSize }),
    reopen: () => createFsStore({ dir, chunkSize }),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}

export async function sha256Blob(blob: Blob): Promise<string> {
  return createHash('sha256').update(new Uint8Array(await blob.arrayBuffer())).digest('hex');
}

export async function sha256File(path: string): Promise<string> {
  return createHash('sha256').update(await readFile(path)).digest('hex');
}

/** The files the pipeline needs from tiny-sdxl with variant fp16. */
export const EXPECTED_FP16 = [
  'model_index.json',
  'scheduler/scheduler_config.json',
  'text_encoder/config.json',
  'text_encoder/model.fp16.safetensors',
  'text_encoder_2/config.json',
  'text_encoder_2/model.fp16.safetensors',
  'tokenizer/merges.txt',
  'tokenizer/special_tokens_map.json',
  'tokenizer/tokenizer_config.json',
  'tokenizer/vocab.json',
  'tokenizer_2/merges.txt',
  'tokenizer_2/special_tokens_map.json',
  'tokenizer_2/tokenizer_config.json',
  'tokenizer_2/vocab.json',
  'unet/config.json',
  'unet/diffusion_pytorch_model.fp16.safetensors',
  'vae/config.json',
  'vae/diffusion_pytorch_model.fp16.safetensors',
];
