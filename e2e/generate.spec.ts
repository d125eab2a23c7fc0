/**
 * Generation flows in the real browser against the mock hub serving the tiny fixture (test/tiny-sdxl):
 * progress, preview, result, PNG download with its parameters chunk, double-click, cancel, gallery + model
 * cache across reloads, worker crash recovery, download progress, hub errors.
 * Needs the engine (workers/engine.ts) in the build. On SwiftShader a fresh page spends about a minute
 * compiling shaders before its first image, so the main flow shares one page across serial steps.
 */
import { existsSync } from 'node:fs';
import { expect, test, type Browser, type BrowserContext, type Page } from '@playwright/test';
import { HUB, TINY, openFresh } from './helpers';
import { pngTextChunks } from './png';

test.skip(!existsSync('workers/engine.ts'), 'workers/engine.ts is not wired into this build yet');

const PROMPT = 'a koala in a eucalyptus tree, watercolor';
const BASE = `http://127.0.0.1:${process.env.KOALA_E2E_PORT ?? 4173}`;
const url = (extra = '') => `?hub=${encodeURIComponent(HUB)}&model=${TINY}&size=64x64&prompt=${encodeURIComponent(PROMPT)}${extra}`;
const SLOW = 300_000;

async function hub(path: string, body?: unknown) {
  const res = await fetch(`${HUB}/${path}`, body === undefined ? {} : { method: 'POST', body: JSON.stringify(body) });
  return res.json() as Promise<Record<string, unknown>>;
}

async function weightBytesServed(): Promise<number> {
  const stats = (await hub('__stats')) as { byPath: Record<string, { bytes: number }> };
  return Object.entries(stats.byPath)
    .filter(([p]) => p.endsWith('.safetensors'))
    .reduce((n, [, v]) => n + v.bytes, 0);
}

const gallery = (page: Page) => page.getByRole('region', { name: 'Gallery' }).getByRole('listitem');

async function resetHub() {
  await hub('__reset');
  await fetch(`${HUB}/__faults`, { method: 'DELETE' });
}

async function newPage(browser: Browser): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({ baseURL: BASE, acceptDownloads: true });
  return { context, page: await context.newPage() };
}

