import { describe, expect, it } from 'vitest';
import { openAsBlob } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { localRepo } from './model-files';
import { localRepoFromDir, openModelNode } from './node.node.js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { startHubEnv } from './test-hub.node.js';
import { EXPECTED_FP16, FIXTURE, sha256Blob, sha256File } from './test-hub.node.js';

const WEIGHTS = {
  text_encoder: ['text_encoder/model.fp16.safetensors'],
  text_encoder_2: ['text_encoder_2/model.fp16.safetensors'],
  unet: ['unet/diffusion_pytorch_model.fp16.safetensors'],
  vae: ['vae/diffusion_pytorch_model.fp16.safetensors'],
};

async function listFiles(dir: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    if (e.isDirectory()) out.push(...(await listFiles(join(dir, e.name), `${prefix}${e.name}/`)));
    else out.push(prefix + e.name);
  }
  return out;
}

/** A FileSystemDirectoryHandle look-alike over a real folder (what showDirectoryPicker returns). */
function dirHandle(dir: string, name: string): FileSystemDirectoryHandle {
  return {
    kind: 'directory',
    name,
    async *values() {
      for (const e of await readdir(dir, { withFileTypes: true })) {
        if (e.isDirectory()) yield dirHandle(join(dir, e.name), e.name);
        else yield { kind: 'file', name: e.name, getFile: async () => new File([await openAsBlob(join(dir, e.name))], e.name) };
      }
    },
  } as unknown as FileSystemDirectoryHandle;
}

describe('loading a picked diffusers folder', () => {
  it('<input webkitdirectory> files: strips the folder name, picks the fp16 weights, reads bytes unchanged', async () => {
    const rel = await listFiles(FIXTURE);
    const files = await Promise.all(
      rel.map(async (p) => {
        const f = new File([await openAsBlob(join(FIXTURE, p))], p.split('/').pop()!);
        Object.defineProperty(f, 'webkitRelativePath', { value: `tiny-sdxl/${p}` });
        return f;
      }),
    );
    const mf = await localRepo(files);
    expect(mf.source).toBe('local');
    expect(mf.repo).toBe('tiny-sdxl');
    expect(mf.weights).toEqual(WEIGHTS);
    for (const p of EXPECTED_FP16) expect(await sha256Blob(await mf.get(p)), p).toBe(await sha256File(join(FIXTURE, p)));
    expect((await mf.json<{ _class_name: string }>('model_index.json'))._class_name).toBe('StableDiffusionXLPipeline');
    await expect(mf.get('unet/missing.json')).rejects.toThrow(/the folder "tiny-sdxl" has no unet\/missing.json/);
    const fp32 = await localRepo(files, { variant: null });
    expect(fp32.weights.unet).toEqual(['unet/diffusion_pytorch_model.safetensors']);
  });

  it('a directory handle (showDirectoryPicker) gives the same view', async () => {
    const mf = await localRepo(dirHandle(FIXTURE, 'tiny-sdxl'));
    expect(mf.repo).toBe('tiny-sdxl');
    expect(mf.weights).toEqual(WEIGHTS);
    expect(await sha256Blob(await mf.get('unet/diffusion_pytorch_model.fp16.safetensors'))).toBe(await sha256File(join(FIXTURE, 'unet/diffusion_pytorch_model.fp16.safetensors')));
  });

  it('a folder on disk in Node (CLI --model <folder>)', async () => {
    const mf = await localRepoFromDir(FIXTURE);
    expect(mf.weights).toEqual(WEIGHTS);
    expect(mf.size('vae/config.json')).toBe(757);
    await expect(localRepoFromDir(join(FIXTURE, 'unet'))).rejects.toThrow(/"unet" is not a diffusers folder: model_index.json is missing/);
  });

  it('CLI --model: a folder is read in place, a repo id is downloaded into the cache folder', async () => {
    expect((await openModelNode(FIXTURE, { variant: 'fp16' })).source).toBe('local');
    const env = await startHubEnv();
    const cacheDir = await mkdtemp(join(tmpdir(), 'koala-cli-cache-'));
    try {
      const mf = await openModelNode('test/tiny-sdxl', { hubUrl: env.hub.url, cacheDir, variant: 'fp16', chunkSize: 1 << 20, storage: null });
      expect(mf.source).toBe('hub');
      expect(mf.paths).toEqual(EXPECTED_FP16);
      expect(await sha256Blob(await mf.get('unet/diffusion_pytorch_model.fp16.safetensors'))).toBe(await sha256File(join(FIXTURE, 'unet/diffusion_pytorch_model.fp16.safetensors')));
      await expect(openModelNode('not a repo')).rejects.toThrow(/not a folder, and not a hub repo id/);
    } finally {
      await env.close();
      await rm(cacheDir, { recursive: true, force: true });
    }
  });
});
