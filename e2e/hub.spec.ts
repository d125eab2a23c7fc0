/**
 * The hub downloader in the real browser (issue 4, browser half): the built page's engine worker downloads
 * from a private mock hub (this process: request log + fault knobs) into IndexedDB, and each test checks
 * what the hub served per file, what IndexedDB holds (read on the page's origin), and what the page shows.
 * No test waits for an image: a download ends before shader compilation starts, so each one stops there.
 */
import { existsSync } from 'node:fs';
import { test as base, expect, type Page } from '@playwright/test';
import { openFresh } from './helpers';
import {
  BIG_SIZE,
  CHUNK,
  REPO_ROOT,
  UNET,
  VAE,
  bytesServed,
  editRepoFile,
  fileRequests,
  keyOf,
  manifestOf,
  readHubDb,
  repoFile,
  startServers,
  storedFileSha256,
  waitForDb,
  waitForRequests,
  weightBytesServed,
  weightPath,
  weightsOf,
  type HubDb,
  type Servers,
} from './hub-helpers';

const test = base.extend<{ servers: Servers }, { workerServers: Servers }>({
  workerServers: [
    // eslint-disable-next-line no-empty-pattern -- Playwright reads fixture dependencies from the pattern
    async ({}, use) => {
      const s = await startServers();
      await use(s);
      await s.close();
    },
    { scope: 'worker' },
  ],
  servers: async ({ workerServers }, use) => {
    workerServers.hub.reset();
    await use(workerServers);
    workerServers.hub.reset();
    workerServers.workerQuota = undefined;
  },
  baseURL: async ({ workerServers }, use) => use(workerServers.pageUrl),
});

test.skip(!existsSync(`${REPO_ROOT}/dist/index.html`), 'build the page first: npx vite build --mode test');
test.describe.configure({ timeout: 120_000 });
// The app-shell service worker is not under test here, and requests it answers bypass page.route.
test.use({ serviceWorkers: 'block' });

const query = (hubUrl: string, repo: string, extra = '') =>
  `?hub=${encodeURIComponent(hubUrl)}&model=${repo}&size=64x64&steps=2&prompt=${encodeURIComponent('a koala')}${extra}`;

/** The manifest is complete and the revision points at it (what ensureModel writes last). */
const isComplete = (repo: string) => (db: HubDb) => {
  const m = manifestOf(db, repo);
  return !!m?.complete && db.refs.some((r) => r.commit === m.commit);
};

async function generate(page: Page) {
  await page.getByRole('button', { name: 'Generate' }).click();
  await expect(page.getByRole('button', { name: 'Cancel' })).toBeEnabled();
}

/** Stop the engine after the download (it would go on to compile shaders for a minute). */
async function cancel(page: Page) {
  await page.getByRole('button', { name: 'Cancel' }).click();
}

/** Every weight file of the manifest is stored with the bytes the hub serves (sha256 over the IndexedDB chunks). */
async function expectStoredAsServed(page: Page, root: string, repo: string) {
  const db = await readHubDb(page);
  const paths = weightsOf(db, repo);
  expect(paths.length).toBe(4);
  for (const path of paths) {
    const key = keyOf(db, repo, path)!;
    const want = await repoFile(root, repo, path);
    expect(key, path).toBe(`sha256:${want.sha256}`);
    expect(db.complete[key], path).toMatchObject({ size: want.size });
    const got = await storedFileSha256(page, key);
    expect({ path, sha256: got.sha256, size: got.size }).toEqual({ path, sha256: want.sha256, size: want.size });
  }
}

test('a dropped connection mid-file resumes from the last committed chunk (Range + If-Range)', async ({ page, servers }) => {
  const { hub, root } = servers;
  const repo = 'test/big-sdxl';
  const DROP = 37_000_000; // past the first 32 MiB chunk, before the end (BIG_SIZE = 44 MB)
  hub.setFaults([{ kind: 'drop', path: UNET, afterBytes: DROP }]);
  await openFresh(page, query(hub.url, repo));
  await generate(page);
  const db = await waitForDb(page, isComplete(repo), 'the model to be complete');
  await cancel(page);
  const unet = weightPath(db, repo, UNET);
  const big = await repoFile(root, repo, unet);
  expect(big.size).toBe(BIG_SIZE);
  const reqs = await waitForRequests(hub, unet, 2);
  expect(reqs.map((r) => ({ status: r.status, range: r.range, ifRange: r.ifRange, bytes: r.bytes, fault: r.fault }))).toEqual([
    { status: 200, range: undefined, ifRange: undefined, bytes: DROP, fault: 'drop' },
    { status: 206, range: `bytes=${CHUNK}-`, ifRange: `"${big.sha256}"`, bytes: BIG_SIZE - CHUNK, fault: undefined },
  ]);
  const total = bytesServed(hub, unet);
  expect(total).toBe(DROP + BIG_SIZE - CHUNK);
  expect(total).toBeLessThanOrEqual(BIG_SIZE + CHUNK);
  const key = `sha256:${big.sha256}`;
  expect(db.complete[key]).toMatchObject({ size: BIG_SIZE, chunks: 2 });
  expect(db.partial[key]).toBeUndefined();
  expect((await storedFileSha256(page, key)).chunks).toEqual([CHUNK, BIG_SIZE - CHUNK]);
  await expectStoredAsServed(page, root, repo);
});

