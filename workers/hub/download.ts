/**
 * Resumable, verified download of one file into a BlobStore.
 *
 * The body is cut into chunks of `record.chunkSize` bytes. Each full chunk is hashed (sha256 for LFS
 * files, git blob sha1 for the others), written to the store, and only then is the partial record
 * (bytes done + the hasher's saved state) written. A retry, a reload or a cancelled download resumes
 * at the first missing chunk with `Range: bytes=<done>-` and `If-Range: <etag>`, without re-hashing.
 * When all bytes are in, the digest and size must match the hub's metadata before the file is
 * committed; a mismatch deletes the file and fetches it once more, then fails with `integrity`.
 */
import { createSHA1, createSHA256, type IHasher } from 'hash-wasm';
import { EngineError } from '../protocol';
import {
  DEFAULT_RETRY,
  RejectedResponse,
  ShortRead,
  backoffDelay,
  cancelled,
  isAbort,
  isTransient,
  sleep,
  statusError,
  toEngineError,
  type RetryOptions,
} from './http';
import type { BlobKey, BlobStore, CompleteRecord, FileState, PartialRecord, RepoFile } from './types';

export function blobKeyOf(file: RepoFile, fallback: string): BlobKey {
  if (file.sha256) return `sha256:${file.sha256.toLowerCase()}`;
  if (file.oid && /^[0-9a-f]{40}$/i.test(file.oid)) return `git:${file.oid.toLowerCase()}`;
  return `path:${fallback}`;
}

export interface DownloadTask {
  file: RepoFile;
  key: BlobKey;
  url: string;
}

export interface DownloadFileOptions {
  store: BlobStore;
  fetch?: typeof fetch;
  headers?: Record<string, string>;
  signal?: AbortSignal;
  retry?: Partial<RetryOptions>;
  /** A body that sends nothing for this long counts as dropped (default 60 s). */
  stallTimeoutMs?: number;
  /** Bytes of this file present (committed + in flight), and its state. */
  onBytes?: (bytesDone: number, state: FileState) => void;
}

const HTML_TYPES = /text\/html|application\/xhtml/i;

function isWeightPath(path: string): boolean {
  return path.endsWith('.safetensors');
}

/** Hashers for one file, restored from a partial record. */
class FileHashers {
  private constructor(
    readonly sha256?: IHasher,
    readonly sha1?: IHasher,
  ) {}
  static async create(file: RepoFile, rec: PartialRecord): Promise<FileHashers> {
    let sha256: IHasher | undefined;
    let sha1: IHasher | undefined;
    if (file.sha256) {
      sha256 = await createSHA256();
      sha256.init();
      if (rec.done > 0 && rec.sha256State) sha256.load(rec.sha256State);
    } else if (file.oid && /^[0-9a-f]{40}$/i.test(file.oid)) {
      sha1 = await createSHA1();
      sha1.init();
      if (rec.done > 0 && rec.sha1State) sha1.load(rec.sha1State);
      else sha1.update(new TextEncoder().encode(`blob ${file.size}\0`));
    }
    return new FileHashers(sha256, sha1);
  }
  update(data: Uint8Array): void {
    this.sha256?.update(data);
    this.sha1?.update(data);
  }
  states(): Pick<PartialRecord, 'sha256State' | 'sha1State'> {
    return { sha256State: this.sha256?.save(), sha1State: this.sha1?.save() };
  }
  /** Compare with the hub's metadata; returns a mismatch description or undefined. */
  check(file: RepoFile): string | undefined {
    if (this.sha256) {
      const got = this.sha256.digest('hex');
      if (got !== file.sha256!.toLowerCase()) return `sha256 ${got} but the hub says ${file.sha256}`;
    } else if (this.sha1) {
      const got = this.sha1.digest('hex');
      if (got !== file.oid!.toLowerCase()) return `git blob sha1 ${got} but the hub says ${file.oid}`;
    }
    return undefined;
  }
}

function freshRecord(key: BlobKey, size: number, chunkSize: number): PartialRecord {
  return { key, size, chunkSize, done: 0, updatedAt: Date.now() };
}

function isStrongEtag(etag: string | undefined): etag is string {
  return !!etag && !etag.startsWith('W/');
}

/** Check the first bytes at offset 0: a safetensors header for weights, no HTML for text files. */
function checkMagic(path: string, head: Uint8Array, size: number): void {
  if (isWeightPath(path)) {
    if (head.length < 9) return;
    let n = 0;
    for (let i = 7; i >= 0; i--) n = n * 256 + head[i];
    if (head[8] !== 0x7b || n < 2 || 8 + n > size) {
      const text = new TextDecoder().decode(head.subarray(0, Math.min(40, head.length)));
      throw new RejectedResponse(`expected a .safetensors file but the bytes start with ${JSON.stringify(text)}`);
    }
  } else {
    let i = 0;
    while (i < head.length && (head[i] === 0x20 || head[i] === 0x0a || head[i] === 0x0d || head[i] === 0x09)) i++;
    const t = new TextDecoder().decode(head.subarray(i, i + 15)).toLowerCase();
    if (path.endsWith('.json') && (t.startsWith('<!doctype') || t.startsWith('<html'))) {
      throw new RejectedResponse(`expected JSON but the server sent an HTML page`);
    }
  }
}

