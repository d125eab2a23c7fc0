/**
 * One file of a hub repo (a LoRA), downloaded once into the same cache as the models: resolved to a
 * commit, verified against the hub's size and sha256, resumable, and kept by a manifest of its own
 * (variant `file:<path>`), so it shows in the cache list and can be deleted like a model. With the hub
 * unreachable, the last cached commit of that revision answers.
 */
import { blobKeyOf, downloadFile } from './download';
import { manifestId, refId, type EnsureModelOptions } from './ensure';
import { cancelled, isAbort } from './http';
import { defaultLocks } from './locks';
import { formatBytes } from './progress';
import { authHeaders, DEFAULT_HUB_URL, listRepoFiles, resolveCommit, resolveUrl } from './resolve';
import type { BlobStore, Manifest } from './types';
import { EngineError } from '../protocol';

export interface HubFileOptions extends Pick<EnsureModelOptions, 'token' | 'signal' | 'retry' | 'fetch' | 'locks' | 'offline'> {
  store: BlobStore;
  repo: string;
  path: string;
  revision?: string;
  hubUrl?: string;
  /** Bytes done / total while downloading. */
  onBytes?: (done: number, total: number) => void;
  /** Refuse anything but a .safetensors file (LoRAs, default true). */
  safetensorsOnly?: boolean;
}

export interface HubFile {
  blob: Blob;
  commit: string;
  sha256?: string;
}

const variantOf = (path: string) => `file:${path}`;

async function cached(store: BlobStore, id: string): Promise<HubFile | undefined> {
  const m = await store.getManifest(id);
  const f = m?.complete ? m.files[0] : undefined;
  if (!m || !f) return undefined;
  const blob = await store.readBlob(f.key);
  return blob && blob.size === f.size ? { blob, commit: m.commit, sha256: f.sha256 } : undefined;
}

export async function ensureHubFile(opts: HubFileOptions): Promise<HubFile> {
  const { store, repo, path, signal } = opts;
  const hubUrl = (opts.hubUrl ?? DEFAULT_HUB_URL).replace(/\/+$/, '');
  const revision = opts.revision ?? 'main';
  const variant = variantOf(path);
  const rid = refId(hubUrl, repo, revision, variant);
  if (/^[0-9a-f]{40}$/.test(revision)) {
    const hit = await cached(store, manifestId(hubUrl, repo, revision, variant));
    if (hit) return hit;
  }
  const hub = { hubUrl, token: opts.token, fetch: opts.fetch, signal, retry: opts.retry };
  let commit: string;
  try {
    if (opts.offline) throw new EngineError('network', 'offline mode: the hub was not contacted');
    const prev = await store.getRef(rid);
    const quick = prev ? { ...hub, retry: { ...opts.retry, retries: Math.min(1, opts.retry?.retries ?? 1) } } : hub;
    commit = await resolveCommit(repo, revision, quick);
  } catch (err) {
    if (isAbort(err, signal)) throw cancelled('Resolving the LoRA');
    if (!(err instanceof EngineError) || err.code !== 'network') throw err;
    const prev = await store.getRef(rid);
    const hit = prev ? await cached(store, manifestId(hubUrl, repo, prev, variant)) : undefined;
    if (hit) return hit;
    throw new EngineError('network', `${err.message}; and ${repo}/${path} is not cached`);
  }
  const id = manifestId(hubUrl, repo, commit, variant);
  const known = await cached(store, id);
  if (known) {
    await store.putRef(rid, commit);
    return known;
  }
  const list = await listRepoFiles(repo, commit, hub);
  const file = list.find((f) => f.path === path);
  if (!file) {
    const safetensors = list.filter((f) => f.path.endsWith('.safetensors')).map((f) => f.path);
    throw new EngineError(
      'bad-input',
      `${repo}@${revision} has no file ${path}` + (safetensors.length ? `; its .safetensors files: ${safetensors.slice(0, 10).join(', ')}` : ' (and no .safetensors file at all)'),
    );
  }
  if (opts.safetensorsOnly !== false && !file.path.endsWith('.safetensors')) throw new EngineError('bad-input', `${repo}/${path} is not a .safetensors file; LoRAs load from safetensors only`);
  const key = blobKeyOf(file, `${hubUrl}|${repo}|${commit}|${path}`);
  const est = await store.estimate?.().catch(() => undefined);
  if (est?.quota !== undefined && file.size > est.quota - (est.usage ?? 0)) {
    throw new EngineError('quota-exceeded', `${repo}/${path} needs ${formatBytes(file.size)} of storage but only ${formatBytes(Math.max(0, est.quota - (est.usage ?? 0)))} is free`);
  }
  const manifest: Manifest = {
    id,
    hubUrl,
    repo,
    commit,
    revision,
    variant,
    files: [{ ...file, key }],
    weights: {},
    complete: false,
    bytes: file.size,
    createdAt: Date.now(),
  };
  await store.putManifest(manifest);
  const locks = opts.locks ?? defaultLocks();
  await locks.request(`koala-web-blob:${key}`, { mode: 'exclusive', signal }, () =>
    downloadFile(
      { file, key, url: resolveUrl(hubUrl, repo, commit, path) },
      { store, fetch: opts.fetch, headers: authHeaders(opts.token), signal, retry: opts.retry, onBytes: (done) => opts.onBytes?.(done, file.size) },
    ),
  );
  await store.putManifest({ ...manifest, complete: true, completedAt: Date.now() });
  await store.putRef(rid, commit);
  const done = await cached(store, id);
  if (!done) throw new EngineError('integrity', `${repo}/${path} was downloaded but cannot be read back from the cache`);
  return done;
}