test('a flipped byte fails sha256: the file is fetched once more and the cache holds the right bytes', async ({ page, servers }) => {
  const { hub, root } = servers;
  const repo = 'test/tiny-sdxl';
  hub.setFaults([{ kind: 'flip', path: UNET }]);
  await openFresh(page, query(hub.url, repo));
  await generate(page);
  const db = await waitForDb(page, isComplete(repo), 'the model to be complete');
  await cancel(page);
  const path = weightPath(db, repo, UNET);
  const unet = await repoFile(root, repo, path);
  const reqs = await waitForRequests(hub, path, 2);
  expect(reqs.map((r) => ({ status: r.status, bytes: r.bytes, fault: r.fault }))).toEqual([
    { status: 200, bytes: unet.size, fault: 'flip' },
    { status: 200, bytes: unet.size, fault: undefined },
  ]);
  await expectStoredAsServed(page, root, repo);
  // every other weight file was fetched exactly once
  for (const p of weightsOf(db, repo).filter((p) => p !== path)) expect(fileRequests(hub, p).length, p).toBe(1);
});

test('HTML answered with 200 where weights are expected: a clear error, nothing marked complete', async ({ page, servers }) => {
  const { hub, root } = servers;
  const repo = 'test/tiny-sdxl';
  hub.setFaults([{ kind: 'html', path: UNET, times: 0 }]);
  await openFresh(page, query(hub.url, repo));
  await generate(page);
  const alert = page.getByRole('alert').filter({ hasText: 'integrity' });
  await expect(alert).toBeVisible({ timeout: 60_000 });
  const db = await readHubDb(page);
  const path = weightPath(db, repo, UNET);
  await expect(alert).toContainText(`${path} failed verification twice`);
  await expect(alert).toContainText('text/html');
  await expect(page.getByRole('button', { name: 'Generate' })).toBeEnabled();
  expect(fileRequests(hub, path).map((r) => ({ status: r.status, fault: r.fault }))).toEqual([
    { status: 200, fault: 'html' },
    { status: 200, fault: 'html' },
  ]);
  const key = `sha256:${(await repoFile(root, repo, path)).sha256}`;
  expect(manifestOf(db, repo)?.complete).toBe(false);
  expect(db.refs).toEqual([]);
  expect(db.complete[key]).toBeUndefined();
  expect(db.partial[key]).toBeUndefined();
  expect(Object.keys(db.chunks).filter((k) => k.startsWith(`${key}#`))).toEqual([]);
  // the page's list of downloaded models says so too
  await expect(page.getByRole('region', { name: 'Downloaded models' })).toContainText('partial');
});

test('quota too small: refused with the numbers before a byte is written', async ({ page, servers }) => {
  const { hub } = servers;
  const repo = 'test/tiny-sdxl';
  const QUOTA = 2_000_000;
  // The engine runs in a module worker, which init scripts do not reach, and Chromium 156 ignores CDP's
  // Storage.overrideQuotaForOrigin (estimate() keeps the real quota); a Playwright route on the worker script
  // breaks the worker's cross-origin fetches. So the test's page server serves the worker script with a
  // prologue capping the quota navigator.storage.estimate() reports there (usage stays the real one).
  servers.workerQuota = QUOTA;
  await openFresh(page, query(hub.url, repo));
  expect(page.workers().length).toBeGreaterThan(0);
  const est = await page.workers()[0]!.evaluate(() => navigator.storage.estimate());
  expect(est.quota).toBe(QUOTA);
  // not generate(): the refusal can come before a poll sees Cancel enabled (seen on a loaded machine)
  await page.getByRole('button', { name: 'Generate' }).click();
  const alert = page.getByRole('alert').filter({ hasText: 'quota-exceeded' });
  await expect(alert).toBeVisible({ timeout: 60_000 });
  const text = (await alert.textContent()) ?? '';
  const m =
    /test\/tiny-sdxl@[0-9a-f]{7} needs ([\d.]+) MiB more storage but only ([\d.]+) MiB is free \(quota 1\.91 MiB, used [\d.]+ [KM]iB\)/.exec(
      text,
    );
  expect(m, text).not.toBeNull();
  expect(Number(m![1])).toBeGreaterThan(Number(m![2]));
  expect(hub.requests.filter((r) => r.path?.endsWith('.safetensors'))).toEqual([]);
  const db = await readHubDb(page);
  expect(db.manifests).toEqual([]);
  expect(db.chunks).toEqual({});
  expect(db.complete).toEqual({});
  expect(db.partial).toEqual({});
});

