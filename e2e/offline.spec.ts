/** The app shell works offline after the first visit (service worker), and the demo hub is served locally. */
import { expect, test } from '@playwright/test';
import { openFresh } from './helpers';

test('after one visit the page opens with the network off', async ({ page, context }) => {
  await openFresh(page);
  await page.evaluate(async () => {
    await navigator.serviceWorker.ready;
  });
  // A second load goes through the service worker and fills its cache with the shell.
  await page.reload();
  await expect.poll(() => page.evaluate(() => navigator.serviceWorker.controller !== null)).toBe(true);
  await expect(page.getByRole('region', { name: 'GPU check' })).toContainText('swiftshader');
  const cached = await page.evaluate(async () => {
    const keys = await caches.keys();
    const urls: string[] = [];
    for (const k of keys) for (const r of await (await caches.open(k)).keys()) urls.push(new URL(r.url).pathname);
    return urls;
  });
  expect(cached).toContain('/');
  expect(cached.some((u) => u.startsWith('/assets/') && u.endsWith('.js'))).toBe(true);
  expect(cached.some((u) => /safetensors|demo-hub|api\/models/.test(u))).toBe(false);

  await context.setOffline(true);
  await page.reload();
  await expect(page.getByRole('textbox', { name: 'Prompt', exact: true })).toBeVisible();
  await expect(page.getByRole('region', { name: 'GPU check' })).toContainText('swiftshader');
  expect(await page.evaluate(() => crossOriginIsolated)).toBe(true);
  await context.setOffline(false);
});

test('the bundled demo model is served by the page itself at /demo-hub', async ({ page }) => {
  await page.goto('/');
  const info = await page.evaluate(async () => {
    const r = await fetch('/demo-hub/api/models/demo/tiny-sdxl/revision/main');
    return { status: r.status, body: (await r.json()) as { id: string; sha: string } };
  });
  expect(info.status).toBe(200);
  expect(info.body.id).toBe('demo/tiny-sdxl');
  expect(info.body.sha).toMatch(/^[0-9a-f]{40}$/);
});
