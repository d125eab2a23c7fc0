/** The engine's one call to get a model's files in the browser worker: a picked folder or the hub cache. */
import type { ModelSource } from '../protocol';
import { ensureModel, type EnsureModelOptions } from './ensure';
import { IdbBlobStore } from './idb-store';
import { localRepo } from './model-files';
import type { BlobStore, ModelFiles } from './types';

let defaultStore: IdbBlobStore | undefined;
/** The worker's IndexedDB cache (one per realm). */
export function browserStore(): IdbBlobStore {
  return (defaultStore ??= new IdbBlobStore());
}

export interface OpenModelOptions extends Omit<EnsureModelOptions, 'store' | 'repo' | 'revision' | 'variant' | 'hubUrl'> {
  store?: BlobStore;
}

/**
 * `source.localFiles` with `files` (or a directory handle): read the picked folder, no download.
 * Otherwise: ensure the hub repo is cached and verified (resumable download) and return its files.
 */
export function openModel(source: ModelSource, files: File[] | FileSystemDirectoryHandle | undefined, opts: OpenModelOptions = {}): Promise<ModelFiles> {
  if (source.localFiles || files) {
    return localRepo(files ?? [], { variant: source.variant ?? null, name: source.repo });
  }
  return ensureModel({
    ...opts,
    store: opts.store ?? browserStore(),
    repo: source.repo,
    revision: source.revision,
    variant: source.variant ?? null,
    hubUrl: source.hubUrl,
  });
}
