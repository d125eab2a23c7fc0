import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { EngineError } from '../protocol';
import { blobKeyOf } from './download';
import { deleteCachedModel, ensureModel, listCachedModels, type EnsureModelOptions } from './ensure';
import { InProcessLocks } from './locks';
import { formatBytes } from './progress';
import { resolveRepo } from './resolve';
import { CHUNK, EXPECTED_FP16, FAST_RETRY, REPO, makeStore, sha256Blob, sha256File, startHubEnv, type HubEnv, type StoreKind } from './test-hub.node.js';
import type { BlobStore, DownloadProgress } from './types';

const UNET = 'unet/diffusion_pytorch_model.fp16.safetensors'; // 725,136 bytes = 11.06 chunks of 64 KiB
const TE2 = 'text_encoder_2/model.fp16.safetensors'; // 802,952 bytes

/** fetch that counts the body bytes the downloader actually reads (pull-based, no read-ahead). */
function countingFetch(pathPart: string) {
  let total = 0;
  const f = (async (input: RequestInfo | URL, init?: RequestInit) => {
    const res = await fetch(input, init);
    if (!String(input).includes(pathPart) || !res.body) return res;
    const reader = res.body.getReader();
    const body = new ReadableStream<Uint8Array>(
      {
        async pull(c) {
          const { value, done } = await reader.read();
          if (done) return c.close();
          total += value.length;
          c.enqueue(value);
        },
        cancel: (r) => reader.cancel(r),
      },
      { highWaterMark: 0 },
    );
    return new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers });
  }) as typeof fetch;
  return { fetch: f, bytes: () => total };
}

let env: HubEnv;
beforeAll(async () => {
  env = await startHubEnv();
});
afterAll(() => env.close());