function quotaError(err: unknown): boolean {
  const e = err as { name?: string; code?: string } | null;
  return e?.name === 'QuotaExceededError' || e?.code === 'ENOSPC' || e?.code === 'EDQUOT';
}

export class QuotaDuringDownload extends Error {
  constructor(
    readonly path: string,
    readonly bytesLeft: number,
    cause: unknown,
  ) {
    super(`storage full while saving ${path}`);
    this.name = 'QuotaDuringDownload';
    this.cause = cause;
  }
}

/**
 * Download one file (or finish a partial one) into the store and verify it.
 * Resolves with the committed record. Throws EngineError (`cancelled`, `network`, `integrity`)
 * or QuotaDuringDownload.
 */
export async function downloadFile(task: DownloadTask, opts: DownloadFileOptions): Promise<CompleteRecord> {
  const { file, key } = task;
  const { store, signal } = opts;
  const retry = { ...DEFAULT_RETRY, ...opts.retry };
  const existing = await store.getComplete(key);
  if (existing && existing.size === file.size) return existing;

  let verifyFailures = 0;
  for (;;) {
    let rec = await store.getPartial(key);
    if (!rec || rec.size !== file.size || rec.done > file.size) {
      if (rec) await store.discardPartial(key);
      rec = freshRecord(key, file.size, store.chunkSize);
    }
    let attempts = 0;
    let rejected: RejectedResponse | undefined;
    while (rec.done < file.size || file.size === 0) {
      const before = rec.done;
      try {
        rec = await fetchInto(task, rec, opts);
        if (file.size === 0) break;
      } catch (err) {
        if (isAbort(err, signal)) throw cancelled();
        if (err instanceof QuotaDuringDownload) throw err;
        if (quotaError(err)) throw new QuotaDuringDownload(file.path, file.size - rec.done, err);
        if (err instanceof RejectedResponse) {
          rejected = err;
          break;
        }
        rec = (await store.getPartial(key)) ?? freshRecord(key, file.size, store.chunkSize);
        if (rec.done > before) attempts = 0; // progress made: the retry budget starts again
        if (isTransient(err) && attempts < retry.retries) {
          opts.onBytes?.(rec.done, 'retrying');
          await sleep(backoffDelay(attempts++, retry, err), signal);
          continue;
        }
        throw toEngineError(err, `Downloading ${file.path}`);
      }
    }
    let problem = rejected?.message;
    if (!problem) {
      opts.onBytes?.(rec.done, 'verifying');
      const hashers = await FileHashers.create(file, rec);
      problem = rec.done !== file.size ? `got ${rec.done} bytes, expected ${file.size}` : hashers.check(file);
      if (!problem) {
        const chunks = Math.max(1, Math.ceil(file.size / rec.chunkSize));
        const done: CompleteRecord = {
          key,
          size: file.size,
          chunkSize: rec.chunkSize,
          chunks,
          sha256: file.sha256,
          oid: file.oid,
          completedAt: Date.now(),
        };
        await store.commit(done);
        opts.onBytes?.(file.size, 'done');
        return done;
      }
    }
    await store.discardPartial(key);
    verifyFailures++;
    if (verifyFailures > 1) {
      throw new EngineError(
        'integrity',
        `${file.path} failed verification twice (${problem}); nothing was cached. The hub or a proxy is serving wrong bytes; try again later or another network`,
      );
    }
    opts.onBytes?.(0, 'retrying');
  }
}

