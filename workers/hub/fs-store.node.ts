/**
 * BlobStore in a cache folder (Node CLI), same download/verify code as the browser.
 *   <dir>/blobs/<key>            complete, verified file (renamed in after verification)
 *   <dir>/blobs/<key>.json       its CompleteRecord (written after the rename)
 *   <dir>/partial/<key>.part     bytes of a partial file (written at chunk offsets, fdatasync'd)
 *   <dir>/partial/<key>.json     its PartialRecord (written after the data, via rename)
 *   <dir>/models/<hash>.json     manifests; <dir>/refs/<hash>.json revision -> commit
 * Keys `sha256:<hex>` become file names `sha256-<hex>`. Files are read back with `fs.openAsBlob`,
 * so a 1.5 GB weight file is never copied into memory whole.
 */
import { createHash } from 'node:crypto';
import { constants, openAsBlob } from 'node:fs';
import { mkdir, open, readFile, readdir, rename, rm, stat, statfs, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_CHUNK_SIZE } from './idb-store';
import type { BlobKey, BlobStore, CompleteRecord, Manifest, PartialRecord, StorageEstimateLike } from './types';

/** `$KOALA_WEB_CACHE`, else `$HF_HOME/koala-web`, else `$XDG_CACHE_HOME/koala-web`, else `~/.cache/koala-web`. */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.KOALA_WEB_CACHE) return env.KOALA_WEB_CACHE;
  if (env.HF_HOME) return join(env.HF_HOME, 'koala-web');
  return join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'koala-web');
}

const fileName = (key: BlobKey) => key.replace(/[^A-Za-z0-9._-]/g, '-');
const hashName = (id: string) => createHash('sha1').update(id).digest('hex');

type Json = Record<string, unknown>;
const b64 = (u?: Uint8Array) => (u ? Buffer.from(u).toString('base64') : undefined);
const unb64 = (s?: unknown) => (typeof s === 'string' ? new Uint8Array(Buffer.from(s, 'base64')) : undefined);

async function readJson<T>(path: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as T;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' || e instanceof SyntaxError) return undefined;
    throw e;
  }
}