/** The big U-Net's key and path once the manifest is written (before its bytes arrive). */
async function bigUnet(page: Page, root: string, repo: string) {
  const db = await waitForDb(page, (d) => !!manifestOf(d, repo), 'the manifest');
  const path = weightPath(db, repo, UNET);
  const file = await repoFile(root, repo, path);
  return { path, key: `sha256:${file.sha256}`, sha256: file.sha256 };
}

test('a reload mid-download resumes from the committed chunk instead of restarting', async ({ page, servers }) => {
  const { hub, root } = servers;
  const repo = 'test/big-sdxl';
  hub.setFaults([{ kind: 'slow', path: UNET, bytesPerSec: 3_000_000 }]);
  await openFresh(page, query(hub.url, repo));
  await generate(page);
  const { path, key, sha256 } = await bigUnet(page, root, repo);
  const before = await waitForDb(page, (db) => (db.partial[key]?.done ?? 0) >= CHUNK, 'the first U-Net chunk to be committed');
  expect(before.partial[key]).toMatchObject({ done: CHUNK, size: BIG_SIZE });
  expect(before.chunks[`${key}#000000`]).toBe(CHUNK);
  await page.reload();
  await expect(page.getByRole('region', { name: 'GPU check' })).not.toContainText('Checking your GPU');
  await waitForRequests(hub, path, 1);
  const mark = hub.requests.length;
  // the other files finished at full speed while the U-Net crawled: the reload keeps them
  const afterReload = await readHubDb(page);
  const others = weightsOf(afterReload, repo).filter((p) => p !== path);
  for (const p of others) expect(afterReload.complete[keyOf(afterReload, repo, p)!], p).toBeDefined();
  expect(afterReload.partial[key]?.done).toBe(CHUNK);
  await generate(page);
  await waitForDb(page, isComplete(repo), 'the model to be complete');
  await cancel(page);
  // (the first request's count can reach the whole file: the mock hub counts what it wrote, and at this rate
  // the rest of the file is written in about 3.5 s, possibly before the reload has closed the socket)
  expect(fileRequests(hub, path)[0]!.bytes).toBeGreaterThanOrEqual(CHUNK);
  const resumed = await waitForRequests(hub, path, 1, mark);
  expect(resumed.map((r) => ({ status: r.status, range: r.range, ifRange: r.ifRange, bytes: r.bytes }))).toEqual([
    { status: 206, range: `bytes=${CHUNK}-`, ifRange: `"${sha256}"`, bytes: BIG_SIZE - CHUNK },
  ]);
  expect(bytesServed(hub, path)).toBeLessThanOrEqual(BIG_SIZE + CHUNK);
  expect(weightBytesServed(hub, mark)).toBe(BIG_SIZE - CHUNK);
  await expectStoredAsServed(page, root, repo);
});

test('cancel during a download keeps the finished chunks and files; the next run fetches only the rest', async ({ page, servers }) => {
  const { hub, root } = servers;
  const repo = 'test/big-sdxl';
  hub.setFaults([{ kind: 'slow', path: UNET, bytesPerSec: 3_000_000 }]);
  await openFresh(page, query(hub.url, repo));
  await generate(page);
  const { path, key } = await bigUnet(page, root, repo);
  await waitForDb(page, (db) => (db.partial[key]?.done ?? 0) >= CHUNK, 'the first U-Net chunk to be committed');
  await cancel(page);
  await expect(page.getByRole('alert').filter({ hasText: 'Cancelled' })).toBeVisible({ timeout: 30_000 });
  await expect(page.getByRole('button', { name: 'Generate' })).toBeEnabled();
  const kept = await readHubDb(page);
  expect(kept.partial[key]).toMatchObject({ done: CHUNK, size: BIG_SIZE, chunkSize: CHUNK });
  expect(Object.entries(kept.chunks).filter(([k]) => k.startsWith(`${key}#`))).toEqual([[`${key}#000000`, CHUNK]]);
  expect(manifestOf(kept, repo)?.complete).toBe(false);
  for (const p of weightsOf(kept, repo).filter((p) => p !== path)) expect(kept.complete[keyOf(kept, repo, p)!], p).toBeDefined();
  await expect(page.getByRole('region', { name: 'Downloaded models' })).toContainText('partial');

  await waitForRequests(hub, path, 1);
  const mark = hub.requests.length;
  await generate(page);
  await waitForDb(page, isComplete(repo), 'the model to be complete');
  await cancel(page);
  const rest = await waitForRequests(hub, path, 1, mark);
  expect(rest.map((r) => ({ status: r.status, range: r.range, bytes: r.bytes }))).toEqual([
    { status: 206, range: `bytes=${CHUNK}-`, bytes: BIG_SIZE - CHUNK },
  ]);
  expect(weightBytesServed(hub, mark)).toBe(BIG_SIZE - CHUNK);
  await expectStoredAsServed(page, root, repo);
});

