/**
 * Generation flows in the real browser against the mock hub serving the tiny fixture (test/tiny-sdxl):
 * progress, preview, result, PNG download with its parameters chunk, cancel, gallery + model cache across
 * reloads, double-click, worker crash recovery, hub errors. Needs the engine (workers/engine.ts) in the build.
 */
import { existsSync } from 'node:fs';
import { expect, test, type Page } from '@playwright/test';
import { HUB, TINY, openFresh } from './helpers';
import { pngTextChunks } from './png';

test.skip(!existsSync('workers/engine.ts'), 'workers/engine.ts is not wired into this build yet');

const PROMPT = 'a koala in a eucalyptus tree, watercolor';
const url = (extra = '') => `?hub=${encodeURIComponent(HUB)}&model=${TINY}&size=64x64&prompt=${encodeURIComponent(PROMPT)}${extra}`;

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

async function galleryCount(page: Page) {
  return page.getByRole('region', { name: 'Gallery' }).getByRole('listitem').count();
}

test.beforeEach(async () => {
  await hub('__reset');
  await fetch(`${HUB}/__faults`, { method: 'DELETE' });
});

test('type, slide, generate: progress, preview, image; the PNG carries its parameters', async ({ page }) => {
  await openFresh(page, url('&seed=7'));
  await page.getByRole('textbox', { name: 'Prompt', exact: true }).fill(`${PROMPT}, golden hour`);
  await page.getByRole('slider', { name: 'Steps' }).fill('3');
  await page.getByRole('slider', { name: 'Guidance' }).fill('6');
  await page.getByRole('button', { name: 'Generate' }).click();
  await expect(page.getByRole('button', { name: 'Cancel' })).toBeEnabled();
  const bar = page.getByRole('progressbar').first();
  await expect(bar).toBeVisible();
  await expect(page.getByRole('link', { name: 'Download' })).toBeVisible({ timeout: 120_000 });
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
});

test('the progress bar reports downloads with bytes and a rate', async ({ page }) => {
  await hub('__faults', [{ kind: 'slow', path: 'unet', bytesPerSec: 300_000, times: 0 }]);
  await openFresh(page, url('&steps=2'));
  await page.getByRole('button', { name: 'Generate' }).click();
  const bar = page.getByRole('progressbar', { name: 'Downloading' });
  await expect(bar).toBeVisible({ timeout: 60_000 });
  await expect(bar).toHaveAttribute('aria-valuenow', /\d+/);
  await expect(page.locator('.progress-text')).toContainText(/ of .*B/);
  await page.getByRole('button', { name: 'Cancel' }).click();
  await expect(page.getByRole('alert').filter({ hasText: 'Cancelled' })).toBeVisible({ timeout: 30_000 });
  await expect(page.getByRole('button', { name: 'Generate' })).toBeEnabled();
});

test('cancel mid-generation stops it; the next run works', async ({ page }) => {
  await openFresh(page, url('&steps=60'));
  await page.getByRole('button', { name: 'Generate' }).click();
  await expect(page.locator('.progress-text')).toContainText(/Step \d+\/60/, { timeout: 120_000 });
  await page.getByRole('button', { name: 'Cancel' }).click();
  await expect(page.getByRole('alert').filter({ hasText: 'Cancelled' })).toBeVisible({ timeout: 30_000 });
  expect(await galleryCount(page)).toBe(0);
  await page.getByRole('slider', { name: 'Steps' }).fill('2');
  await page.getByRole('button', { name: 'Generate' }).click();
  await expect(page.getByRole('link', { name: 'Download' })).toBeVisible({ timeout: 120_000 });
});

test('after a reload the gallery is there and the model comes from the cache (no second download)', async ({ page }) => {
  await openFresh(page, url('&steps=2&seed=3'));
  await page.getByRole('button', { name: 'Generate' }).click();
  await expect(page.getByRole('link', { name: 'Download' })).toBeVisible({ timeout: 120_000 });
  expect(await weightBytesServed()).toBeGreaterThan(0);
  await hub('__reset');
  await page.reload();
  await expect(page.getByRole('region', { name: 'Gallery' }).getByRole('listitem')).toHaveCount(1);
  await page.getByRole('button', { name: 'Generate' }).click();
  await expect(page.getByRole('region', { name: 'Gallery' }).getByRole('listitem')).toHaveCount(2, { timeout: 120_000 });
  expect(await weightBytesServed()).toBe(0);
});

test('double-clicking Generate generates once', async ({ page }) => {
  await openFresh(page, url('&steps=2'));
  await page.getByRole('button', { name: 'Generate' }).dblclick();
  await expect(page.getByRole('link', { name: 'Download' })).toBeVisible({ timeout: 120_000 });
  await page.waitForTimeout(1500);
  expect(await galleryCount(page)).toBe(1);
});

test('a killed worker mid-run: typed error, fresh worker, gallery intact, next run works', async ({ page }) => {
  await openFresh(page, url('&steps=2'));
  await page.getByRole('button', { name: 'Generate' }).click();
  await expect(page.getByRole('link', { name: 'Download' })).toBeVisible({ timeout: 120_000 });
  await page.getByRole('slider', { name: 'Steps' }).fill('60');
  await page.getByRole('button', { name: 'Generate' }).click();
  await expect(page.locator('.progress-text')).toContainText(/Step \d+\/60/, { timeout: 120_000 });
  await page.workers()[0]!.evaluate(() => {
    setTimeout(() => {
      throw new Error('simulated crash');
    });
  });
  await expect(page.getByRole('alert').filter({ hasText: 'worker-crashed' })).toBeVisible();
  await expect(page.getByRole('status').filter({ hasText: 'The engine restarted' })).toBeVisible();
  expect(await galleryCount(page)).toBe(1);
  await hub('__reset');
  await page.getByRole('slider', { name: 'Steps' }).fill('2');
  await page.getByRole('button', { name: 'Generate' }).click();
  await expect(page.getByRole('region', { name: 'Gallery' }).getByRole('listitem')).toHaveCount(2, { timeout: 120_000 });
  expect(await weightBytesServed()).toBe(0);
});

test('a hub that answers 503 gives a specific network error', async ({ page }) => {
  await hub('__faults', [{ kind: 'status', status: 503, times: 0 }]);
  await openFresh(page, url('&steps=2'));
  await page.getByRole('button', { name: 'Generate' }).click();
  await expect(page.getByRole('alert').filter({ hasText: 'Error: network' })).toBeVisible({ timeout: 60_000 });
  await expect(page.getByRole('button', { name: 'Generate' })).toBeEnabled();
});
