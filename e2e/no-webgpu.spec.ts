/** Chromium launched WITHOUT the WebGPU flags: navigator.gpu exists but no adapter is given. */
import { expect, test } from '@playwright/test';
import { openFresh } from './helpers';

test('without a WebGPU adapter the page says what is missing and which browsers work', async ({ page }) => {
  await openFresh(page);
  const banner = page.getByRole('region', { name: 'GPU check' });
  await expect(banner.getByRole('alert')).toContainText('WebGPU found no usable GPU adapter');
  await expect(banner).toContainText('WebGPU found no usable GPU adapter');
  await expect(banner).toContainText('Chrome and Edge 113+');
  await expect(banner).toContainText('Safari 26');
  await expect(banner).toContainText('Firefox 141+ on Windows');
  await expect(page.getByRole('button', { name: 'Generate' })).toBeDisabled();
  await expect(page.getByText('Generation needs a working WebGPU adapter')).toBeVisible();
});
