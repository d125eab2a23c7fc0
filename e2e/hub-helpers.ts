/**
 * Helpers for e2e/hub.spec.ts: a private mock hub (in this process, so the spec reads its request log
 * and sets faults directly, without touching the shared hub on :8123 that other specs reset) serving
 * temporary copies of the tiny fixture, a private `vite preview` of the built page, and readers of the
 * engine's IndexedDB cache (workers/hub/idb-store.ts layout) on the page's origin.
 */
import { createHash } from 'node:crypto';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { Page } from '@playwright/test';
import { preview, type Plugin, type PreviewServer } from 'vite';
import { startMockHub, type MockHub, type RequestLog } from '../scripts/mock-hub/server';

export const REPO_ROOT = resolve(import.meta.dirname, '..');
const FIXTURE = join(REPO_ROOT, 'test/fixtures/tiny-sdxl');

/** The engine's chunk size in the browser (IdbBlobStore default). */
export const CHUNK = 32 * 1024 * 1024;
/**
 * Size of the padded U-Net file of `test/big-sdxl`: one full 32 MiB chunk plus 10.4 MB, so at the tests'
 * 3 MB/s a reload or cancel has about 3.5 s after the first chunk is committed before the file would finish.
 */
export const BIG_SIZE = 44_000_000;
/** Path parts of the U-Net and VAE weights: the page picks the fp16 or the fp32 file (shader-f16 or not). */
export const UNET = 'unet/diffusion_pytorch_model';
export const VAE = 'vae/diffusion_pytorch_model';

export interface Servers {
  hub: MockHub;
  /**
   * When set, the page server serves the engine worker's script with a prologue that makes
   * `navigator.storage.estimate()` in the worker report this quota (usage stays the real one).
   */
  workerQuota?: number;
  /** Folder served by the hub: `<root>/test/<name>` is repo `test/<name>`. */
  root: string;
  pageUrl: string;
  close(): Promise<void>;
}

/** A deterministic byte pattern (xorshift32), so the padded file hashes the same on every run. */
function pattern(n: number, seed = 0x9e3779b9): Uint8Array {
  const out = new Uint8Array(n);
  const view = new Uint32Array(out.buffer, 0, n >>> 2);
  let x = seed >>> 0;
  for (let i = 0; i < view.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    view[i] = x >>> 0;
  }
  return out;
}

/**
 * A valid safetensors file of exactly `size` bytes: the fixture's tensors plus a U8 tensor `zz_pad`
 * filling the rest (the downloader checks the header; the engine never gets to read it in these tests).
 */
async function paddedSafetensors(src: string, size: number): Promise<Buffer> {
  const buf = await readFile(src);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) as Record<string, unknown>;
  const data = buf.subarray(8 + n);
  // Header length is padded with spaces to a multiple of 8; the pad tensor fills to `size`.
  const make = (pad: number) => {
    const h = { ...header, zz_pad: { dtype: 'U8', shape: [pad], data_offsets: [data.length, data.length + pad] } };
    let text = JSON.stringify(h);
    text += ' '.repeat((8 - (Buffer.byteLength(text) % 8)) % 8);
    return Buffer.from(text);
  };
  let pad = size - 8 - data.length - make(0).length;
  let head = make(pad);
  pad = size - 8 - data.length - head.length;
  head = make(pad);
  if (8 + head.length + data.length + pad !== size) throw new Error(`padding ${src} to ${size} bytes failed`);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(head.length));
  return Buffer.concat([len, head, data, Buffer.from(pattern(pad))]);
}

async function copyFixture(to: string): Promise<void> {
  await cp(FIXTURE, to, { recursive: true, filter: (s) => !s.includes('goldens') });
}

/**
 * Repos: `test/tiny-sdxl` (the fixture), `test/big-sdxl` (its fp32 U-Net padded to BIG_SIZE, so a
 * resume from a committed 32 MiB chunk is observable), `test/rev-sdxl` (a copy the revision test edits).
 */