/** One HTTP request: stream from `rec.done` to the end, committing whole chunks. */
async function fetchInto(task: DownloadTask, rec: PartialRecord, opts: DownloadFileOptions): Promise<PartialRecord> {
  const { file, url } = task;
  const f = opts.fetch ?? fetch;
  const headers: Record<string, string> = { ...opts.headers };
  const resuming = rec.done > 0;
  if (resuming) {
    headers.range = `bytes=${rec.done}-`;
    if (isStrongEtag(rec.etag)) headers['if-range'] = rec.etag;
  }
  // no-store: the browser's HTTP cache would keep a second copy of every weight file (the hub's answers are
  // `immutable`) and would answer ranges itself; the cache in IndexedDB is the only copy.
  const res = await f(url, { headers, signal: opts.signal, cache: 'no-store' });
  if (res.status !== 200 && res.status !== 206) {
    await res.body?.cancel().catch(() => {});
    throw statusError(res, url);
  }
  const ctype = res.headers.get('content-type') ?? '';
  if (HTML_TYPES.test(ctype) || (isWeightPath(file.path) && /json/i.test(ctype))) {
    await res.body?.cancel().catch(() => {});
    throw new RejectedResponse(`expected ${isWeightPath(file.path) ? 'binary weights' : 'the file'} but the server sent ${ctype} (HTTP ${res.status})`);
  }
  const etag = res.headers.get('x-linked-etag') ?? res.headers.get('etag') ?? undefined;
  const encoded = !!res.headers.get('content-encoding') && res.headers.get('content-encoding') !== 'identity';
  const length = res.headers.get('content-length');
  let start = 0;
  if (res.status === 206) {
    const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(res.headers.get('content-range') ?? '');
    if (!m) throw new RejectedResponse(`HTTP 206 without a valid Content-Range (${res.headers.get('content-range')})`);
    start = Number(m[1]);
    if (m[3] !== '*' && Number(m[3]) !== file.size) throw new RejectedResponse(`the server's file is ${m[3]} bytes, the hub's file list says ${file.size}`);
    if (start !== rec.done) throw new RejectedResponse(`asked for bytes from ${rec.done}, the server sent from ${start}`);
    if (Number(m[2]) !== file.size - 1) throw new RejectedResponse(`asked for bytes ${rec.done}-${file.size - 1}, got ${m[1]}-${m[2]}`);
  } else {
    if (!encoded && length !== null && Number(length) !== file.size) {
      await res.body?.cancel().catch(() => {});
      throw new RejectedResponse(`the server sent ${length} bytes, the hub's file list says ${file.size}`);
    }
    if (resuming) {
      // Range ignored (If-Range mismatch or no range support): start over from byte 0.
      await opts.store.discardPartial(rec.key);
      rec = freshRecord(rec.key, file.size, rec.chunkSize);
    }
  }
  rec = { ...rec, etag: etag ?? rec.etag };
  const hashers = await FileHashers.create(file, rec);
  if (file.size === 0) {
    await res.body?.cancel().catch(() => {});
    return rec;
  }
  if (!res.body) throw new ShortRead(`empty body for ${file.path}`);
  const reader = res.body.getReader();
  const chunkSize = rec.chunkSize;
  let index = rec.done / chunkSize;
  let buf = new Uint8Array(Math.min(chunkSize, file.size - rec.done));
  let fill = 0;
  let headChecked = rec.done > 0;
  try {
    for (;;) {
      const { value, done } = await readOrAbort(reader, opts.signal, opts.stallTimeoutMs ?? 60_000);
      if (done) break;
      let off = 0;
      while (off < value.length) {
        if (rec.done + fill >= file.size) throw new RejectedResponse(`the server sent more than the ${file.size} bytes the hub lists`);
        const n = Math.min(value.length - off, buf.length - fill);
        buf.set(value.subarray(off, off + n), fill);
        fill += n;
        off += n;
        if (!headChecked && fill >= Math.min(9, file.size)) {
          checkMagic(file.path, buf.subarray(0, fill), file.size);
          headChecked = true;
        }
        if (fill === buf.length) {
          hashers.update(buf);
          const next: PartialRecord = { ...rec, done: rec.done + fill, ...hashers.states(), updatedAt: Date.now() };
          await opts.store.writeChunk(next, index, buf);
          rec = next;
          index++;
          fill = 0;
          if (rec.done < file.size) buf = new Uint8Array(Math.min(chunkSize, file.size - rec.done));
        }
      }
      opts.onBytes?.(rec.done + fill, 'downloading');
    }
  } catch (err) {
    await reader.cancel(err).catch(() => {});
    throw err;
  } finally {
    reader.releaseLock();
  }
  if (rec.done < file.size) throw new ShortRead(`${file.path}: connection closed after ${rec.done + fill} of ${file.size} bytes`);
  return rec;
}

/** reader.read(), rejected as soon as the signal aborts (some fetch stacks leave a pending read hanging). */
function readOrAbort(reader: ReadableStreamDefaultReader<Uint8Array>, signal: AbortSignal | undefined, stallMs: number): Promise<ReadableStreamReadResult<Uint8Array>> {
  if (signal?.aborted) return Promise.reject(cancelled());
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(cancelled());
    };
    // No byte for stallMs: treat like a dropped connection (retried from the last chunk).
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      reject(new ShortRead(`no data for ${Math.round(stallMs / 1000)} s`));
    }, stallMs);
    signal?.addEventListener('abort', onAbort, { once: true });
    reader.read().then(
      (r) => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        resolve(r);
      },
      (e) => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

/** Store bytes already in memory (small files fetched while resolving), verified like a download. */
export async function storeBytes(task: DownloadTask, bytes: Uint8Array, store: BlobStore): Promise<CompleteRecord | undefined> {
  const { file, key } = task;
  if (bytes.length !== file.size) return undefined;
  const rec = freshRecord(key, file.size, Math.max(store.chunkSize, file.size));
  const hashers = await FileHashers.create(file, rec);
  hashers.update(bytes);
  const states = hashers.states();
  if (hashers.check(file)) return undefined;
  await store.discardPartial(key);
  await store.writeChunk({ ...rec, done: file.size, ...states, updatedAt: Date.now() }, 0, bytes);
  const done: CompleteRecord = { key, size: file.size, chunkSize: rec.chunkSize, chunks: 1, sha256: file.sha256, oid: file.oid, completedAt: Date.now() };
  await store.commit(done);
  return done;
}
