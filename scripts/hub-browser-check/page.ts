/** Browser side of scripts/hub-browser-check.ts: runs workers/hub against the mock hub in Chromium. */
import { IdbBlobStore, benchIdb, ensureModel, listCachedModels, resolveRepo, type EnsureModelOptions } from '../../workers/hub/index';
import { EngineError } from '../../workers/protocol';

const UNET = 'unet/diffusion_pytorch_model.fp16.safetensors';
const REPO = 'test/tiny-sdxl';
const CHUNK = 64 * 1024;

async function sha256(blob: Blob): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest('SHA-256', await blob.arrayBuffer()));
  return [...d].map((b) => b.toString(16).padStart(2, '0')).join('');
}

async function hubCtl(hub: string, path: string, body?: unknown) {
  // text/plain keeps the control request "simple" (no preflight)
  const res = await fetch(`${hub}${path}`, { method: body === undefined ? 'GET' : 'POST', body: body === undefined ? undefined : JSON.stringify(body), headers: { 'content-type': 'text/plain' } });
  return res.json();
}

interface Stats {
  requests: Array<{ path?: string; status: number; range?: string; ifRange?: string; bytes: number; fault?: string }>;
}

async function hubCheck(hub: string, benchBytes: number, checks = true) {
  const out: Record<string, unknown> = { userAgent: navigator.userAgent, webLocks: !!navigator.locks };
  if (!checks) {
    out.benchIdb = await benchIdb(benchBytes);
    return out;
  }
  const retry = { retries: 4, baseDelayMs: 5, maxDelayMs: 20 };
  const base = (store: IdbBlobStore, extra: Partial<EnsureModelOptions> = {}): EnsureModelOptions => ({ store, repo: REPO, hubUrl: hub, retry, ...extra });
  const expected = new Map((await resolveRepo({ hubUrl: hub, repo: REPO, retry })).files.map((f) => [f.path, f]));
  const checkAll = async (files: Awaited<ReturnType<typeof ensureModel>>) => {
    for (const p of files.paths) {
      const f = expected.get(p)!;
      const blob = await files.get(p);
      if (blob.size !== f.size) throw new Error(`${p}: size ${blob.size} != ${f.size}`);
      if (f.sha256 && (await sha256(blob)) !== f.sha256) throw new Error(`${p}: sha256 mismatch`);
    }
    return files.paths.length;
  };

  // 1. a dropped connection resumes with Range + If-Range through CORS (preflight), in real IndexedDB
  await hubCtl(hub, '/__reset', {});
  await hubCtl(hub, '/__faults', [{ kind: 'drop', path: UNET, afterBytes: 300_000 }]);
  const s1 = new IdbBlobStore({ name: `check-${Date.now()}-a`, chunkSize: CHUNK });
  const f1 = await ensureModel(base(s1));
  const st1 = (await hubCtl(hub, '/__stats')) as Stats;
  out.drop = {
    verifiedFiles: await checkAll(f1),
    unetRequests: st1.requests.filter((r) => r.path === UNET).map((r) => ({ status: r.status, range: r.range, ifRange: r.ifRange, bytes: r.bytes })),
    cached: await listCachedModels(s1),
  };

  // 2. a flipped byte is caught and refetched; HTML with 200 is rejected twice -> integrity
  await hubCtl(hub, '/__reset', {});
  await hubCtl(hub, '/__faults', [{ kind: 'flip', path: UNET, offset: 100_000 }]);
  const s2 = new IdbBlobStore({ name: `check-${Date.now()}-b`, chunkSize: CHUNK });
  const f2 = await ensureModel(base(s2));
  const st2 = (await hubCtl(hub, '/__stats')) as Stats;
  out.flip = { verifiedFiles: await checkAll(f2), unetRequests: st2.requests.filter((r) => r.path === UNET).map((r) => [r.status, r.fault ?? null]) };
  await hubCtl(hub, '/__reset', {});
  await hubCtl(hub, '/__faults', [{ kind: 'html', path: UNET, times: 0 }]);
  const s3 = new IdbBlobStore({ name: `check-${Date.now()}-c`, chunkSize: CHUNK });
  const err = await ensureModel(base(s3)).catch((e: unknown) => e);
  out.html = err instanceof EngineError ? { code: err.code, message: err.message, unetRequests: ((await hubCtl(hub, '/__stats')) as Stats).requests.filter((r) => r.path === UNET).length } : { unexpected: String(err) };
  await hubCtl(hub, '/__reset', {});

  // 3. two "tabs" (two stores over the same databases) at once with navigator.locks: each file fetched once
  const name = `check-${Date.now()}-d`;
  const [a, b] = await Promise.all([ensureModel(base(new IdbBlobStore({ name, chunkSize: CHUNK }))), ensureModel(base(new IdbBlobStore({ name, chunkSize: CHUNK })))]);
  const st3 = (await hubCtl(hub, '/__stats')) as Stats;
  const paths = st3.requests.filter((r) => r.path && r.path !== 'model_index.json').map((r) => r.path!);
  out.twoTabs = { sameCommit: a.commit === b.commit, fileRequests: paths.length, distinct: new Set(paths).size, verified: await checkAll(b) };

  // 4. cancel keeps chunks; the next call continues from them
  await hubCtl(hub, '/__reset', {});
  await hubCtl(hub, '/__faults', [{ kind: 'slow', path: UNET, bytesPerSec: 1_000_000 }]);
  const s5 = new IdbBlobStore({ name: `check-${Date.now()}-e`, chunkSize: CHUNK });
  const ac = new AbortController();
  const cancelled = await ensureModel(
    base(s5, {
      signal: ac.signal,
      progressIntervalMs: 0,
      onProgress: (p) => {
        if ((p.files.find((f) => f.path === UNET)?.bytesDone ?? 0) >= 4 * CHUNK) ac.abort();
      },
    }),
  ).catch((e: unknown) => e);
  await hubCtl(hub, '/__reset', {});
  const f5 = await ensureModel(base(s5));
  const st5 = (await hubCtl(hub, '/__stats')) as Stats;
  out.cancel = { code: (cancelled as EngineError).code, resumedWith: st5.requests.filter((r) => r.path === UNET).map((r) => r.range), verified: await checkAll(f5) };

  out.estimate = await navigator.storage.estimate();
  if (benchBytes > 0) out.benchIdb = await benchIdb(benchBytes);
  return out;
}

(globalThis as { hubCheck?: typeof hubCheck }).hubCheck = hubCheck;
document.title = 'ready';