describe.each<StoreKind>(['fs', 'idb'])('ensureModel with the %s store', (kind) => {
  let store: BlobStore;
  let reopen: () => BlobStore;
  let cleanup: () => Promise<void>;
  const noQuota = { estimate: async () => ({}) };
  const opts = (extra: Partial<EnsureModelOptions> = {}): EnsureModelOptions => ({
    store,
    repo: REPO,
    hubUrl: env.hub.url,
    retry: FAST_RETRY,
    storage: noQuota,
    locks: new InProcessLocks(),
    ...extra,
  });
  const keyOf = async (path: string) => {
    const r = await resolveRepo({ hubUrl: env.hub.url, repo: REPO, retry: FAST_RETRY });
    return blobKeyOf(r.files.find((f) => f.path === path)!, path);
  };

  beforeEach(async () => {
    ({ store, reopen, cleanup } = await makeStore(kind));
    env.hub.reset();
  });
  afterEach(() => cleanup());

  it('downloads, verifies and serves every file byte-exact; a second call fetches no file', async () => {
    const events: DownloadProgress[] = [];
    const files = await ensureModel(opts({ onProgress: (p) => events.push(p) }));
    expect(files.paths).toEqual(EXPECTED_FP16);
    expect(files.commit).toBe((await env.hub.repoState(REPO)).commit);
    for (const p of files.paths) expect(await sha256Blob(await files.get(p)), p).toBe(await sha256File(join(env.repoDir, p)));
    expect((await files.json<{ _class_name: string }>('model_index.json'))._class_name).toBe('StableDiffusionXLPipeline');
    expect(files.weights.unet).toEqual([UNET]);
    const total = EXPECTED_FP16.reduce((s, p) => s + files.size(p)!, 0);
    const last = events.at(-1)!;
    expect(last.phase).toBe('done');
    expect(last.bytesDone).toBe(total);
    expect(last.bytesTotal).toBe(total);
    expect(events.some((e) => e.phase === 'download' && e.files.some((f) => f.state === 'downloading'))).toBe(true);
    const list = await listCachedModels(store);
    expect(list).toEqual([{ repo: REPO, commit: files.commit, revision: 'main', variant: 'fp16', hubUrl: env.hub.url, bytes: total, complete: true, files: EXPECTED_FP16.length }]);

    env.hub.reset();
    const again = await ensureModel(opts({ store: reopen() }));
    expect(again.commit).toBe(files.commit);
    expect(env.hub.fileRequests()).toEqual([]);
  });

  it('resumes a dropped connection from the last whole chunk; bytes fetched < size + one chunk', async () => {
    env.hub.setFaults([{ kind: 'drop', path: UNET, afterBytes: 300_000 }]);
    const counter = countingFetch(UNET);
    const files = await ensureModel(opts({ fetch: counter.fetch }));
    const size = files.size(UNET)!;
    expect(await sha256Blob(await files.get(UNET))).toBe(await sha256File(join(env.repoDir, UNET)));
    const reqs = env.hub.fileRequests(UNET);
    expect(reqs.map((r) => r.status)).toEqual([200, 206]);
    // resumed at a whole chunk at or below what arrived (bytes still queued in the stream when the socket
    // closed are lost with it: at most chunks 0-3 of the 300,000 bytes were complete)
    const start = Number(/^bytes=(\d+)-$/.exec(reqs[1].range!)![1]);
    expect(start % CHUNK).toBe(0);
    expect(start).toBeGreaterThan(0);
    expect(start).toBeLessThanOrEqual(Math.floor(300_000 / CHUNK) * CHUNK);
    expect(reqs[1].ifRange).toMatch(/^"[0-9a-f]{64}"$/);
    // what the downloader read from the network in total: under file size + one chunk
    expect(counter.bytes()).toBeLessThan(size + CHUNK);
    expect(counter.bytes()).toBeGreaterThanOrEqual(size);
  });

  it('starts over when a resumed request is answered 200 with the whole file (range ignored)', async () => {
    env.hub.setFaults([
      { kind: 'drop', path: UNET, afterBytes: 300_000 },
      { kind: 'ignore-range', path: UNET },
    ]);
    const files = await ensureModel(opts());
    expect(env.hub.fileRequests(UNET).map((r) => [r.status, r.fault])).toEqual([
      [200, 'drop'],
      [200, 'ignore-range'],
    ]);
    expect(await sha256Blob(await files.get(UNET))).toBe(await sha256File(join(env.repoDir, UNET)));
  });

  it('catches a flipped byte, deletes the file and fetches it once more', async () => {
    env.hub.setFaults([{ kind: 'flip', path: TE2, offset: 500_000 }]);
    const files = await ensureModel(opts());
    expect(await sha256Blob(await files.get(TE2))).toBe(await sha256File(join(env.repoDir, TE2)));
    expect(env.hub.fileRequests(TE2).map((r) => [r.status, r.range, r.fault])).toEqual([
      [200, undefined, 'flip'],
      [200, undefined, undefined],
    ]);
  });

  it('reports integrity when the bytes are wrong twice, and caches nothing of that file', async () => {
    env.hub.setFaults([{ kind: 'flip', path: TE2, offset: 10, times: 2 }]);
    const err = await ensureModel(opts()).catch((e) => e);
    expect(err).toBeInstanceOf(EngineError);
    expect(err.code).toBe('integrity');
    expect(err.message).toMatch(/text_encoder_2\/model.fp16.safetensors failed verification twice \(sha256 [0-9a-f]{64} but the hub says [0-9a-f]{64}\)/);
    const key = await keyOf(TE2);
    expect(await store.getComplete(key)).toBeUndefined();
    expect(await store.getPartial(key)).toBeUndefined();
    expect((await listCachedModels(store))[0].complete).toBe(false);
  });

  it('rejects HTML served with 200 where weights were expected, before caching a byte', async () => {
    env.hub.setFaults([{ kind: 'html', path: UNET, times: 0 }]);
    const err = await ensureModel(opts()).catch((e) => e);
    expect(err).toBeInstanceOf(EngineError);
    expect(err.code).toBe('integrity');
    expect(err.message).toMatch(/unet\/diffusion_pytorch_model.fp16.safetensors failed verification twice \(expected binary weights but the server sent text\/html/);
    expect(env.hub.fileRequests(UNET).length).toBe(2);
    const key = await keyOf(UNET);
    expect(await store.getComplete(key)).toBeUndefined();
    expect(await store.getPartial(key)).toBeUndefined();
    expect(await store.listBlobKeys()).not.toContain(key);
    // one bad answer only: the second fetch succeeds
    env.hub.setFaults([{ kind: 'html', path: UNET, times: 1 }]);
    const files = await ensureModel(opts());
    expect(await sha256Blob(await files.get(UNET))).toBe(await sha256File(join(env.repoDir, UNET)));
  });

  it('rejects a short file (Content-Length below the hub size) and a 404 without retrying', async () => {
    env.hub.setFaults([{ kind: 'short', path: 'vae/diffusion_pytorch_model.fp16', times: 0 }]);
    const err = await ensureModel(opts()).catch((e) => e);
    expect(err.code).toBe('integrity');
    expect(err.message).toMatch(/the server sent 180046 bytes, the hub's file list says 181046/);
    env.hub.reset();
    env.hub.setFaults([{ kind: 'status', status: 404, path: 'vae/diffusion_pytorch_model.fp16', times: 0 }]);
    const e404 = await ensureModel(opts()).catch((e) => e);
    expect(e404.code).toBe('network');
    expect(e404.message).toMatch(/HTTP 404/);
    expect(env.hub.fileRequests('vae/diffusion_pytorch_model.fp16').length).toBe(1);
  });

  it('retries 500 and 429 with backoff', async () => {
    env.hub.setFaults([
      { kind: 'status', status: 500, path: UNET, times: 2 },
      { kind: 'status', status: 429, path: TE2, times: 1 },
    ]);
    const files = await ensureModel(opts());
    expect(await sha256Blob(await files.get(UNET))).toBe(await sha256File(join(env.repoDir, UNET)));
    expect(env.hub.fileRequests(UNET).map((r) => r.status)).toEqual([500, 500, 200]);
    expect(env.hub.fileRequests(TE2).map((r) => r.status)).toEqual([429, 200]);
  });

  it('refuses when the quota is too small, before any byte is written', async () => {
    let persisted = 0;
    const storage = { estimate: async () => ({ quota: 3_000_000, usage: 1_000_000 }), persist: async () => (persisted++, true) };
    const err = await ensureModel(opts({ storage })).catch((e) => e);
    expect(persisted).toBe(1); // navigator.storage.persist() is asked before downloading
    expect(err).toBeInstanceOf(EngineError);
    expect(err.code).toBe('quota-exceeded');
    // tokenizer/ and tokenizer_2/ share vocab.json and merges.txt: stored once (content-addressed)
    const unique = new Map((await resolveRepo({ hubUrl: env.hub.url, repo: REPO, retry: FAST_RETRY })).files.map((f) => [f.sha256 ?? f.oid, f.size]));
    const total = [...unique.values()].reduce((a, b) => a + b, 0);
    expect(total).toBe(3_703_875);
    expect(err.message).toContain(`needs ${formatBytes(total)} more storage but only 1.91 MiB is free (quota 2.86 MiB, used 976.6 KiB)`);
    expect(env.hub.fileRequests().filter((r) => r.path !== 'model_index.json')).toEqual([]);
    expect(await store.listBlobKeys()).toEqual([]);
    expect(await store.listManifests()).toEqual([]);
  });

  it('a QuotaExceededError mid-way marks nothing complete and says how much is needed', async () => {
    let chunks = 0;
    const full: BlobStore = Object.create(store);
    full.writeChunk = async (rec, i, data) => {
      if (++chunks > 20) throw new DOMException('The quota has been exceeded.', 'QuotaExceededError');
      return store.writeChunk(rec, i, data);
    };
    const err = await ensureModel(opts({ store: full, concurrency: 1 })).catch((e) => e);
    expect(err.code).toBe('quota-exceeded');
    expect(err.message).toMatch(/Storage ran out while saving .+: \d+\.\d+ (KiB|MiB) more is needed to finish test\/tiny-sdxl/);
    const m = (await store.listManifests())[0];
    expect(m.complete).toBe(false);
    for (const f of m.files) {
      const c = await store.getComplete(f.key);
      if (c) expect(await sha256Blob((await store.readBlob(f.key))!)).toBe(await sha256File(join(env.repoDir, f.path)));
    }
    // with space again, it finishes from what was kept
    env.hub.reset();
    const files = await ensureModel(opts());
    expect(await sha256Blob(await files.get(UNET))).toBe(await sha256File(join(env.repoDir, UNET)));
  });

  it('a reload mid-download (a new downloader over the same storage) resumes', async () => {
    env.hub.setFaults([{ kind: 'drop', path: UNET, afterBytes: 400_000 }]);
    const counter = countingFetch(UNET);
    const err = await ensureModel(opts({ fetch: counter.fetch, retry: { retries: 0, baseDelayMs: 1, maxDelayMs: 1 } })).catch((e) => e);
    expect(err.code).toBe('network');
    const key = await keyOf(UNET);
    const kept = (await store.getPartial(key))!.done;
    expect(kept % CHUNK).toBe(0);
    expect(kept).toBeGreaterThan(0);
    expect(kept).toBeLessThanOrEqual(6 * CHUNK);
    const files = await ensureModel(opts({ fetch: counter.fetch, store: reopen(), locks: new InProcessLocks() }));
    expect(await sha256Blob(await files.get(UNET))).toBe(await sha256File(join(env.repoDir, UNET)));
    const reqs = env.hub.fileRequests(UNET);
    expect(reqs[reqs.length - 1].range).toBe(`bytes=${kept}-`);
    expect(counter.bytes()).toBeLessThan(files.size(UNET)! + CHUNK);
  });

  it('cancel keeps finished chunks, and the next call continues from them', async () => {
    env.hub.setFaults([{ kind: 'slow', path: UNET, bytesPerSec: 1_000_000 }]);
    const ac = new AbortController();
    const err = await ensureModel(
      opts({
        signal: ac.signal,
        progressIntervalMs: 0,
        onProgress: (p) => {
          const f = p.files.find((x) => x.path === UNET);
          if (f && f.bytesDone >= 4 * CHUNK) ac.abort();
        },
      }),
    ).catch((e) => e);
    expect(err).toBeInstanceOf(EngineError);
    expect(err.code).toBe('cancelled');
    const key = await keyOf(UNET);
    const kept = (await store.getPartial(key))!.done;
    expect(kept).toBeGreaterThanOrEqual(3 * CHUNK);
    expect(kept % CHUNK).toBe(0);
    env.hub.reset();
    const files = await ensureModel(opts());
    expect(env.hub.fileRequests(UNET).map((r) => r.range)).toEqual([`bytes=${kept}-`]);
    expect(await sha256Blob(await files.get(UNET))).toBe(await sha256File(join(env.repoDir, UNET)));
  });

  it('two tabs at once download each file once; the waiting one uses the cache', async () => {
    const locks = new InProcessLocks();
    const phases: [string[], string[]] = [[], []];
    const [a, b] = await Promise.all([
      ensureModel(opts({ locks, onProgress: (p) => phases[0].push(p.phase) })),
      ensureModel(opts({ store: reopen(), locks, onProgress: (p) => phases[1].push(p.phase) })),
    ]);
    expect(a.commit).toBe(b.commit);
    // every stored file was fetched exactly once (identical tokenizer files are one download)
    const paths = env.hub.fileRequests().map((r) => r.path!).filter((p) => p !== 'model_index.json');
    expect(new Set(paths).size).toBe(paths.length);
    expect(paths.length).toBe(EXPECTED_FP16.length - 1 - 2);
    // one tab downloaded, the other waited for the lock and then read the cache
    const downloaded = phases.map((p) => p.includes('download'));
    expect(downloaded.filter(Boolean).length).toBe(1);
    expect(phases[downloaded.indexOf(false)]).toContain('wait-lock');
    expect(await sha256Blob(await b.get(UNET))).toBe(await sha256File(join(env.repoDir, UNET)));
  });

  it('an evicted file shows as not downloaded and is fetched again alone', async () => {
    await ensureModel(opts());
    const key = await keyOf(UNET);
    if (kind === 'idb') {
      const { delMany, keys, createStore } = await import('idb-keyval');
      const chunks = createStore((store as import('./idb-store').IdbBlobStore).chunksDb, 'chunks');
      await delMany((await keys<string>(chunks)).filter((k) => k.startsWith(key)), chunks);
    } else {
      const { rm } = await import('node:fs/promises');
      await rm(join((store as import('./fs-store.node').FsBlobStore).dir, 'blobs', key.replace(':', '-')));
    }
    expect((await listCachedModels(store))[0].complete).toBe(false);
    env.hub.reset();
    const files = await ensureModel(opts());
    expect(env.hub.fileRequests().map((r) => r.path)).toEqual(['model_index.json', UNET]);
    expect(await sha256Blob(await files.get(UNET))).toBe(await sha256File(join(env.repoDir, UNET)));
  });

  it('delete removes a cached model and its files', async () => {
    await ensureModel(opts());
    expect(await deleteCachedModel(store, { repo: REPO })).toBe(1);
    expect(await listCachedModels(store)).toEqual([]);
    expect(await store.listBlobKeys()).toEqual([]);
  });

  it('an unreachable hub with a complete cache still works; without a cache it says so', async () => {
    const first = await ensureModel(opts());
    const down = (async () => {
      throw new TypeError('fetch failed');
    }) as typeof fetch;
    const t0 = Date.now();
    // a long retry budget (6 retries, 1 s doubling) is cut to one retry when a complete copy is cached
    const files = await ensureModel(opts({ fetch: down, store: reopen(), retry: { retries: 6, baseDelayMs: 1000, maxDelayMs: 30_000 } }));
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(files.commit).toBe(first.commit);
    expect(await sha256Blob(await files.get(UNET))).toBe(await sha256File(join(env.repoDir, UNET)));
    const pinned = await ensureModel(opts({ fetch: down, revision: first.commit! }));
    expect(pinned.commit).toBe(first.commit);
    const err = await ensureModel(opts({ fetch: down, revision: 'v2', retry: { retries: 0, baseDelayMs: 1, maxDelayMs: 1 } })).catch((e) => e);
    expect(err.code).toBe('network');
    expect(err.message).toMatch(/no complete cached copy of test\/tiny-sdxl@v2/);
  });
});
