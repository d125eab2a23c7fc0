/**
 * Resolve a hub repo revision to a commit and the files a pipeline needs, with the hub's sizes and
 * LFS sha256. Endpoints (Hugging Face hub API):
 *   GET /api/models/{repo}/revision/{rev}              -> { sha, ... }
 *   GET /api/models/{repo}/tree/{commit}?recursive=true -> [{ type, path, size, oid, lfs?: { oid, size } }]
 *       (paginated with a `Link: <...>; rel="next"` header)
 *   GET /{repo}/resolve/{commit}/{path}                 -> file bytes
 */
import { EngineError } from '../protocol';
import {
  DEFAULT_RETRY,
  backoffDelay,
  hubPath,
  isAbort,
  isTransient,
  nextLink,
  sleep,
  statusError,
  toEngineError,
  cancelled,
  type RetryOptions,
} from './http';
import { selectPipelineFiles, shardsFromIndex } from './select';
import type { RepoFile, ResolvedRepo } from './types';

export const DEFAULT_HUB_URL = 'https://huggingface.co';
export const DEFAULT_REPO = 'etri-vilab/koala-700m-llava-cap';
export const DEFAULT_REVISION = 'main';
export const DEFAULT_VARIANT = 'fp16';

export interface HubRequestOptions {
  hubUrl?: string;
  /** Bearer token for gated/private repos. */
  token?: string;
  fetch?: typeof fetch;
  signal?: AbortSignal;
  retry?: Partial<RetryOptions>;
}

export interface ResolveOptions extends HubRequestOptions {
  repo?: string;
  revision?: string;
  /** Weight variant; `null` or '' = fp32 files. Default `fp16`. */
  variant?: string | null;
  /** The commit `revision` points to, when already known (skips the revision request). */
  commit?: string;
}

interface TreeEntry {
  type: string;
  path: string;
  size: number;
  oid?: string;
  lfs?: { oid: string; size: number };
}

export function resolveUrl(hubUrl: string, repo: string, commit: string, path: string): string {
  return hubPath(hubUrl, repo, 'resolve', commit, path);
}

export function authHeaders(token?: string): Record<string, string> {
  return token ? { authorization: `Bearer ${token}` } : {};
}

/** GET with retries on transient failures; throws EngineError on anything else. */
export async function hubGet(url: string, opts: HubRequestOptions, what: string): Promise<Response> {
  const retry = { ...DEFAULT_RETRY, ...opts.retry };
  const f = opts.fetch ?? fetch;
  for (let attempt = 0; ; attempt++) {
    try {
      const res = await f(url, { headers: authHeaders(opts.token), signal: opts.signal, cache: 'no-store' });
      if (!res.ok) {
        await res.body?.cancel().catch(() => {});
        throw statusError(res, url);
      }
      return res;
    } catch (err) {
      if (isAbort(err, opts.signal)) throw cancelled('Resolving the model');
      if (isTransient(err) && attempt < retry.retries) {
        await sleep(backoffDelay(attempt, retry, err), opts.signal);
        continue;
      }
      throw toEngineError(err, what);
    }
  }
}

async function getJson<T>(url: string, opts: HubRequestOptions, what: string): Promise<{ body: T; res: Response }> {
  const res = await hubGet(url, opts, what);
  const text = await res.text();
  try {
    return { body: JSON.parse(text) as T, res };
  } catch {
    throw new EngineError('network', `${what}: the hub answered something that is not JSON (${text.slice(0, 80).replace(/\s+/g, ' ')}…) from ${url}`);
  }
}

/** The commit a revision (branch, tag or commit) points to. */
export async function resolveCommit(repo: string, revision: string, opts: HubRequestOptions): Promise<string> {
  const hubUrl = opts.hubUrl ?? DEFAULT_HUB_URL;
  // one path segment even for `refs/pr/1`
  const url = `${hubPath(hubUrl, 'api/models', repo, 'revision')}/${encodeURIComponent(revision)}`;
  const { body } = await getJson<{ sha?: string }>(url, opts, `Resolving ${repo}@${revision}`);
  if (typeof body.sha !== 'string' || !/^[0-9a-f]{40}$/.test(body.sha)) {
    throw new EngineError('network', `Resolving ${repo}@${revision}: the hub's answer has no commit sha`);
  }
  return body.sha;
}

