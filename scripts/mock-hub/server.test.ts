import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startHubEnv, type HubEnv } from '../../workers/hub/test-hub.node.js';

const UNET = 'unet/diffusion_pytorch_model.fp16.safetensors';
let env: HubEnv;
let base: string;
beforeAll(async () => {
  env = await startHubEnv();
  base = env.hub.url;
});
afterAll(() => env.close());

describe('mock hub', () => {
  it('answers the model API with a commit derived from the files', async () => {
    const info = await (await fetch(`${base}/api/models/test/tiny-sdxl`)).json();
    const rev = await (await fetch(`${base}/api/models/test/tiny-sdxl/revision/main`)).json();
    expect(info.sha).toMatch(/^[0-9a-f]{40}$/);
    expect(rev.sha).toBe(info.sha);
    expect(info.siblings.map((s: { rfilename: string }) => s.rfilename)).toContain(UNET);
    const byCommit = await fetch(`${base}/api/models/test/tiny-sdxl/revision/${info.sha}`);
    expect((await byCommit.json()).sha).toBe(info.sha);
    const missing = await fetch(`${base}/api/models/test/tiny-sdxl/revision/nope`);
    expect(missing.status).toBe(404);
    expect(missing.headers.get('x-error-code')).toBe('RevisionNotFound');
  });

  it('lists the tree with sizes, git oids and LFS sha256', async () => {
    const tree = await (await fetch(`${base}/api/models/test/tiny-sdxl/tree/main?recursive=true`)).json();
    const bytes = await readFile(join(env.repoDir, UNET));
    const unet = tree.find((e: { path: string }) => e.path === UNET);
    const sha = createHash('sha256').update(bytes).digest('hex');
    expect(unet.lfs).toEqual({ oid: sha, size: bytes.length, pointerSize: expect.any(Number) });
    const pointer = `version https://git-lfs.github.com/spec/v1\noid sha256:${sha}\nsize ${bytes.length}\n`;
    expect(unet.oid).toBe(createHash('sha1').update(`blob ${pointer.length}\0${pointer}`).digest('hex'));
    const cfg = tree.find((e: { path: string }) => e.path === 'unet/config.json');
    const cfgBytes = await readFile(join(env.repoDir, 'unet/config.json'));
    expect(cfg).toEqual({ type: 'file', path: 'unet/config.json', size: cfgBytes.length, oid: createHash('sha1').update(`blob ${cfgBytes.length}\0`).update(cfgBytes).digest('hex') });
    const top = await (await fetch(`${base}/api/models/test/tiny-sdxl/tree/main`)).json();
    expect(top.find((e: { path: string }) => e.path === 'unet')).toMatchObject({ type: 'directory' });
    expect(top.some((e: { path: string }) => e.path === UNET)).toBe(false);
  });

  it('redirects LFS files, serves ranges, honours If-Range, and sends the hub headers with CORS', async () => {
    const commit = (await env.hub.repoState('test/tiny-sdxl')).commit;
    const url = `${base}/test/tiny-sdxl/resolve/${commit}/${UNET}`;
    const head = await fetch(url, { redirect: 'manual' });
    expect(head.status).toBe(302);
    expect(head.headers.get('x-repo-commit')).toBe(commit);
    expect(Number(head.headers.get('x-linked-size'))).toBe(725136);
    const etag = head.headers.get('x-linked-etag')!;
    const part = await fetch(url, { headers: { range: 'bytes=1000-1999', 'if-range': etag } });
    expect(part.status).toBe(206);
    expect(part.headers.get('content-range')).toBe('bytes 1000-1999/725136');
    expect(part.headers.get('access-control-allow-origin')).toBe('*');
    expect(part.headers.get('access-control-expose-headers')).toMatch(/X-Linked-Etag.*Content-Range/);
    const bytes = await readFile(join(env.repoDir, UNET));
    expect(Buffer.from(await part.arrayBuffer()).equals(bytes.subarray(1000, 2000))).toBe(true);
    const stale = await fetch(url, { headers: { range: 'bytes=1000-', 'if-range': '"stale"' } });
    expect(stale.status).toBe(200);
    expect((await stale.arrayBuffer()).byteLength).toBe(725136);
    const pre = await fetch(url, { method: 'OPTIONS' });
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-headers')).toMatch(/Range, If-Range/);
    const bad = await fetch(url, { headers: { range: 'bytes=999999-' } });
    expect(bad.status).toBe(416);
  });

  it('injects faults through the control endpoint and counts what it served', async () => {
    env.hub.reset();
    const commit = (await env.hub.repoState('test/tiny-sdxl')).commit;
    const url = `${base}/test/tiny-sdxl/resolve/${commit}/${UNET}`;
    await fetch(`${base}/__faults`, { method: 'POST', body: JSON.stringify([{ kind: 'flip', path: UNET, offset: 5 }, { kind: 'status', status: 503, path: '/api/models/test/tiny-sdxl/revision' }]) });
    const flipped = new Uint8Array(await (await fetch(url)).arrayBuffer());
    const bytes = await readFile(join(env.repoDir, UNET));
    expect(flipped[5]).toBe(bytes[5] ^ 0xff);
    expect((await fetch(`${base}/api/models/test/tiny-sdxl/revision/main`)).status).toBe(503);
    expect((await fetch(`${base}/api/models/test/tiny-sdxl/revision/main`)).status).toBe(200);
    await fetch(`${base}/__faults`, { method: 'POST', body: JSON.stringify({ rules: [{ kind: 'html', path: UNET }] }) });
    const html = await fetch(url);
    expect(html.headers.get('content-type')).toMatch(/text\/html/);
    expect(await html.text()).toMatch(/<!DOCTYPE html>/);
    const stats = await (await fetch(`${base}/__stats`)).json();
    expect(stats.byPath[UNET].requests).toBe(2);
    expect(stats.byPath[UNET].bytes).toBe(725136 + 105);
  });
});
