/**
 * ensureModel: resolve -> cache check -> quota check -> one downloader per model (Web Locks) ->
 * resumable verified downloads, a few files in parallel -> manifest -> ModelFiles.
 *
 * The cache is content-addressed: a file's bytes are stored once under `sha256:<hex>` (LFS files) or
 * `git:<sha1>` (text files); a manifest per (hubUrl, repo, commit, variant) lists the paths and keys.
 * So revisions never mix (each commit has its own manifest) and a new revision downloads only the files
 * whose content changed. The previous commit of the same revision is deleted only after the new one is
 * complete.
 */
import type { CachedModel } from '../protocol';
import { EngineError } from '../protocol';
import { QuotaDuringDownload, blobKeyOf, downloadFile, storeBytes, type DownloadTask } from './download';
import { cancelled, isAbort, type RetryOptions } from './http';
import { defaultLocks } from './locks';
import { cachedModelFiles } from './model-files';
import { ProgressTracker, formatBytes } from './progress';
import { DEFAULT_HUB_URL, DEFAULT_REPO, DEFAULT_REVISION, DEFAULT_VARIANT, authHeaders, resolveCommit, resolveRepo, resolveUrl } from './resolve';
import type { BlobStore, DownloadProgress, LockManagerLike, Manifest, ModelFiles, ResolvedRepo, StorageEstimateLike } from './types';

export interface StorageManagerLike {
  estimate(): Promise<StorageEstimateLike>;
  persist?(): Promise<boolean>;
}

export interface EnsureModelOptions {
  store: BlobStore;
  repo?: string;
  revision?: string;
  /** Weight variant; default `fp16`; `null`/'' = fp32 files. */
  variant?: string | null;
  hubUrl?: string;
  token?: string;
  signal?: AbortSignal;
  onProgress?: (p: DownloadProgress) => void;
  /** Files downloaded at once (default 3). */
  concurrency?: number;
  retry?: Partial<RetryOptions>;
  fetch?: typeof fetch;
  /** Default: navigator.locks, else an in-process lock manager. */
  locks?: LockManagerLike;
  /** Default: navigator.storage, else the store's own estimate (fs: free disk space). */
  storage?: StorageManagerLike | null;
  /** Do not contact the hub; use the cached commit of this revision. */
  offline?: boolean;
  /** Keep the previous commit of this revision after a newer one completes (default false). */
  keepOldRevisions?: boolean;
  progressIntervalMs?: number;
}

export function manifestId(hubUrl: string, repo: string, commit: string, variant?: string): string {
  return `${hubUrl}|${repo}|${commit}|${variant ?? ''}`;
}

export function refId(hubUrl: string, repo: string, revision: string, variant?: string): string {
  return `${hubUrl}|${repo}|${revision}|${variant ?? ''}`;
}

function normalize(opts: EnsureModelOptions) {
  return {
    hubUrl: (opts.hubUrl ?? DEFAULT_HUB_URL).replace(/\/+$/, ''),
    repo: opts.repo ?? DEFAULT_REPO,
    revision: opts.revision ?? DEFAULT_REVISION,
    variant: opts.variant === undefined ? DEFAULT_VARIANT : opts.variant || undefined,
  };
}

/** Every file of the manifest is stored, complete and readable (not evicted). */
export async function manifestPresent(store: BlobStore, m: Manifest): Promise<boolean> {
  if (!m.complete) return false;
  for (const f of m.files) {
    const rec = await store.getComplete(f.key);
    if (!rec || rec.size !== f.size) return false;
    const blob = await store.readBlob(f.key);
    if (!blob || blob.size !== f.size) return false;
  }
  return true;
}

async function cachedFor(store: BlobStore, id: string): Promise<Manifest | undefined> {
  const m = await store.getManifest(id);
  return m && (await manifestPresent(store, m)) ? m : undefined;
}

function defaultStorage(store: BlobStore): StorageManagerLike | null {
  const nav = (globalThis as { navigator?: { storage?: StorageManagerLike } }).navigator;
  if (nav?.storage?.estimate) return nav.storage;
  if (store.estimate) return { estimate: () => store.estimate!() };
  return null;
}

