/** Scan a diffusers folder as a hub repo: file sizes, sha256, git blob sha1, LFS pointers, a stable commit. */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';

export interface MockFile {
  path: string;
  abs: string;
  size: number;
  sha256: string;
  /** Git blob sha1 of what git stores (the LFS pointer for LFS files). */
  oid: string;
  lfs: boolean;
  pointerSize?: number;
  mtimeMs: number;
}

export interface MockRepoState {
  dir: string;
  commit: string;
  files: MockFile[];
  byPath: Map<string, MockFile>;
}

/** Extensions Hugging Face's default .gitattributes sends to LFS. */
const LFS_RE = /\.(safetensors|bin|ckpt|pt|pth|onnx|msgpack|h5|pb|npy|npz|gguf|tar|zip|gz)$/i;

const cache = new Map<string, { size: number; mtimeMs: number; sha256: string; blobSha1: string }>();

async function hashFile(abs: string, size: number, mtimeMs: number): Promise<{ sha256: string; blobSha1: string }> {
  const hit = cache.get(abs);
  if (hit && hit.size === size && hit.mtimeMs === mtimeMs) return hit;
  const s256 = createHash('sha256');
  const s1 = createHash('sha1').update(`blob ${size}\0`);
  for await (const chunk of createReadStream(abs)) {
    s256.update(chunk as Buffer);
    s1.update(chunk as Buffer);
  }
  const out = { size, mtimeMs, sha256: s256.digest('hex'), blobSha1: s1.digest('hex') };
  cache.set(abs, out);
  return out;
}

export function lfsPointer(sha256: string, size: number): string {
  return `version https://git-lfs.github.com/spec/v1\noid sha256:${sha256}\nsize ${size}\n`;
}

function gitBlobSha1(text: string): string {
  const body = Buffer.from(text);
  return createHash('sha1').update(`blob ${body.length}\0`).update(body).digest('hex');
}

export async function scanRepo(dir: string): Promise<MockRepoState> {
  const files: MockFile[] = [];
  const walk = async (d: string, prefix: string) => {
    const entries = await readdir(d, { withFileTypes: true });
    for (const e of entries) {
      if (e.name.startsWith('.')) continue;
      const abs = join(d, e.name);
      if (e.isDirectory()) await walk(abs, `${prefix}${e.name}/`);
      else if (e.isFile()) {
        const st = await stat(abs);
        const { sha256, blobSha1 } = await hashFile(abs, st.size, st.mtimeMs);
        const lfs = LFS_RE.test(e.name);
        const pointer = lfs ? lfsPointer(sha256, st.size) : undefined;
        files.push({
          path: prefix + e.name,
          abs,
          size: st.size,
          sha256,
          oid: pointer ? gitBlobSha1(pointer) : blobSha1,
          lfs,
          pointerSize: pointer ? Buffer.byteLength(pointer) : undefined,
          mtimeMs: st.mtimeMs,
        });
      }
    }
  };
  await walk(dir, '');
  files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const h = createHash('sha1').update('mock-hub commit\n');
  for (const f of files) h.update(`${f.path} ${f.sha256}\n`);
  return { dir, commit: h.digest('hex'), files, byPath: new Map(files.map((f) => [f.path, f])) };
}