test.describe('one page, in order', () => {
  test.describe.configure({ mode: 'serial', timeout: 600_000 });
  let context: BrowserContext;
  let page: Page;

  test.beforeAll(async ({ browser }) => {
    await resetHub();
    ({ context, page } = await newPage(browser));
  });
  test.afterAll(async () => {
    await context.close();
  });

  test('type, slide, generate: progress, preview, image; the PNG carries its parameters', async () => {
    await openFresh(page, url('&seed=7'));
    await page.getByRole('textbox', { name: 'Prompt', exact: true }).fill(`${PROMPT}, golden hour`);
    await page.getByRole('slider', { name: 'Steps' }).fill('3');
    await page.getByRole('slider', { name: 'Guidance' }).fill('6');
    await page.getByRole('button', { name: 'Generate' }).click();
    await expect(page.getByRole('button', { name: 'Cancel' })).toBeEnabled();
    await expect(page.getByRole('progressbar', { name: 'Downloading' })).toBeVisible({ timeout: 60_000 });
    await expect(page.getByRole('progressbar', { name: 'Compiling shaders' })).toBeVisible({ timeout: 60_000 });
    await expect(page.getByRole('progressbar', { name: 'Generating' })).toHaveAttribute('aria-valuemax', '3', { timeout: SLOW });
    await expect(page.getByRole('link', { name: 'Download' })).toBeVisible({ timeout: SLOW });
    await expect(page.getByRole('img', { name: /^Generated:/ })).toBeVisible();
    const [file] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'Download' }).click()]);
    expect(file.suggestedFilename()).toMatch(/-7\.png$/);
    const chunks: Buffer[] = [];
    for await (const c of await file.createReadStream()) chunks.push(c as Buffer);
    const text = pngTextChunks(new Uint8Array(Buffer.concat(chunks)));
    expect(text.parameters).toContain(`${PROMPT}, golden hour`);
    expect(text.parameters).toMatch(/Steps: 3/);
    expect(text.parameters).toMatch(/CFG scale: 6/);
    expect(text.parameters).toMatch(/Seed: 7/);
    expect(text.parameters).toMatch(/Size: 64x64/);
    expect(await gallery(page).count()).toBe(1);
  });

  test('double-clicking Generate generates once', async () => {
    await page.getByRole('button', { name: 'Generate' }).dblclick();
    await expect(gallery(page)).toHaveCount(2, { timeout: SLOW });
    await page.waitForTimeout(3000);
    await expect(page.getByRole('button', { name: 'Generate' })).toBeEnabled();
    expect(await gallery(page).count()).toBe(2);
  });

  test('cancel mid-generation stops it; the live preview was showing', async () => {
    await page.getByRole('slider', { name: 'Steps' }).fill('80');
    await page.getByRole('button', { name: 'Generate' }).click();
    await expect(page.locator('.progress-text')).toContainText(/Step \d+\/80/, { timeout: SLOW });
    await expect(page.getByRole('img', { name: 'Live preview' })).toBeVisible();
    await page.getByRole('button', { name: 'Cancel' }).click();
    await expect(page.getByRole('alert').filter({ hasText: 'Cancelled' })).toBeVisible({ timeout: 30_000 });
    await expect(page.getByRole('button', { name: 'Generate' })).toBeEnabled();
    expect(await gallery(page).count()).toBe(2);
  });

  test('after a reload the gallery is there and the model comes from the cache (no second download)', async () => {
    expect(await weightBytesServed()).toBeGreaterThan(0);
    await hub('__reset');
    await page.reload();
    await expect(gallery(page)).toHaveCount(2);
    await expect(page.getByRole('region', { name: 'GPU check' })).toContainText('cached in this browser');
    await page.getByRole('slider', { name: 'Steps' }).fill('2');
    await page.getByRole('button', { name: 'Generate' }).click();
    await expect(gallery(page)).toHaveCount(3, { timeout: SLOW });
    expect(await weightBytesServed()).toBe(0);
  });

  test('a killed worker mid-run: typed error, fresh worker, gallery intact, next run works from the cache', async () => {
    await page.getByRole('slider', { name: 'Steps' }).fill('80');
    await page.getByRole('button', { name: 'Generate' }).click();
    await expect(page.locator('.progress-text')).toContainText(/Step \d+\/80/, { timeout: SLOW });
    await page.workers()[0]!.evaluate(() => {
      setTimeout(() => {
        throw new Error('simulated crash');
      });
    });
    await expect(page.getByRole('alert').filter({ hasText: 'worker-crashed' })).toBeVisible();
    await expect(page.getByRole('status').filter({ hasText: 'The engine restarted' })).toBeVisible();
    expect(await gallery(page).count()).toBe(3);
    await hub('__reset');
    await page.getByRole('slider', { name: 'Steps' }).fill('2');
    await page.getByRole('button', { name: 'Generate' }).click();
    await expect(gallery(page)).toHaveCount(4, { timeout: SLOW });
    expect(await weightBytesServed()).toBe(0);
  });
});

test.describe('downloads and hub errors', () => {
  test.beforeEach(resetHub);

  test('the progress bar reports downloads with bytes and a rate; cancel stops the download', async ({ page }) => {
    await hub('__faults', [{ kind: 'slow', path: 'unet', bytesPerSec: 300_000, times: 0 }]);
    await openFresh(page, url('&steps=2'));
    await page.getByRole('button', { name: 'Generate' }).click();
    const bar = page.getByRole('progressbar', { name: 'Downloading' });
    await expect(bar).toBeVisible({ timeout: 60_000 });
    await expect(bar).toHaveAttribute('aria-valuenow', /\d+/);
    await expect(page.locator('.progress-text')).toContainText(/ of .*B/);
    await expect(page.locator('.progress-text')).toContainText(/B\/s/);
    await page.getByRole('button', { name: 'Cancel' }).click();
    await expect(page.getByRole('alert').filter({ hasText: 'Cancelled' })).toBeVisible({ timeout: 30_000 });
    await expect(page.getByRole('button', { name: 'Generate' })).toBeEnabled();
  });

  test('a hub that answers 503 gives a specific network error', async ({ page }) => {
    await hub('__faults', [{ kind: 'status', status: 503, times: 0 }]);
    await openFresh(page, url('&steps=2'));
    await page.getByRole('button', { name: 'Generate' }).click();
    await expect(page.getByRole('alert').filter({ hasText: 'Could not reach the model hub (network)' })).toBeVisible({ timeout: 60_000 });
    await expect(page.getByRole('button', { name: 'Generate' })).toBeEnabled();
  });
});
