/** One hub file (a LoRA) into the model cache: verified, cached, offline, listed, deleted, and its failures. */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { encodeSafetensors } from '../model/safetensors';
import { deleteCachedModel, listCachedModels } from './ensure';
import { ensureHubFile } from './hub-file';
import { FAST_RETRY, makeStore, REPO, sha256Blob, startHubEnv, type HubEnv, type StoreKind } from './test-hub.node.js';
import { createHash } from 'node:crypto';

const lora = encodeSafetensors({
  'lora_unet_a.lora_down.weight': { dtype: 'F32', shape: [2, 300], data: Float32Array.from({ length: 600 }, (_, i) => Math.sin(i)) },
  'lora_unet_a.lora_up.weight': { dtype: 'F32', shape: [3, 2], data: Float32Array.of(1, 2, 3, 4, 5, 6) },
});
const sha = createHash('sha256').update(lora).digest('hex');

for (const kind of ['idb', 'fs'] as StoreKind[]) {
  describe(`ensureHubFile (${kind} store)`, () => {
    let env: HubEnv;
    beforeEach(async () => {
      env = await startHubEnv();
      await writeFile(join(env.repoDir, 'style_lora.safetensors'), lora);
    });
    afterEach(() => env.close());

    it('downloads and verifies once; later calls (and the hub gone) read the cache', async () => {
      const s = await makeStore(kind);
      const opts = { store: s.store, repo: REPO, path: 'style_lora.safetensors', hubUrl: env.hub.url, retry: FAST_RETRY };
      const f = await ensureHubFile(opts);
      expect(f.blob.size).toBe(lora.length);
      expect(await sha256Blob(f.blob)).toBe(sha);
      expect(f.sha256).toBe(sha);
      expect(env.hub.bytesServed('style_lora')).toBe(lora.length);
      const again = await ensureHubFile({ ...opts, store: s.reopen() });
      expect(await sha256Blob(again.blob)).toBe(sha);
      expect(env.hub.bytesServed('style_lora')).toBe(lora.length); // not fetched twice
      await env.hub.close();
      const offline = await ensureHubFile({ ...opts, store: s.reopen(), retry: { retries: 0, baseDelayMs: 1, maxDelayMs: 1 } });
      expect(offline.commit).toBe(f.commit);
      // listed with the models, deletable like them; the bytes go with it
      const listed = await listCachedModels(s.store);
      expect(listed).toEqual([expect.objectContaining({ repo: REPO, variant: 'file:style_lora.safetensors', bytes: lora.length, complete: true, files: 1 })]);
      await deleteCachedModel(s.store, { repo: REPO });
      expect(await s.store.listBlobKeys()).toEqual([]);
      await s.cleanup();
    });

    it('names the repo’s .safetensors files when the file is not there, refuses other files, retries a corrupt download', async () => {
      const s = await makeStore(kind);
      const base = { store: s.store, repo: REPO, hubUrl: env.hub.url, retry: FAST_RETRY };
      await expect(ensureHubFile({ ...base, path: 'nope.safetensors' })).rejects.toThrow(/has no file nope.safetensors; its .safetensors files: .*style_lora.safetensors/);
      await expect(ensureHubFile({ ...base, path: 'unet/config.json' })).rejects.toThrow(/not a .safetensors file/);
      env.hub.setFaults([{ kind: 'flip', path: 'style_lora', times: 1 }]);
      const f = await ensureHubFile({ ...base, path: 'style_lora.safetensors' });
      expect(await sha256Blob(f.blob)).toBe(sha);
      expect(env.hub.fileRequests('style_lora').length).toBeGreaterThanOrEqual(2);
      await s.cleanup();
    });
  });
}
