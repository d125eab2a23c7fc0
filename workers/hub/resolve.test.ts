import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { EngineError } from '../protocol';
import { resolveRepo } from './resolve';
import { EXPECTED_FP16, FAST_RETRY, FIXTURE, REPO, startHubEnv, type HubEnv } from './test-hub.node.js';

let env: HubEnv;
beforeAll(async () => {
  env = await startHubEnv({ treePageSize: 7 });
});
afterAll(() => env.close());

describe('resolveRepo against the mock hub', () => {
  it('pins the revision to its commit and selects the fp16 pipeline files with the hub sha256', async () => {
    const r = await resolveRepo({ hubUrl: env.hub.url, repo: REPO, revision: 'main', variant: 'fp16', retry: FAST_RETRY });
    const state = await env.hub.repoState(REPO);
    expect(r.commit).toBe(state.commit);
    expect(r.commit).toMatch(/^[0-9a-f]{40}$/);
    expect(r.files.map((f) => f.path)).toEqual(EXPECTED_FP16);
    const sums = new Map(
      (await readFile(join(FIXTURE, 'SHA256SUMS'), 'utf8'))
        .trim()
        .split('\n')
        .map((l) => l.split(/\s+/).reverse() as [string, string]),
    );
    for (const f of r.files.filter((x) => x.path.endsWith('.safetensors'))) {
      expect(f.sha256, f.path).toBe(sums.get(f.path));
    }
    for (const f of r.files.filter((x) => !x.path.endsWith('.safetensors'))) {
      expect(f.sha256, f.path).toBeUndefined();
      expect(f.oid, f.path).toMatch(/^[0-9a-f]{40}$/);
    }
    expect(r.weights).toEqual({
      text_encoder: ['text_encoder/model.fp16.safetensors'],
      text_encoder_2: ['text_encoder_2/model.fp16.safetensors'],
      unet: ['unet/diffusion_pytorch_model.fp16.safetensors'],
      vae: ['vae/diffusion_pytorch_model.fp16.safetensors'],
    });
    // the tree listing was paginated (7 entries per page) and followed via Link headers
    expect(env.hub.requests.filter((q) => q.url.includes('/tree/')).length).toBeGreaterThan(3);
  });

  it('takes fp32 weights when variant is null', async () => {
    const r = await resolveRepo({ hubUrl: env.hub.url, repo: REPO, variant: null, retry: FAST_RETRY });
    expect(r.weights.unet).toEqual(['unet/diffusion_pytorch_model.safetensors']);
  });

  it('reports a missing repo or revision without retrying', async () => {
    env.hub.reset();
    const err = await resolveRepo({ hubUrl: env.hub.url, repo: 'test/nope', retry: FAST_RETRY }).catch((e) => e);
    expect(err).toBeInstanceOf(EngineError);
    expect(err.message).toMatch(/not found on the hub \(HTTP 404/);
    expect(env.hub.requests.length).toBe(1);
    const e2 = await resolveRepo({ hubUrl: env.hub.url, repo: REPO, revision: 'v9', retry: FAST_RETRY }).catch((e) => e);
    expect(e2.message).toMatch(/Resolving test\/tiny-sdxl@v9: not found/);
  });

  it('retries a 503 on the API', async () => {
    env.hub.reset();
    env.hub.setFaults([{ kind: 'status', status: 503, path: '/api/models/test/tiny-sdxl/revision', times: 2 }]);
    const r = await resolveRepo({ hubUrl: env.hub.url, repo: REPO, retry: FAST_RETRY });
    expect(r.commit).toMatch(/^[0-9a-f]{40}$/);
    expect(env.hub.requests.filter((q) => q.url.includes('/revision/')).map((q) => q.status)).toEqual([503, 503, 200]);
  });

  it('says the hub is unreachable', async () => {
    const err = await resolveRepo({ hubUrl: 'http://127.0.0.1:9', repo: REPO, retry: { retries: 1, baseDelayMs: 1, maxDelayMs: 2 } }).catch((e) => e);
    expect(err).toBeInstanceOf(EngineError);
    expect(err.code).toBe('network');
  });
});
