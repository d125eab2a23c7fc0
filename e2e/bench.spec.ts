/**
 * /bench.html in Chromium (SwiftShader): the page reports the adapter, refuses a step count it cannot
 * measure, starts a real run (the worker boots onnxruntime-web, generates the random full-size text encoder
 * and creates its session) and cancels it. The full measurement takes far longer than a test on a software
 * adapter (README, Benchmarks, has its figures).
 */
import { expect, test } from '@playwright/test';

test('the GPU benchmark page starts a run and cancels it', async ({ page }) => {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  await page.goto('/bench.html');
  await expect(page.getByRole('heading', { name: 'KOALA web · GPU benchmark' })).toBeVisible();
  await expect(page.locator('#adapter')).toContainText(/Adapter: .*swiftshader.*shader-f16 no/i);
  await page.getByLabel('Steps').fill('1');
  await page.getByRole('button', { name: 'Run benchmark' }).click();
  await expect(page.getByRole('status')).toContainText('Steps must be a whole number from 2 to 50');
  await page.getByLabel('Steps').fill('2');
  await page.getByLabel('Size').selectOption('256');
  await page.getByRole('button', { name: 'Run benchmark' }).click();
  await expect(page.getByRole('button', { name: 'Cancel' })).toBeEnabled();
  await expect(page.getByRole('status')).toContainText(/Creating text_encoder_1/, { timeout: 90_000 });
  await page.getByRole('button', { name: 'Cancel' }).click();
  await expect(page.getByRole('status')).toContainText(/Cancelled/, { timeout: 30_000 });
  await expect(page.getByRole('button', { name: 'Run benchmark' })).toBeEnabled();
  expect(errors).toEqual([]);
});