/** Every file of the repo at `commit` (follows pagination). */
export async function listRepoFiles(repo: string, commit: string, opts: HubRequestOptions): Promise<RepoFile[]> {
  const hubUrl = opts.hubUrl ?? DEFAULT_HUB_URL;
  let url: string | undefined = hubPath(hubUrl, 'api/models', repo, 'tree', commit) + '?recursive=true';
  const files: RepoFile[] = [];
  while (url) {
    const { body, res }: { body: TreeEntry[]; res: Response } = await getJson<TreeEntry[]>(url, opts, `Listing files of ${repo}@${commit.slice(0, 7)}`);
    if (!Array.isArray(body)) throw new EngineError('network', `Listing files of ${repo}: the hub's answer is not a list`);
    for (const e of body) {
      if (e.type !== 'file') continue;
      files.push({ path: e.path, size: e.lfs?.size ?? e.size, oid: e.oid, sha256: e.lfs?.oid });
    }
    const next = nextLink(res.headers.get('link'));
    url = next ? new URL(next, url).toString() : undefined;
  }
  return files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** Fetch a small file by commit and check its size against the tree. */
async function fetchSmall(repo: string, commit: string, file: RepoFile, opts: HubRequestOptions): Promise<Uint8Array> {
  const hubUrl = opts.hubUrl ?? DEFAULT_HUB_URL;
  const res = await hubGet(resolveUrl(hubUrl, repo, commit, file.path), opts, `Downloading ${file.path}`);
  const bytes = new Uint8Array(await res.arrayBuffer());
  if (bytes.length !== file.size) {
    throw new EngineError('integrity', `${file.path}: the hub sent ${bytes.length} bytes, its file list says ${file.size}`);
  }
  return bytes;
}

function parseJson(path: string, bytes: Uint8Array): unknown {
  const text = new TextDecoder().decode(bytes);
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new EngineError('bad-input', `${path} is not valid JSON (${(e as Error).message}); starts with ${JSON.stringify(text.slice(0, 40))}`);
  }
}

/** Pin a revision to its commit and select the pipeline's files. */
export async function resolveRepo(opts: ResolveOptions): Promise<ResolvedRepo> {
  const hubUrl = (opts.hubUrl ?? DEFAULT_HUB_URL).replace(/\/+$/, '');
  const repo = opts.repo ?? DEFAULT_REPO;
  const revision = opts.revision ?? DEFAULT_REVISION;
  const variant = opts.variant === undefined ? DEFAULT_VARIANT : opts.variant || undefined;
  const o = { ...opts, hubUrl };
  const commit = opts.commit ?? (await resolveCommit(repo, revision, o));
  const all = await listRepoFiles(repo, commit, o);
  const byPath = new Map(all.map((f) => [f.path, f]));
  const need = (path: string, why: string): RepoFile => {
    const f = byPath.get(path);
    if (!f) throw new EngineError('bad-input', `${repo}@${commit.slice(0, 7)} has no ${path} (${why})`);
    return f;
  };
  const prefetched = new Map<string, Uint8Array>();
  const indexFile = need('model_index.json', 'not a diffusers pipeline repo');
  const indexBytes = await fetchSmall(repo, commit, indexFile, o);
  prefetched.set(indexFile.path, indexBytes);
  const sel = selectPipelineFiles(
    all.map((f) => f.path),
    parseJson(indexFile.path, indexBytes),
    variant,
  );
  const chosen = new Set<string>(sel.sideFiles);
  const weights: Record<string, string[]> = {};
  for (const [comp, choice] of Object.entries(sel.weights)) {
    chosen.add(choice.path);
    if (choice.kind === 'single') {
      weights[comp] = [choice.path];
      continue;
    }
    const f = need(choice.path, 'shard index');
    const bytes = await fetchSmall(repo, commit, f, o);
    prefetched.set(f.path, bytes);
    const shards = shardsFromIndex(f.path, parseJson(f.path, bytes));
    for (const s of shards) {
      need(s, `listed by ${choice.path}`);
      chosen.add(s);
    }
    weights[comp] = shards;
  }
  const files = [...chosen].sort().map((p) => need(p, 'selected'));
  return { hubUrl, repo, revision, commit, variant, files, weights, prefetched };
}
