import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ensureModel, listCachedModels, type EnsureModelOptions } from './ensure';
import { InProcessLocks } from './locks';
import { FAST_RETRY, REPO, makeStore, sha256Blob, sha256File, startHubEnv, type HubEnv, type StoreKind } from './test-hub.node.js';

const UNET_CFG = 'unet/config.json';
const VAE = 'vae/diffusion_pytorch_model.fp16.safetensors';

describe.each<StoreKind>(['fs', 'idb'])('revisions with the %s store', (kind) => {
  let env: HubEnv;
  beforeAll(async () => {
    env = await startHubEnv();
  });
  afterAll(() => env.close());

  it('a new commit downloads only what changed, never mixes files, and drops the old commit after', async () => {
    const { store, cleanup } = await makeStore(kind);
    const opts = (extra: Partial<EnsureModelOptions> = {}): EnsureModelOptions => ({
      store,
      repo: REPO,
      hubUrl: env.hub.url,
      retry: FAST_RETRY,
      storage: { estimate: async () => ({}) },
      locks: new InProcessLocks(),
      ...extra,
    });
    const a = await ensureModel(opts());
    const oldCfg = await a.text(UNET_CFG);
    const oldVae = await sha256Blob(await a.get(VAE));

    // A tag `v1` (folder tiny-sdxl@v1) whose unet config differs: its own commit, both cached side by side.
    const v1Dir = `${env.repoDir}@v1`;
    await cp(env.repoDir, v1Dir, { recursive: true });
    const v1Cfg = oldCfg.replace('"sample_size"', '"_v1_marker": 1,\n  "sample_size"');
    await writeFile(join(v1Dir, UNET_CFG), v1Cfg);
    env.hub.reset();
    const v1 = await ensureModel(opts({ revision: 'v1' }));
    expect(v1.commit).not.toBe(a.commit);
    expect(env.hub.fileRequests().map((r) => r.path)).toEqual(['model_index.json', UNET_CFG]);
    expect(await v1.text(UNET_CFG)).toBe(v1Cfg);
    expect(await a.text(UNET_CFG)).toBe(oldCfg); // the main commit still reads its own file

    // `main` moves: new unet config and new VAE weights (one data byte changed).
    await writeFile(join(env.repoDir, UNET_CFG), oldCfg.replace('"sample_size"', '"_main_marker": 2,\n  "sample_size"'));
    const vae = await readFile(join(env.repoDir, VAE));
    vae[vae.length - 1] ^= 0x55;
    await writeFile(join(env.repoDir, VAE), vae);
    env.hub.reset();
    const b = await ensureModel(opts());
    expect(b.commit).not.toBe(a.commit);
    expect(
      env.hub
        .fileRequests()
        .map((r) => r.path)
        .sort(),
    ).toEqual(['model_index.json', UNET_CFG, VAE]);
    expect(await b.text(UNET_CFG)).toContain('_main_marker');
    expect(await sha256Blob(await b.get(VAE))).toBe(await sha256File(join(env.repoDir, VAE)));
    expect(await sha256Blob(await b.get(VAE))).not.toBe(oldVae);

    // The old main commit is gone (its own files collected), v1 and the new main remain complete.
    const list = await listCachedModels(store);
    expect(list.map((m) => [m.revision, m.commit, m.complete]).sort()).toEqual(
      [
        ['main', b.commit, true],
        ['v1', v1.commit, true],
      ].sort(),
    );
    await expect(a.get(UNET_CFG)).rejects.toThrow(/missing from the cache/); // only the old main used it
    expect(await sha256Blob(await a.get(VAE))).toBe(oldVae); // still there: v1 uses the same bytes
    expect(await v1.text(UNET_CFG)).toBe(v1Cfg);
    expect(await sha256Blob(await v1.get(VAE))).toBe(oldVae); // v1 still has the old VAE bytes
    await cleanup();
  });
});