test('two tabs download the model once (Web Locks); the second waits, then uses the cache', async ({ context, servers }) => {
  const { hub, root } = servers;
  const repo = 'test/tiny-sdxl';
  hub.setFaults([{ kind: 'slow', path: UNET, bytesPerSec: 300_000 }]);
  const a = await context.newPage();
  const b = await context.newPage();
  await openFresh(a, query(hub.url, repo));
  await b.goto(`/${query(hub.url, repo)}`);
  await expect(b.getByRole('region', { name: 'GPU check' })).not.toContainText('Checking your GPU');
  await generate(a);
  await waitForDb(a, (db) => !!manifestOf(db, repo), 'tab A to start downloading');
  await generate(b);
  await expect(b.locator('.progress .phase')).toContainText('Waiting for another tab', { timeout: 30_000 });
  const db = await waitForDb(a, isComplete(repo), 'the model to be complete');
  // tab B leaves the download phase without fetching anything
  await expect(b.getByRole('progressbar', { name: /Building graphs|Compiling shaders/ })).toBeVisible({ timeout: 60_000 });
  await cancel(a);
  await cancel(b);
  for (const p of weightsOf(db, repo)) {
    const f = await repoFile(root, repo, p);
    expect({ p, requests: fileRequests(hub, p).length, bytes: bytesServed(hub, p) }).toEqual({ p, requests: 1, bytes: f.size });
  }
  expect((await readHubDb(b)).manifests).toHaveLength(1);
  await expectStoredAsServed(b, root, repo);
});

test('a new commit of the revision downloads only the changed file and never mixes the two', async ({ context, servers }) => {
  const { hub, root } = servers;
  const repo = 'test/rev-sdxl';
  const page1 = await context.newPage();
  await openFresh(page1, query(hub.url, repo));
  await generate(page1);
  const first = await waitForDb(page1, isComplete(repo), 'commit A to be complete');
  await page1.close();
  const a = manifestOf(first, repo)!;
  const vae = weightPath(first, repo, VAE);
  const vaeA = await repoFile(root, repo, vae);

  // The hub's main branch moves: one weight byte of the VAE changes (the mock hub derives the commit from the files).
  await editRepoFile(root, repo, vae, (b) => (b[b.length - 1] ^= 0x5a));
  const vaeB = await repoFile(root, repo, vae);
  expect(vaeB.sha256).not.toBe(vaeA.sha256);
  const mark = hub.requests.length;
  hub.setFaults([{ kind: 'slow', path: VAE, bytesPerSec: 60_000 }]);
  const page2 = await context.newPage();
  await page2.goto(`/${query(hub.url, repo)}`);
  await generate(page2);
  // while commit B downloads, commit A is still complete and still what `main` points to
  const during = await waitForDb(page2, (db) => db.manifests.length === 2, 'the manifest of commit B');
  const b = during.manifests.find((m) => m.commit !== a.commit)!;
  expect(b.complete).toBe(false);
  expect(manifestOf(during, repo, a.commit)?.complete).toBe(true);
  expect(during.refs.map((r) => r.commit)).toEqual([a.commit]);
  expect(during.complete[`sha256:${vaeA.sha256}`]).toBeDefined();

  const after = await waitForDb(
    page2,
    (db) =>
      db.refs[0]?.commit === b.commit &&
      db.manifests.length === 1 &&
      !Object.keys(db.chunks).some((k) => k.startsWith(`sha256:${vaeA.sha256}#`)),
    'main to point at commit B and commit A (manifest and its VAE bytes) to be dropped',
    20_000,
  );
  await cancel(page2);
  const mb = manifestOf(after, repo, b.commit)!;
  expect(mb.complete).toBe(true);
  // only the changed file came over the network
  expect(weightBytesServed(hub, mark)).toBe(vaeB.size);
  expect(fileRequests(hub, vae, mark)).toHaveLength(1);
  // unchanged files keep their keys (stored once); the VAE path now maps to B's bytes, A's are gone
  for (const f of mb.files) {
    if (f.path === vae) expect(f.key).toBe(`sha256:${vaeB.sha256}`);
    else expect(f.key, f.path).toBe(a.files.find((x) => x.path === f.path)!.key);
  }
  expect(after.complete[`sha256:${vaeA.sha256}`]).toBeUndefined();
  await expectStoredAsServed(page2, root, repo);
  await expect(page2.getByRole('region', { name: 'Downloaded models' }).getByRole('listitem')).toHaveCount(1);
});
