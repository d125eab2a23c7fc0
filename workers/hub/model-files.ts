/**
 * The "model files" view the engine reads: path -> Blob, from the cache or from a picked folder.
 *
 * Memory: `get()` returns a Blob backed by storage (IndexedDB chunk Blobs joined with `new Blob([...])`,
 * or `fs.openAsBlob` in Node); nothing is read until the engine slices it. The engine reads tensors
 * with `blob.slice(a, b).arrayBuffer()`, so the peak JS memory for a weight file is the largest slice
 * it asks for (e.g. one tensor, or one external-data range handed to ORT), never an extra full copy.
 */
import { EngineError } from '../protocol';
import { selectPipelineFiles, shardsFromIndex } from './select';
import type { BlobStore, Manifest, ModelFiles } from './types';

abstract class BaseModelFiles {
  abstract get(path: string): Promise<Blob>;
  async text(path: string): Promise<string> {
    return (await this.get(path)).text();
  }
  async json<T = unknown>(path: string): Promise<T> {
    const text = await this.text(path);
    try {
      return JSON.parse(text) as T;
    } catch (e) {
      throw new EngineError('bad-input', `${path} is not valid JSON: ${(e as Error).message}`);
    }
  }
}

class CachedModelFiles extends BaseModelFiles implements ModelFiles {
  readonly source = 'hub' as const;
  readonly repo: string;
  readonly commit: string;
  readonly revision: string;
  readonly variant?: string;
  readonly hubUrl: string;
  readonly paths: string[];
  readonly weights: Record<string, string[]>;
  private byPath: Map<string, Manifest['files'][number]>;

  constructor(
    private readonly store: BlobStore,
    manifest: Manifest,
  ) {
    super();
    this.repo = manifest.repo;
    this.commit = manifest.commit;
    this.revision = manifest.revision;
    this.variant = manifest.variant;
    this.hubUrl = manifest.hubUrl;
    this.paths = manifest.files.map((f) => f.path);
    this.weights = manifest.weights;
    this.byPath = new Map(manifest.files.map((f) => [f.path, f]));
  }
  has(path: string): boolean {
    return this.byPath.has(path);
  }
  size(path: string): number | undefined {
    return this.byPath.get(path)?.size;
  }
  async get(path: string): Promise<Blob> {
    const f = this.byPath.get(path);
    if (!f) throw new EngineError('bad-input', `${this.repo}@${this.commit.slice(0, 7)} has no file ${path} in its cached file list`);
    const blob = await this.store.readBlob(f.key);
    if (!blob || blob.size !== f.size) {
      throw new EngineError('integrity', `${path} of ${this.repo} is missing from the cache (storage was cleared or evicted); load the model again to re-download it`);
    }
    return blob;
  }
}

export function cachedModelFiles(store: BlobStore, manifest: Manifest): ModelFiles {
  return new CachedModelFiles(store, manifest);
}

class MapModelFiles extends BaseModelFiles implements ModelFiles {
  readonly source = 'local' as const;
  readonly paths: string[];
  weights: Record<string, string[]> = {};
  constructor(
    readonly repo: string,
    private readonly files: Map<string, Blob>,
    readonly variant?: string,
  ) {
    super();
    this.paths = [...files.keys()].sort();
  }
  has(path: string): boolean {
    return this.files.has(path);
  }
  size(path: string): number | undefined {
    return this.files.get(path)?.size;
  }
  async get(path: string): Promise<Blob> {
    const b = this.files.get(path);
    if (!b) throw new EngineError('bad-input', `the folder "${this.repo}" has no ${path}`);
    return b;
  }
}

/**
 * ModelFiles over in-memory path -> Blob entries (a picked folder, or files on disk in Node).
 * Selects the weights per component by the same rules as the hub (variant first, fp32 fallback).
 */
export async function modelFilesFromMap(name: string, files: Map<string, Blob>, variant?: string): Promise<ModelFiles> {
  const mf = new MapModelFiles(name, files, variant);
  if (!files.has('model_index.json')) {
    throw new EngineError('bad-input', `"${name}" is not a diffusers folder: model_index.json is missing (found ${mf.paths.slice(0, 5).join(', ') || 'no files'})`);
  }
  const sel = selectPipelineFiles(mf.paths, await mf.json('model_index.json'), variant);
  for (const [comp, choice] of Object.entries(sel.weights)) {
    if (choice.kind === 'single') {
      mf.weights[comp] = [choice.path];
      continue;
    }
    const shards = shardsFromIndex(choice.path, await mf.json(choice.path));
    for (const s of shards) if (!files.has(s)) throw new EngineError('bad-input', `"${name}": ${choice.path} lists ${s}, which is not in the folder`);
    mf.weights[comp] = shards;
  }
  return mf;
}

/** Minimal shape of FileSystemDirectoryHandle used here (async iteration isn't in every TS lib). */
interface DirHandleLike {
  kind: 'directory';
  name: string;
  values(): AsyncIterable<DirHandleLike | FileHandleLike>;
}
interface FileHandleLike {
  kind: 'file';
  name: string;
  getFile(): Promise<File>;
}

async function walk(dir: DirHandleLike, prefix: string, out: Map<string, Blob>): Promise<void> {
  for await (const entry of dir.values()) {
    if (entry.name.startsWith('.')) continue;
    if (entry.kind === 'directory') await walk(entry, `${prefix}${entry.name}/`, out);
    else out.set(prefix + entry.name, await entry.getFile());
  }
}

/**
 * A diffusers folder the user picked: `<input webkitdirectory>` files (their `webkitRelativePath`
 * starts with the folder name, which is stripped) or a FileSystemDirectoryHandle (showDirectoryPicker).
 * Nothing is read or copied until the engine asks for a file.
 */
export async function localRepo(
  source: File[] | FileSystemDirectoryHandle,
  options: { variant?: string | null; name?: string } = {},
): Promise<ModelFiles> {
  const variant = options.variant === undefined ? 'fp16' : options.variant || undefined;
  const files = new Map<string, Blob>();
  let name = options.name;
  if (Array.isArray(source)) {
    const rel = source.map((f) => (f as File & { webkitRelativePath?: string }).webkitRelativePath || f.name);
    const firsts = new Set(rel.map((r) => (r.includes('/') ? r.split('/')[0] : '')));
    const strip = firsts.size === 1 && !firsts.has('') && !rel.includes('model_index.json') ? [...firsts][0] + '/' : '';
    name ??= strip ? strip.slice(0, -1) : 'local folder';
    source.forEach((f, i) => {
      const p = rel[i].startsWith(strip) ? rel[i].slice(strip.length) : rel[i];
      if (!p.split('/').some((s) => s.startsWith('.'))) files.set(p, f);
    });
  } else {
    const dir = source as unknown as DirHandleLike;
    name ??= dir.name;
    await walk(dir, '', files);
  }
  return modelFilesFromMap(name, files, variant);
}