export async function startServers(): Promise<Servers> {
  const root = await mkdtemp(join(tmpdir(), 'koala-hub-e2e-'));
  await copyFixture(join(root, 'test/tiny-sdxl'));
  await copyFixture(join(root, 'test/big-sdxl'));
  for (const f of [`${UNET}.safetensors`, `${UNET}.fp16.safetensors`]) {
    await writeFile(join(root, 'test/big-sdxl', f), await paddedSafetensors(join(FIXTURE, f), BIG_SIZE));
  }
  await copyFixture(join(root, 'test/rev-sdxl'));
  const hub = await startMockHub({ root, host: '127.0.0.1', port: 0 });
  // The built page (`vite build --mode test`) on its own port; no demo hub child process.
  process.env.KOALA_DEMO_HUB = '0';
  const out: Partial<Servers> = {};
  const capQuota: Plugin = {
    name: 'e2e:worker-quota',
    configurePreviewServer(s) {
      s.middlewares.use((req, res, next) => {
        const m = /^\/assets\/(engine\.worker-[\w-]+\.js)$/.exec((req.url ?? '').split('?')[0]!);
        if (!m || out.workerQuota === undefined) return next();
        void readFile(join(REPO_ROOT, 'dist/assets', m[1]!), 'utf8').then((code) => {
          const prologue =
            `{const e=StorageManager.prototype.estimate;` +
            `StorageManager.prototype.estimate=async function(){return {...(await e.call(this)),quota:${out.workerQuota}};};}\n`;
          res.setHeader('Content-Type', 'text/javascript');
          res.setHeader('Cache-Control', 'no-store');
          res.setHeader('Cross-Origin-Embedder-Policy', 'require-corp');
          res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
          res.setHeader('Cross-Origin-Resource-Policy', 'same-origin');
          res.end(prologue + code);
        }, next);
      });
    },
  };
  const server: PreviewServer = await preview({
    root: REPO_ROOT,
    mode: 'test',
    logLevel: 'warn',
    plugins: [capQuota],
    preview: { host: '127.0.0.1', port: 4190, strictPort: false },
  });
  const pageUrl = (server.resolvedUrls?.local[0] ?? '').replace(/\/$/, '');
  if (!pageUrl) throw new Error('vite preview did not report its URL');
  return Object.assign(out, {
    hub,
    root,
    pageUrl,
    async close() {
      await server.close();
      await hub.close();
      await rm(root, { recursive: true, force: true });
    },
  });
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** sha256 and size of a file of a served repo. */
export async function repoFile(root: string, repo: string, path: string): Promise<{ sha256: string; size: number; bytes: Buffer }> {
  const bytes = await readFile(join(root, repo, path));
  return { sha256: sha256Hex(bytes), size: bytes.length, bytes };
}

/** Rewrite a served file (the mock hub rescans: a new commit). */
export async function editRepoFile(root: string, repo: string, path: string, edit: (b: Buffer) => void): Promise<void> {
  const abs = join(root, repo, path);
  const b = await readFile(abs);
  edit(b);
  await mkdir(dirname(abs), { recursive: true });
  await writeFile(abs, b);
}

/** Requests for a file path (LFS files are logged on their /__lfs/ request, with the repo path). */
export function fileRequests(hub: MockHub, path: string, since = 0): RequestLog[] {
  return hub.requests.slice(since).filter((r) => r.path === path);
}

export function bytesServed(hub: MockHub, path: string, since = 0): number {
  return fileRequests(hub, path, since).reduce((n, r) => n + r.bytes, 0);
}

export function weightBytesServed(hub: MockHub, since = 0): number {
  return hub.requests
    .slice(since)
    .filter((r) => r.path?.endsWith('.safetensors'))
    .reduce((n, r) => n + r.bytes, 0);
}

/** Requests end (and are logged) when the socket closes: wait until the log holds `n` for `path`. */
export async function waitForRequests(hub: MockHub, path: string, n: number, since = 0, timeoutMs = 15_000): Promise<RequestLog[]> {
  const t0 = Date.now();
  for (;;) {
    const r = fileRequests(hub, path, since);
    if (r.length >= n || Date.now() - t0 > timeoutMs) return r;
    await new Promise((res) => setTimeout(res, 50));
  }
}

/** What the engine's IndexedDB cache holds (workers/hub/idb-store.ts layout), read on the page's origin. */
export interface HubDb {
  partial: Record<string, { done: number; size: number; chunkSize: number; etag?: string }>;
  complete: Record<string, { size: number; chunks: number; sha256?: string }>;
  manifests: Array<{
    id: string;
    repo: string;
    commit: string;
    revision: string;
    complete: boolean;
    files: Array<{ path: string; key: string; size: number }>;
  }>;
  refs: Array<{ id: string; commit: string }>;
  /** Chunk key (`<file key>#<index>`) -> Blob size. */
  chunks: Record<string, number>;
}

export function readHubDb(page: Page, name = 'koala-web-hub'): Promise<HubDb> {
  return page.evaluate(async (prefix) => {
    const dbs = new Set((await indexedDB.databases()).map((d) => d.name));
    // Never create a database here: idb-keyval creates its object store in the first upgrade.
    const dump = async (db: string, store: string): Promise<Array<[string, unknown]>> => {
      if (!dbs.has(db)) return [];
      const conn = await new Promise<IDBDatabase>((res, rej) => {
        const r = indexedDB.open(db);
        r.onupgradeneeded = () => r.transaction!.abort();
        r.onsuccess = () => res(r.result);
        r.onerror = () => rej(r.error);
      });
      try {
        if (!conn.objectStoreNames.contains(store)) return [];
        const os = conn.transaction(store).objectStore(store);
        const [ks, vs] = await Promise.all(
          [os.getAllKeys(), os.getAll()].map(
            (r) =>
              new Promise<unknown[]>((res, rej) => ((r.onsuccess = () => res(r.result as unknown[])), (r.onerror = () => rej(r.error)))),
          ),
        );
        return ks.map((k, i) => [String(k), vs[i]]);
      } finally {
        conn.close();
      }
    };
    const out = { partial: {}, complete: {}, manifests: [], refs: [], chunks: {} } as unknown as HubDb;
    for (const [k, v] of await dump(`${prefix}-meta`, 'meta')) {
      const rec = v as Record<string, unknown>;
      if (k.startsWith('p:'))
        out.partial[k.slice(2)] = {
          done: rec.done as number,
          size: rec.size as number,
          chunkSize: rec.chunkSize as number,
          etag: rec.etag as string | undefined,
        };
      else if (k.startsWith('c:'))
        out.complete[k.slice(2)] = { size: rec.size as number, chunks: rec.chunks as number, sha256: rec.sha256 as string | undefined };
      else if (k.startsWith('m:')) {
        const m = rec as unknown as HubDb['manifests'][number];
        out.manifests.push({
          id: m.id,
          repo: m.repo,
          commit: m.commit,
          revision: m.revision,
          complete: m.complete,
          files: m.files.map((f) => ({ path: f.path, key: f.key, size: f.size })),
        });
      } else if (k.startsWith('r:')) out.refs.push(rec as { id: string; commit: string });
    }
    for (const [k, v] of await dump(`${prefix}-chunks`, 'chunks')) out.chunks[k] = (v as Blob).size;
    return out;
  }, name);
}

/** sha256 (hex) and size of a stored file: its chunk Blobs in order, hashed in the page. */
export function storedFileSha256(
  page: Page,
  key: string,
  name = 'koala-web-hub',
): Promise<{ sha256: string; size: number; chunks: number[] }> {
  return page.evaluate(
    async ([prefix, fileKey]) => {
      const conn = await new Promise<IDBDatabase>((res, rej) => {
        const r = indexedDB.open(`${prefix}-chunks`);
        r.onupgradeneeded = () => r.transaction!.abort();
        r.onsuccess = () => res(r.result);
        r.onerror = () => rej(r.error);
      });
      try {
        const os = conn.transaction('chunks').objectStore('chunks');
        const range = IDBKeyRange.bound(`${fileKey}#`, `${fileKey}#\uffff`);
        const blobs = await new Promise<Blob[]>((res, rej) => {
          const r = os.getAll(range);
          r.onsuccess = () => res(r.result as Blob[]);
          r.onerror = () => rej(r.error);
        });
        const all = new Blob(blobs);
        const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', await all.arrayBuffer()));
        return {
          sha256: [...digest].map((b) => b.toString(16).padStart(2, '0')).join(''),
          size: all.size,
          chunks: blobs.map((b) => b.size),
        };
      } finally {
        conn.close();
      }
    },
    [name, key] as const,
  );
}

/** Manifest of a repo in the dump (the first one, or the one for `commit`). */
export function manifestOf(db: HubDb, repo: string, commit?: string) {
  return db.manifests.find((m) => m.repo === repo && (!commit || m.commit === commit));
}

export function keyOf(db: HubDb, repo: string, path: string, commit?: string): string | undefined {
  return manifestOf(db, repo, commit)?.files.find((f) => f.path === path)?.key;
}

/** The weight files (.safetensors) a manifest lists. */
export function weightsOf(db: HubDb, repo: string, commit?: string): string[] {
  return (manifestOf(db, repo, commit)?.files ?? []).map((f) => f.path).filter((p) => p.endsWith('.safetensors'));
}

/** The manifest's weight file whose path starts with `part` (e.g. UNET). */
export function weightPath(db: HubDb, repo: string, part: string, commit?: string): string {
  const p = weightsOf(db, repo, commit).find((x) => x.startsWith(part));
  if (!p) throw new Error(`no ${part}* weights in the manifest of ${repo}`);
  return p;
}

/** Poll the page's IndexedDB until `check` holds (or time out with the last dump in the message). */
export async function waitForDb(page: Page, check: (db: HubDb) => boolean, what: string, timeoutMs = 60_000): Promise<HubDb> {
  const t0 = Date.now();
  let last: HubDb | undefined;
  for (;;) {
    last = await readHubDb(page);
    if (check(last)) return last;
    if (Date.now() - t0 > timeoutMs) {
      throw new Error(
        `timed out waiting for ${what}; IndexedDB: ${JSON.stringify({ ...last, manifests: last.manifests.map((m) => ({ ...m, files: m.files.length })) })}`,
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}
