/**
 * Node entry points for the CLI: the same ensureModel with a filesystem store, and local folders.
 */
import { openAsBlob } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { EngineError } from '../protocol';
import { ensureModel, type EnsureModelOptions } from './ensure';
import { FileLocks } from './file-locks.node.js';
import { createFsStore } from './fs-store.node.js';
import { modelFilesFromMap } from './model-files';
import type { ModelFiles } from './types';

export interface EnsureModelNodeOptions extends Omit<EnsureModelOptions, 'store'> {
  /** Cache folder; default defaultCacheDir() (`$KOALA_WEB_CACHE`, `$HF_HOME/koala-web`, `~/.cache/koala-web`). */
  cacheDir?: string;
  chunkSize?: number;
}

/** Download (resumably, verified) into the cache folder, or use it; returns Blob-backed files. */
export function ensureModelNode(opts: EnsureModelNodeOptions = {}): Promise<ModelFiles> {
  const store = createFsStore({ dir: opts.cacheDir, chunkSize: opts.chunkSize });
  // One downloader per model and per file across processes sharing the cache folder.
  return ensureModel({ locks: new FileLocks(join(store.dir, 'locks')), ...opts, store });
}

/** A diffusers folder on disk as ModelFiles (files opened lazily with fs.openAsBlob). */
export async function localRepoFromDir(dir: string, options: { variant?: string | null } = {}): Promise<ModelFiles> {
  const st = await stat(dir).catch(() => undefined);
  if (!st?.isDirectory()) throw new EngineError('bad-input', `${dir} is not a folder`);
  const files = new Map<string, Blob>();
  const walk = async (d: string, prefix: string) => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      if (e.name.startsWith('.')) continue;
      if (e.isDirectory()) await walk(join(d, e.name), `${prefix}${e.name}/`);
      else if (e.isFile()) files.set(prefix + e.name, await openAsBlob(join(d, e.name)));
    }
  };
  await walk(dir, '');
  const variant = options.variant === undefined ? 'fp16' : options.variant || undefined;
  return modelFilesFromMap(basename(dir), files, variant);
}

/**
 * CLI `--model`: an existing folder is read in place; anything else is a hub repo id, downloaded
 * into the cache folder (resumable, verified) or taken from it when the hub is unreachable.
 */
export async function openModelNode(model: string, opts: EnsureModelNodeOptions = {}): Promise<ModelFiles> {
  const st = await stat(model).catch(() => undefined);
  if (st?.isDirectory()) return localRepoFromDir(model, { variant: opts.variant });
  if (!/^[\w.-]+\/[\w.-]+$/.test(model)) {
    throw new EngineError('bad-input', `--model ${model}: not a folder, and not a hub repo id like etri-vilab/koala-700m-llava-cap`);
  }
  return ensureModelNode({ ...opts, repo: model });
}