/** Make sure a model is cached and verified; returns its files. */
export async function ensureModel(opts: EnsureModelOptions): Promise<ModelFiles> {
  const { store, signal } = opts;
  const { hubUrl, repo, revision, variant } = normalize(opts);
  const tracker = new ProgressTracker(opts.onProgress, opts.progressIntervalMs);
  tracker.send('resolve', `Resolving ${repo}@${revision}`);
  const rid = refId(hubUrl, repo, revision, variant);

  // A commit is immutable: a complete cached copy needs no network at all.
  if (/^[0-9a-f]{40}$/.test(revision)) {
    const m = await cachedFor(store, manifestId(hubUrl, repo, revision, variant));
    if (m) return cachedModelFiles(store, m);
  }
  let resolved: ResolvedRepo;
  try {
    if (opts.offline) throw new EngineError('network', `offline mode: the hub was not contacted`);
    const hub = { hubUrl, token: opts.token, fetch: opts.fetch, signal, retry: opts.retry };
    // With a complete cached copy of this revision, do not wait long for an unreachable hub.
    const prev = await store.getRef(rid);
    const fallback = prev ? await cachedFor(store, manifestId(hubUrl, repo, prev, variant)) : undefined;
    const quick = fallback ? { ...hub, retry: { ...opts.retry, retries: Math.min(1, opts.retry?.retries ?? 1) } } : hub;
    const commit = await resolveCommit(repo, revision, quick);
    const known = await cachedFor(store, manifestId(hubUrl, repo, commit, variant));
    if (known) {
      await finish(store, known, rid, opts.keepOldRevisions);
      return cachedModelFiles(store, known);
    }
    // null = the fp32 files (undefined would mean resolveRepo's default, fp16)
    resolved = await resolveRepo({ ...hub, repo, revision, variant: variant ?? null, commit });
  } catch (err) {
    if (isAbort(err, signal)) throw cancelled('Resolving the model');
    if (!(err instanceof EngineError) || err.code !== 'network') throw err;
    const commit = await store.getRef(rid);
    const m = commit ? await cachedFor(store, manifestId(hubUrl, repo, commit, variant)) : undefined;
    if (m) return cachedModelFiles(store, m);
    throw new EngineError('network', `${err.message}; and no complete cached copy of ${repo}@${revision} exists`);
  }
  const id = manifestId(hubUrl, repo, resolved.commit, variant);

  const locks = opts.locks ?? defaultLocks();
  tracker.send('wait-lock', `Waiting for another tab downloading ${repo}`);
  const manifest = await locks.request(`koala-web-hub:${id}`, { mode: 'exclusive', signal }, async () => {
    const again = await cachedFor(store, id);
    if (again) return again; // another tab finished it while we waited
    return download(opts, resolved, id, tracker);
  });
  await finish(store, manifest, rid, opts.keepOldRevisions);
  tracker.send('done', `${repo}@${resolved.commit.slice(0, 7)} is cached`);
  return cachedModelFiles(store, manifest);
}

/** Point the revision at the complete manifest; drop the previous commit it pointed to. */
async function finish(store: BlobStore, m: Manifest, rid: string, keepOld?: boolean): Promise<void> {
  const prev = await store.getRef(rid);
  if (prev === m.commit) return;
  await store.putRef(rid, m.commit);
  if (!prev || keepOld) return;
  const oldId = manifestId(m.hubUrl, m.repo, prev, m.variant);
  const refs = await store.listRefs();
  const stillUsed = refs.some((r) => r.commit === prev && r.id.startsWith(`${m.hubUrl}|${m.repo}|`) && r.id.endsWith(`|${m.variant ?? ''}`));
  if (!stillUsed) {
    await store.deleteManifest(oldId);
    await collectGarbage(store);
  }
}

