/**
 * Browser side of the e2e harness: fixture repos fetched from the mock hub as Blobs, and golden tensors.
 */
import { blobSource, readSafetensorsHeader, readTensorF32, type SafetensorsFile } from '../../workers/model/safetensors';

interface RepoInfo {
  siblings?: { rfilename: string }[];
}

/** True for the files a pipeline needs (fp32 weights; no goldens, no fp16 variants, no checksums). */
export function isModelFile(path: string): boolean {
  return !path.startsWith('goldens/') && !path.includes('.fp16.') && path !== 'SHA256SUMS';
}

/** Fetches the repo's file list and then every file `keep` selects, as path -> Blob. */
export async function fetchRepoFiles(hub: string, repo: string, keep: (path: string) => boolean = isModelFile): Promise<Map<string, Blob>> {
  const api = `${hub}/api/models/${repo}/revision/main`;
  const res = await fetch(api);
  if (!res.ok) throw new Error(`${api}: HTTP ${res.status}`);
  const info = (await res.json()) as RepoInfo;
  if (!info.siblings?.length) throw new Error(`${api}: no files listed (siblings missing)`);
  const paths = info.siblings.map((s) => s.rfilename).filter(keep);
  const out = new Map<string, Blob>();
  await Promise.all(paths.map(async (p) => out.set(p, await fetchBlob(hub, repo, p))));
  return out;
}

export async function fetchBlob(hub: string, repo: string, path: string): Promise<Blob> {
  const url = `${hub}/${repo}/resolve/main/${path}`;
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return r.blob();
}

/** One goldens/*.safetensors file of a fixture repo. */
export class GoldenFile {
  private constructor(
    readonly name: string,
    private readonly file: SafetensorsFile,
  ) {}

  static async open(hub: string, repo: string, file: string): Promise<GoldenFile> {
    const path = `goldens/${file}`;
    return new GoldenFile(`${repo}/${path}`, await readSafetensorsHeader(blobSource(await fetchBlob(hub, repo, path), path)));
  }

  has(tensor: string): boolean {
    return this.file.tensors.has(tensor);
  }

  async tensor(tensor: string): Promise<{ data: Float32Array; shape: number[] }> {
    const info = this.file.tensors.get(tensor);
    if (!info) throw new Error(`${this.name}: no tensor "${tensor}"`);
    return { data: await readTensorF32(this.file, tensor), shape: [...info.shape] };
  }
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length mismatch: ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (!(d <= m)) m = Number.isNaN(d) ? Infinity : d;
  }
  return m;
}

export function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]!));
  return m;
}
