/**
 * BlobStore in IndexedDB (idb-keyval custom stores): two databases, one for chunk Blobs and one for
 * records (partial/complete file records, manifests, revision refs).
 *   chunks:  `<key>#<index>` -> Blob (chunkSize bytes, the last one shorter)
 *   meta:    `p:<key>` PartialRecord, `c:<key>` CompleteRecord, `m:<id>` Manifest, `r:<id>` {id, commit}
 * A chunk is stored before the record that counts it; a complete record is written after every
 * chunk; deletes remove records before data. Reading a file joins its chunk Blobs with
 * `new Blob(chunks)`: the browser keeps them on disk, so no bytes are copied into JS memory.
 */
import { createStore, del, delMany, get, getMany, keys, set, type UseStore } from 'idb-keyval';
import type { BlobKey, BlobStore, CompleteRecord, Manifest, PartialRecord, StorageEstimateLike } from './types';

export const DEFAULT_CHUNK_SIZE = 32 * 1024 * 1024;

export interface IdbStoreOptions {
  /** Database name prefix (default `koala-web-hub`); tests use a unique one per case. */
  name?: string;
  chunkSize?: number;
}

const chunkKey = (key: BlobKey, index: number) => `${key}#${String(index).padStart(6, '0')}`;

export class IdbBlobStore implements BlobStore {
  readonly kind = 'indexeddb';
  readonly chunkSize: number;
  readonly chunksDb: string;
  readonly metaDb: string;
  private chunks: UseStore;
  private meta: UseStore;

  constructor(options: IdbStoreOptions = {}) {
    const name = options.name ?? 'koala-web-hub';
    this.chunkSize = options.chunkSize ?? DEFAULT_CHUNK_SIZE;
    this.chunksDb = `${name}-chunks`;
    this.metaDb = `${name}-meta`;
    this.chunks = createStore(this.chunksDb, 'chunks');
    this.meta = createStore(this.metaDb, 'meta');
  }

  getPartial(key: BlobKey): Promise<PartialRecord | undefined> {
    return get<PartialRecord>(`p:${key}`, this.meta);
  }

  async writeChunk(record: PartialRecord, index: number, data: Uint8Array): Promise<void> {
    await set(chunkKey(record.key, index), new Blob([data as Uint8Array<ArrayBuffer>]), this.chunks);
    await set(`p:${record.key}`, record, this.meta);
  }

  async discardPartial(key: BlobKey): Promise<void> {
    await del(`p:${key}`, this.meta);
    if (!(await get(`c:${key}`, this.meta))) await this.deleteChunks(key);
  }

  async commit(record: CompleteRecord): Promise<void> {
    await set(`c:${record.key}`, record, this.meta);
    await del(`p:${record.key}`, this.meta);
  }

  getComplete(key: BlobKey): Promise<CompleteRecord | undefined> {
    return get<CompleteRecord>(`c:${key}`, this.meta);
  }

  async readBlob(key: BlobKey): Promise<Blob | undefined> {
    const rec = await this.getComplete(key);
    if (!rec) return undefined;
    const ks = Array.from({ length: rec.chunks }, (_, i) => chunkKey(key, i));
    const parts = await getMany<Blob>(ks, this.chunks);
    if (parts.some((p) => !p)) return undefined;
    const blob = new Blob(parts as Blob[]);
    return blob.size === rec.size ? blob : undefined;
  }

  async deleteBlob(key: BlobKey): Promise<void> {
    await delMany([`c:${key}`, `p:${key}`], this.meta);
    await this.deleteChunks(key);
  }

  private async deleteChunks(key: BlobKey): Promise<void> {
    const all = await keys<string>(this.chunks);
    const mine = all.filter((k) => k.startsWith(`${key}#`));
    if (mine.length) await delMany(mine, this.chunks);
  }

  async listBlobKeys(): Promise<BlobKey[]> {
    const out = new Set<string>();
    for (const k of await keys<string>(this.meta)) if (k.startsWith('p:') || k.startsWith('c:')) out.add(k.slice(2));
    for (const k of await keys<string>(this.chunks)) out.add(k.slice(0, k.lastIndexOf('#')));
    return [...out];
  }

  getManifest(id: string): Promise<Manifest | undefined> {
    return get<Manifest>(`m:${id}`, this.meta);
  }
  putManifest(m: Manifest): Promise<void> {
    return set(`m:${m.id}`, m, this.meta);
  }
  deleteManifest(id: string): Promise<void> {
    return del(`m:${id}`, this.meta);
  }
  async listManifests(): Promise<Manifest[]> {
    const ks = (await keys<string>(this.meta)).filter((k) => k.startsWith('m:'));
    return (await getMany<Manifest>(ks, this.meta)).filter((m): m is Manifest => !!m);
  }
  async getRef(id: string): Promise<string | undefined> {
    return (await get<{ commit: string }>(`r:${id}`, this.meta))?.commit;
  }
  putRef(id: string, commit: string): Promise<void> {
    return set(`r:${id}`, { id, commit }, this.meta);
  }
  deleteRef(id: string): Promise<void> {
    return del(`r:${id}`, this.meta);
  }
  async listRefs(): Promise<Array<{ id: string; commit: string }>> {
    const ks = (await keys<string>(this.meta)).filter((k) => k.startsWith('r:'));
    return (await getMany<{ id: string; commit: string }>(ks, this.meta)).filter((r): r is { id: string; commit: string } => !!r);
  }

  async estimate(): Promise<StorageEstimateLike> {
    const nav = (globalThis as { navigator?: { storage?: { estimate(): Promise<StorageEstimateLike> } } }).navigator;
    return nav?.storage?.estimate ? nav.storage.estimate() : {};
  }
}

export function createIdbStore(options?: IdbStoreOptions): IdbBlobStore {
  return new IdbBlobStore(options);
}