async function download(opts: EnsureModelOptions, r: ResolvedRepo, id: string, tracker: ProgressTracker): Promise<Manifest> {
  const { store, signal } = opts;
  const files = r.files.map((f) => ({ ...f, key: blobKeyOf(f, `${r.hubUrl}|${r.repo}|${r.commit}|${f.path}`) }));
  // What is missing (content-addressed: a key shared by several paths is fetched once).
  const todo = new Map<string, DownloadTask>();
  let missing = 0;
  for (const f of files) {
    const complete = await store.getComplete(f.key);
    const present = complete && complete.size === f.size && (await store.readBlob(f.key))?.size === f.size;
    if (present) {
      tracker.addFile(f.path, f.size, f.size, 'cached');
      continue;
    }
    if (complete) await store.deleteBlob(f.key); // record without data: evicted
    const partial = await store.getPartial(f.key);
    const done = partial && partial.size === f.size ? partial.done : 0;
    tracker.addFile(f.path, f.size, done, 'queued');
    if (!todo.has(f.key)) {
      todo.set(f.key, { file: f, key: f.key, url: resolveUrl(r.hubUrl, r.repo, r.commit, f.path) });
      missing += f.size - done;
    }
  }
  await checkQuota(opts, r, missing);

  const manifest: Manifest = {
    id,
    hubUrl: r.hubUrl,
    repo: r.repo,
    commit: r.commit,
    revision: r.revision,
    variant: r.variant,
    files,
    weights: r.weights,
    complete: false,
    bytes: files.reduce((s, f) => s + f.size, 0),
    createdAt: Date.now(),
  };
  await store.putManifest(manifest);

  const inner = new AbortController();
  const onAbort = () => inner.abort();
  signal?.addEventListener('abort', onAbort, { once: true });
  const locks = opts.locks ?? defaultLocks();
  const tasks = [...todo.values()];
  const pathsOf = (key: string) => files.filter((f) => f.key === key).map((f) => f.path);
  let firstError: unknown;
  const runOne = async (task: DownloadTask) => {
    const pre = r.prefetched?.get(task.file.path);
    if (pre && (await storeBytes(task, pre, store))) {
      for (const p of pathsOf(task.key)) tracker.update(p, task.file.size, 'done');
      return;
    }
    await locks.request(`koala-web-blob:${task.key}`, { mode: 'exclusive', signal: inner.signal }, () =>
      downloadFile(task, {
        store,
        fetch: opts.fetch,
        headers: authHeaders(opts.token),
        signal: inner.signal,
        retry: opts.retry,
        onBytes: (done, state) => {
          for (const p of pathsOf(task.key)) tracker.update(p, done, state);
        },
      }),
    );
  };
  const queue = tasks.slice();
  const worker = async () => {
    for (let t = queue.shift(); t && firstError === undefined; t = queue.shift()) {
      try {
        await runOne(t);
      } catch (err) {
        if (firstError === undefined) firstError = err;
        for (const p of pathsOf(t.key)) tracker.update(p, (await store.getPartial(t.key))?.done ?? 0, 'failed');
        inner.abort();
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.max(1, opts.concurrency ?? 3) }, worker));
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
  if (firstError !== undefined) {
    if (signal?.aborted) throw cancelled();
    if (firstError instanceof QuotaDuringDownload) {
      let left = 0;
      for (const t of tasks) if (!(await store.getComplete(t.key))) left += t.file.size - ((await store.getPartial(t.key))?.done ?? 0);
      throw new EngineError(
        'quota-exceeded',
        `Storage ran out while saving ${firstError.path}: ${formatBytes(left)} more is needed to finish ${r.repo}. ` +
          `Free some space (or delete cached models) and load again; verified chunks are kept`,
      );
    }
    throw firstError;
  }
  const done: Manifest = { ...manifest, complete: true, completedAt: Date.now() };
  await store.putManifest(done);
  return done;
}

async function checkQuota(opts: EnsureModelOptions, r: ResolvedRepo, missing: number): Promise<void> {
  if (missing === 0) return;
  const storage = opts.storage === undefined ? defaultStorage(opts.store) : opts.storage;
  if (!storage) return;
  await storage.persist?.().catch(() => false);
  const est = await storage.estimate();
  if (est.quota === undefined) return;
  const free = est.quota - (est.usage ?? 0);
  if (missing > free) {
    throw new EngineError(
      'quota-exceeded',
      `${r.repo}@${r.commit.slice(0, 7)} needs ${formatBytes(missing)} more storage but only ${formatBytes(Math.max(0, free))} is free ` +
        `(quota ${formatBytes(est.quota)}, used ${formatBytes(est.usage ?? 0)}). Free space or delete cached models, then try again`,
    );
  }
}

/** Delete stored files that no manifest references. */
export async function collectGarbage(store: BlobStore): Promise<number> {
  const used = new Set<string>();
  for (const m of await store.listManifests()) for (const f of m.files) used.add(f.key);
  let n = 0;
  for (const key of await store.listBlobKeys()) {
    if (!used.has(key)) {
      await store.deleteBlob(key);
      n++;
    }
  }
  return n;
}

/** Cached models with sizes; `complete` is false when a file is missing (evicted). */
export async function listCachedModels(store: BlobStore): Promise<CachedModel[]> {
  const out: CachedModel[] = [];
  for (const m of await store.listManifests()) {
    out.push({
      repo: m.repo,
      commit: m.commit,
      revision: m.revision,
      variant: m.variant,
      hubUrl: m.hubUrl,
      bytes: m.bytes,
      complete: await manifestPresent(store, m),
      files: m.files.length,
    });
  }
  return out.sort((a, b) => (a.repo + a.commit < b.repo + b.commit ? -1 : 1));
}

/** Delete a cached model (all its commits when `commit` is absent); shared files used elsewhere stay. */
export async function deleteCachedModel(
  store: BlobStore,
  target: { repo: string; commit?: string; hubUrl?: string; variant?: string | null },
): Promise<number> {
  let n = 0;
  const match = (m: { repo: string; commit: string; hubUrl: string; variant?: string }) =>
    m.repo === target.repo &&
    (!target.commit || m.commit === target.commit) &&
    (!target.hubUrl || m.hubUrl === target.hubUrl.replace(/\/+$/, '')) &&
    (target.variant === undefined || m.variant === (target.variant || undefined));
  const gone: Manifest[] = [];
  for (const m of await store.listManifests()) {
    if (match(m)) {
      await store.deleteManifest(m.id);
      gone.push(m);
      n++;
    }
  }
  for (const ref of await store.listRefs()) {
    if (gone.some((m) => ref.commit === m.commit && ref.id.startsWith(`${m.hubUrl}|${m.repo}|`))) await store.deleteRef(ref.id);
  }
  await collectGarbage(store);
  return n;
}