async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  const tmp = `${path}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  await writeFile(tmp, JSON.stringify(value));
  await rename(tmp, path);
}

export interface FsStoreOptions {
  dir?: string;
  chunkSize?: number;
  /** fdatasync each chunk before its record (default true). */
  sync?: boolean;
}

export class FsBlobStore implements BlobStore {
  readonly kind = 'filesystem';
  readonly dir: string;
  readonly chunkSize: number;
  private readonly sync: boolean;
  private ready?: Promise<void>;

  constructor(options: FsStoreOptions = {}) {
    this.dir = options.dir ?? defaultCacheDir();
    this.chunkSize = options.chunkSize ?? DEFAULT_CHUNK_SIZE;
    this.sync = options.sync ?? true;
  }

  private init(): Promise<void> {
    this.ready ??= Promise.all(['blobs', 'partial', 'models', 'refs'].map((d) => mkdir(join(this.dir, d), { recursive: true }))).then(() => {});
    return this.ready;
  }
  private blobPath(key: BlobKey) {
    return join(this.dir, 'blobs', fileName(key));
  }
  private partPath(key: BlobKey) {
    return join(this.dir, 'partial', fileName(key));
  }

  async getPartial(key: BlobKey): Promise<PartialRecord | undefined> {
    await this.init();
    const j = await readJson<Json>(`${this.partPath(key)}.json`);
    if (!j) return undefined;
    const rec = { ...j, sha256State: unb64(j.sha256State), sha1State: unb64(j.sha1State) } as PartialRecord;
    // The record is written after the data, so the data must hold at least `done` bytes.
    const st = await stat(`${this.partPath(key)}.part`).catch(() => undefined);
    return st && st.size >= rec.done ? rec : undefined;
  }

  async writeChunk(record: PartialRecord, index: number, data: Uint8Array): Promise<void> {
    await this.init();
    const p = `${this.partPath(record.key)}.part`;
    const fh = await open(p, constants.O_RDWR | constants.O_CREAT);
    try {
      let off = 0;
      while (off < data.length) {
        const { bytesWritten } = await fh.write(data, off, data.length - off, index * record.chunkSize + off);
        off += bytesWritten;
      }
      if (this.sync) await fh.datasync();
    } finally {
      await fh.close();
    }
    await writeJsonAtomic(`${this.partPath(record.key)}.json`, {
      ...record,
      sha256State: b64(record.sha256State),
      sha1State: b64(record.sha1State),
    });
  }

  async discardPartial(key: BlobKey): Promise<void> {
    await this.init();
    await rm(`${this.partPath(key)}.json`, { force: true });
    await rm(`${this.partPath(key)}.part`, { force: true });
  }

  async commit(record: CompleteRecord): Promise<void> {
    await this.init();
    const part = `${this.partPath(record.key)}.part`;
    const fh = await open(part, constants.O_RDWR | constants.O_CREAT);
    try {
      await fh.truncate(record.size);
    } finally {
      await fh.close();
    }
    await rename(part, this.blobPath(record.key));
    await writeJsonAtomic(`${this.blobPath(record.key)}.json`, record);
    await rm(`${this.partPath(record.key)}.json`, { force: true });
  }

  async getComplete(key: BlobKey): Promise<CompleteRecord | undefined> {
    await this.init();
    const rec = await readJson<CompleteRecord>(`${this.blobPath(key)}.json`);
    if (!rec) return undefined;
    const st = await stat(this.blobPath(key)).catch(() => undefined);
    return st && st.size === rec.size ? rec : undefined;
  }

  async readBlob(key: BlobKey): Promise<Blob | undefined> {
    const rec = await this.getComplete(key);
    if (!rec) return undefined;
    return openAsBlob(this.blobPath(key));
  }

  async deleteBlob(key: BlobKey): Promise<void> {
    await this.init();
    await rm(`${this.blobPath(key)}.json`, { force: true });
    await rm(this.blobPath(key), { force: true });
    await this.discardPartial(key);
  }

  async listBlobKeys(): Promise<BlobKey[]> {
    await this.init();
    const names = [...(await readdir(join(this.dir, 'blobs'))), ...(await readdir(join(this.dir, 'partial')))];
    const keys = new Set<string>();
    for (const n of names) {
      const base = n.replace(/\.(json|part)$/, '');
      if (base.endsWith('.tmp') || n.endsWith('.tmp')) continue;
      const m = /^(sha256|git|path)-(.*)$/.exec(base);
      if (m) keys.add(`${m[1]}:${m[2]}`);
    }
    return [...keys];
  }

  async getManifest(id: string): Promise<Manifest | undefined> {
    await this.init();
    return readJson<Manifest>(join(this.dir, 'models', `${hashName(id)}.json`));
  }
  async putManifest(m: Manifest): Promise<void> {
    await this.init();
    await writeJsonAtomic(join(this.dir, 'models', `${hashName(m.id)}.json`), m);
  }
  async deleteManifest(id: string): Promise<void> {
    await this.init();
    await rm(join(this.dir, 'models', `${hashName(id)}.json`), { force: true });
  }
  async listManifests(): Promise<Manifest[]> {
    await this.init();
    const out: Manifest[] = [];
    for (const n of await readdir(join(this.dir, 'models'))) {
      if (!n.endsWith('.json')) continue;
      const m = await readJson<Manifest>(join(this.dir, 'models', n));
      if (m) out.push(m);
    }
    return out;
  }
  async getRef(id: string): Promise<string | undefined> {
    await this.init();
    return (await readJson<{ commit: string }>(join(this.dir, 'refs', `${hashName(id)}.json`)))?.commit;
  }
  async putRef(id: string, commit: string): Promise<void> {
    await this.init();
    await writeJsonAtomic(join(this.dir, 'refs', `${hashName(id)}.json`), { id, commit });
  }
  async deleteRef(id: string): Promise<void> {
    await this.init();
    await rm(join(this.dir, 'refs', `${hashName(id)}.json`), { force: true });
  }
  async listRefs(): Promise<Array<{ id: string; commit: string }>> {
    await this.init();
    const out: Array<{ id: string; commit: string }> = [];
    for (const n of await readdir(join(this.dir, 'refs'))) {
      if (!n.endsWith('.json')) continue;
      const r = await readJson<{ id: string; commit: string }>(join(this.dir, 'refs', n));
      if (r) out.push(r);
    }
    return out;
  }

  /** Free disk space under the cache folder (quota = free bytes, usage = 0). */
  async estimate(): Promise<StorageEstimateLike> {
    await this.init();
    const s = await statfs(this.dir);
    return { quota: Number(s.bavail) * Number(s.bsize), usage: 0 };
  }
}

export function createFsStore(options?: FsStoreOptions): FsBlobStore {
  return new FsBlobStore(options);
}
