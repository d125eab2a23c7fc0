import type { ByteSource } from '../model/safetensors';

/**
 * Types shared by the hub resolver, the resumable downloader and the cache stores.
 * Plain TypeScript: runs in a Web Worker and in Node.
 */

/** One file of a hub repo at one commit, as the tree API lists it. */
export interface RepoFile {
  /** Path inside the repo, `/`-separated, e.g. `unet/config.json`. */
  path: string;
  /** Size in bytes of the real file (the LFS object for LFS files). */
  size: number;
  /** Git blob sha1 of the file as stored in git (for LFS files: of the pointer). */
  oid?: string;
  /** LFS sha256 (hex), present for LFS files (weights). */
  sha256?: string;
}

/** A repo revision pinned to a commit, with the files a pipeline needs. */
export interface ResolvedRepo {
  hubUrl: string;
  repo: string;
  /** What the caller asked for (branch, tag or commit). */
  revision: string;
  /** The 40-hex commit the revision pointed to. */
  commit: string;
  variant?: string;
  /** Selected files (pipeline needs), sorted by path. */
  files: RepoFile[];
  /** Weight files per component, in load order (shards in index order). */
  weights: Record<string, string[]>;
  /** Small files fetched while resolving (model_index.json, shard indexes): reused by the downloader. */
  prefetched?: Map<string, Uint8Array>;
  /** True when the hub could not be reached and a cached manifest answered. */
  offline?: boolean;
}

/** Storage key of a file's content: `sha256:<hex>` for LFS files, `git:<sha1>` for others. */
export type BlobKey = string;

/** A partially downloaded file. Written after each chunk's data. */
export interface PartialRecord {
  key: BlobKey;
  /** Expected total size. */
  size: number;
  /** Chunk size this partial was written with (resumes keep it). */
  chunkSize: number;
  /** Bytes committed (always a multiple of chunkSize, or == size). */
  done: number;
  /** hash-wasm sha256 state after `done` bytes (hasher.save()). */
  sha256State?: Uint8Array;
  /** hash-wasm sha1 state after `done` bytes of the git blob stream (for files without sha256). */
  sha1State?: Uint8Array;
  /** Validator of the response the bytes came from (If-Range on resume). */
  etag?: string;
  updatedAt: number;
}

/** A verified, complete file. */
export interface CompleteRecord {
  key: BlobKey;
  size: number;
  chunkSize: number;
  /** Number of chunks (IndexedDB store); 1 for the filesystem store. */
  chunks: number;
  sha256?: string;
  oid?: string;
  completedAt: number;
}

/** A cached model: the files of (hubUrl, repo, commit, variant). */
export interface Manifest {
  id: string;
  hubUrl: string;
  repo: string;
  commit: string;
  /** The revision name it was downloaded for (the last one, if several). */
  revision: string;
  variant?: string;
  files: Array<RepoFile & { key: BlobKey }>;
  weights: Record<string, string[]>;
  /** True once every file is verified and stored. */
  complete: boolean;
  bytes: number;
  createdAt: number;
  completedAt?: number;
}

/** Where cached bytes live: IndexedDB (browser), a folder (Node). */
export interface BlobStore {
  readonly kind: string;
  /** Preferred chunk size for new partial files. */
  readonly chunkSize: number;
  getPartial(key: BlobKey): Promise<PartialRecord | undefined>;
  /**
   * Store chunk `index` (bytes [index*chunkSize, +data.length)) of a partial file, then its record.
   * Data is durable before the record names it.
   */
  writeChunk(record: PartialRecord, index: number, data: Uint8Array): Promise<void>;
  /** Delete a partial file's data and record. */
  discardPartial(key: BlobKey): Promise<void>;
  /** Mark a fully written and verified partial file complete. */
  commit(record: CompleteRecord): Promise<void>;
  getComplete(key: BlobKey): Promise<CompleteRecord | undefined>;
  /** The complete file as a Blob (no full copy in memory); undefined if missing or evicted. */
  readBlob(key: BlobKey): Promise<Blob | undefined>;
  /** Delete a complete or partial file. */
  deleteBlob(key: BlobKey): Promise<void>;
  /** Keys of every complete or partial file. */
  listBlobKeys(): Promise<BlobKey[]>;
  getManifest(id: string): Promise<Manifest | undefined>;
  putManifest(manifest: Manifest): Promise<void>;
  deleteManifest(id: string): Promise<void>;
  listManifests(): Promise<Manifest[]>;
  /** Revision pointer: (hubUrl, repo, revision, variant) -> commit. */
  getRef(id: string): Promise<string | undefined>;
  putRef(id: string, commit: string): Promise<void>;
  deleteRef(id: string): Promise<void>;
  listRefs(): Promise<Array<{ id: string; commit: string }>>;
  /** Free space, when the store knows it (fs: statfs; browser: navigator.storage.estimate()). */
  estimate?(): Promise<StorageEstimateLike>;
}

export interface StorageEstimateLike {
  quota?: number;
  usage?: number;
}

/** The subset of `navigator.locks` the downloader uses. */
export interface LockManagerLike {
  request<T>(name: string, options: { mode?: 'exclusive' | 'shared'; signal?: AbortSignal }, callback: () => Promise<T>): Promise<T>;
}

export type FileState = 'queued' | 'cached' | 'downloading' | 'verifying' | 'done' | 'retrying' | 'failed';

export interface FileDownloadProgress {
  path: string;
  bytesDone: number;
  bytesTotal: number;
  /** Bytes per second (recent window). */
  rate: number;
  /** Seconds left, when known. */
  eta?: number;
  state: FileState;
}

export interface DownloadProgress {
  phase: 'resolve' | 'wait-lock' | 'download' | 'done';
  message: string;
  bytesDone: number;
  bytesTotal: number;
  rate: number;
  eta?: number;
  elapsed: number;
  files: FileDownloadProgress[];
}

/** The files of one model, from the cache or a picked folder: what the engine reads. */
export interface ModelFiles {
  source: 'hub' | 'local';
  repo: string;
  commit?: string;
  revision?: string;
  variant?: string;
  hubUrl?: string;
  /** Every path available (hub: the selected files; local: everything picked). */
  paths: string[];
  /** Weight files per component (`unet`, `vae`, ...) in load order. */
  weights: Record<string, string[]>;
  has(path: string): boolean;
  /** Size in bytes, or undefined when absent. */
  size(path: string): number | undefined;
  /** The file as a Blob; the engine slices it (`blob.slice(a, b).arrayBuffer()`). */
  get(path: string): Promise<Blob>;
  /**
   * Optional: a weight file as a ByteSource instead of a Blob (the benchmark's generated checkpoint, whose
   * bytes exist only when read). The engine prefers it when present.
   */
  byteSource?(path: string): ByteSource | undefined;
  text(path: string): Promise<string>;
  json<T = unknown>(path: string): Promise<T>;
}
