/**
 * The page without generating: controls, model defaults, persistence, URL parameters, capability
 * report, gallery, theme, CSP, worker restart. (Generation flows are in generate.spec.ts.)
 */
import { expect, test } from '@playwright/test';
import { HUB, TINY, openFresh, seedGallery, watchPage } from './helpers';

test('the controls exist with their accessible names', async ({ page }) => {
  const problems = watchPage(page);
  await openFresh(page);
  await expect(page.getByRole('textbox', { name: 'Prompt', exact: true })).toBeVisible();
  await expect(page.getByRole('textbox', { name: 'Negative prompt' })).toBeVisible();
  await expect(page.getByRole('slider', { name: 'Steps' })).toBeVisible();
  await expect(page.getByRole('slider', { name: 'Guidance' })).toBeVisible();
  await expect(page.getByRole('spinbutton', { name: 'Seed' })).toBeVisible();
  await expect(page.getByRole('button', { name: 'Random seed' })).toBeVisible();
  await expect(page.getByRole('button', { name: 'Lock seed' })).toBeVisible();
  await expect(page.getByRole('combobox', { name: 'Size' })).toBeVisible();
  await expect(page.getByRole('combobox', { name: 'Scheduler' })).toBeVisible();
  await expect(page.getByRole('combobox', { name: 'Model' })).toBeVisible();
  await expect(page.getByRole('spinbutton', { name: 'Images' })).toBeVisible();
  await expect(page.getByRole('button', { name: 'Generate' })).toBeEnabled();
  await expect(page.getByRole('button', { name: 'Cancel' })).toBeDisabled();

  const model = page.getByRole('combobox', { name: 'Model' });
  await expect(model).toHaveValue('etri-vilab/koala-700m-llava-cap');
  const labels = await model.locator('option').allTextContents();
  expect(labels).toEqual([
    'KOALA-700M llava-cap',
    'KOALA-700M',
    'KOALA-1B llava-cap',
    'KOALA-Lightning 700M',
    'KOALA-Lightning 1B',
    'SDXL-base 1.0',
    'Tiny demo (offline, random weights)',
  ]);
  const sizes = await page.getByRole('combobox', { name: 'Size' }).locator('option').allTextContents();
  expect(sizes.slice(0, 7)).toEqual(['1024×1024', '1152×896', '896×1152', '1216×832', '832×1216', '1344×768', '768×1344']);
  expect(sizes).toContain('512×512');
  expect(sizes).toContain('64×64');
  expect(problems).toEqual([]);
});

test('the GPU check names the adapter, shader-f16 and the fp32 download size', async ({ page }) => {
  await openFresh(page);
  const banner = page.getByRole('region', { name: 'GPU check' });
  await expect(banner).toContainText('No shader-f16: using fp32 weights');
  await expect(banner).toContainText('swiftshader');
  await expect(banner).toContainText(/shader-f16\s*no/);
  await expect(banner).toContainText('6.74 GB (fp32)');
  await expect(banner).toContainText('instead of 3.54 GB');
  // 1344×768 needs 528 MB buffers: fits SwiftShader's 1 GiB.
  await page.getByRole('combobox', { name: 'Size' }).selectOption('1344x768');
  await expect(banner).not.toContainText('limits too low');
});

test('choosing a model applies its defaults', async ({ page }) => {
  await openFresh(page);
  const model = page.getByRole('combobox', { name: 'Model' });
  const steps = page.getByRole('slider', { name: 'Steps' });
  const guidance = page.getByRole('slider', { name: 'Guidance' });
  await expect(steps).toHaveValue('25');
  await expect(guidance).toHaveValue('7.5');
  await model.selectOption({ label: 'KOALA-Lightning 700M' });
  await expect(steps).toHaveValue('10');
  await expect(guidance).toHaveValue('3.5');
  await expect(page.getByRole('combobox', { name: 'Scheduler' })).toHaveValue('euler');
  await page.getByText('Advanced').click();
  await expect(page.getByRole('combobox', { name: 'Timestep spacing' })).toHaveValue('trailing');
  await model.selectOption({ label: 'SDXL-base 1.0' });
  await expect(steps).toHaveValue('50');
  await expect(guidance).toHaveValue('5');
  await expect(page.getByRole('combobox', { name: 'Timestep spacing' })).toHaveValue('leading');
  await model.selectOption({ label: 'Tiny demo (offline, random weights)' });
  await expect(page.getByRole('combobox', { name: 'Size' })).toHaveValue('64x64');
});

test('settings persist across a reload', async ({ page }) => {
  await openFresh(page);
  await page.getByRole('textbox', { name: 'Prompt', exact: true }).fill('a koala astronaut, studio light');
  await page.getByRole('button', { name: 'KOALA preset' }).click();
  await expect(page.getByRole('textbox', { name: 'Negative prompt' })).toHaveValue(
    'worst quality, low quality, illustration, low resolution',
  );
  await page.getByRole('slider', { name: 'Steps' }).fill('31');
  await page.getByRole('slider', { name: 'Guidance' }).fill('6');
  await page.getByRole('spinbutton', { name: 'Seed' }).fill('12345');
  await page.getByRole('combobox', { name: 'Size' }).selectOption('832x1216');
  await page.getByRole('combobox', { name: 'Scheduler' }).selectOption('dpmpp-2m-karras');
  await page.getByRole('spinbutton', { name: 'Images' }).fill('2');
  await page.reload();
  await expect(page.getByRole('textbox', { name: 'Prompt', exact: true })).toHaveValue('a koala astronaut, studio light');
  await expect(page.getByRole('textbox', { name: 'Negative prompt' })).toHaveValue(
    'worst quality, low quality, illustration, low resolution',
  );
  await expect(page.getByRole('slider', { name: 'Steps' })).toHaveValue('31');
  await expect(page.getByRole('slider', { name: 'Guidance' })).toHaveValue('6');
  await expect(page.getByRole('spinbutton', { name: 'Seed' })).toHaveValue('12345');
  await expect(page.getByRole('button', { name: 'Lock seed' })).toHaveAttribute('aria-pressed', 'true');
  await expect(page.getByRole('combobox', { name: 'Size' })).toHaveValue('832x1216');
  await expect(page.getByRole('combobox', { name: 'Scheduler' })).toHaveValue('dpmpp-2m-karras');
  await expect(page.getByRole('spinbutton', { name: 'Images' })).toHaveValue('2');
});

test('URL parameters point the page at the mock hub and set the controls', async ({ page }) => {
  const q = `?hub=${encodeURIComponent(HUB)}&model=${TINY}&revision=main&prompt=${encodeURIComponent('<b>bold</b> koala')}&steps=3&size=64x64&seed=7`;
  await openFresh(page, q);
  await expect(page.getByRole('combobox', { name: 'Model' })).toHaveValue(TINY);
  await expect(page.getByRole('combobox', { name: 'Model' }).locator('option:checked')).toHaveText(`Custom: ${TINY}`);
  // User text is shown as text, never as HTML.
  await expect(page.getByRole('textbox', { name: 'Prompt', exact: true })).toHaveValue('<b>bold</b> koala');
  await expect(page.locator('b', { hasText: 'bold' })).toHaveCount(0);
  await expect(page.getByRole('slider', { name: 'Steps' })).toHaveValue('3');
  await expect(page.getByRole('combobox', { name: 'Size' })).toHaveValue('64x64');
  await expect(page.getByRole('spinbutton', { name: 'Seed' })).toHaveValue('7');
  await page.getByText('Advanced').click();
  await expect(page.getByRole('textbox', { name: 'Hub' })).toHaveValue(HUB);
  await expect(page.getByRole('textbox', { name: 'Revision' })).toHaveValue('main');
  // A hostile hub value is refused.
  await page.goto('/?hub=javascript:alert(1)');
  await page.getByText('Advanced').click();
  await expect(page.getByRole('textbox', { name: 'Hub' })).toHaveValue(HUB);
});

test('Share settings writes a URL that reproduces them', async ({ page, context }) => {
  await context.grantPermissions(['clipboard-read', 'clipboard-write']);
  await openFresh(page);
  await page.getByRole('textbox', { name: 'Prompt', exact: true }).fill('shared koala');
  await page.getByRole('slider', { name: 'Steps' }).fill('12');
  await page.getByRole('button', { name: 'Share settings' }).click();
  await expect(page.getByRole('status').filter({ hasText: 'Link copied' })).toBeVisible();
  const url = await page.evaluate(() => navigator.clipboard.readText());
  expect(new URL(url).searchParams.get('prompt')).toBe('shared koala');
  await page.evaluate(() => localStorage.clear());
  await page.goto(url);
  await expect(page.getByRole('textbox', { name: 'Prompt', exact: true })).toHaveValue('shared koala');
  await expect(page.getByRole('slider', { name: 'Steps' })).toHaveValue('12');
});

test('the gallery survives reloads; reuse settings and delete work; Download names the seed', async ({ page }) => {
  await openFresh(page);
  await seedGallery(page, { prompt: 'older koala', seed: 111, steps: 4, model: 'demo/tiny-sdxl' });
  await seedGallery(page, { prompt: 'newer koala', seed: 222, steps: 6, model: 'demo/tiny-sdxl' });
  await page.reload();
  const gallery = page.getByRole('region', { name: 'Gallery' });
  await expect(gallery.getByRole('listitem')).toHaveCount(2);
  await expect(gallery).toContainText('older koala');
  await expect(gallery).toContainText('seed 222');
  const download = page.getByRole('link', { name: 'Download' });
  await expect(download).toHaveAttribute('download', /-(111|222)\.png$/);

  const older = gallery.getByRole('listitem', { name: 'Image: older koala' });
  await older.getByRole('button', { name: 'Reuse settings' }).click();
  await expect(page.getByRole('textbox', { name: 'Prompt', exact: true })).toHaveValue('older koala');
  await expect(page.getByRole('slider', { name: 'Steps' })).toHaveValue('4');
  await expect(page.getByRole('spinbutton', { name: 'Seed' })).toHaveValue('111');
  await expect(page.getByRole('combobox', { name: 'Model' })).toHaveValue('demo/tiny-sdxl');
  await expect(download).toHaveAttribute('download', 'koala-older-koala-111.png');
  const [file] = await Promise.all([page.waitForEvent('download'), download.click()]);
  expect(file.suggestedFilename()).toBe('koala-older-koala-111.png');
  const bytes = await file.createReadStream().then(async (s) => {
    const chunks: Buffer[] = [];
    for await (const c of s) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  });
  expect([...bytes.subarray(0, 8)]).toEqual([137, 80, 78, 71, 13, 10, 26, 10]);

  await older.getByRole('button', { name: 'Delete image, seed 111' }).click();
  await expect(gallery.getByRole('listitem')).toHaveCount(1);
  await page.reload();
  await expect(page.getByRole('region', { name: 'Gallery' }).getByRole('listitem')).toHaveCount(1);
  await expect(page.getByRole('region', { name: 'Gallery' })).toContainText('newer koala');
});

test('dark and light themes toggle and persist', async ({ page }) => {
  await page.emulateMedia({ colorScheme: 'light' });
  await openFresh(page);
  const html = page.locator('html');
  await expect(html).toHaveAttribute('data-theme', 'light');
  await page.getByRole('button', { name: 'Dark theme' }).click();
  await expect(html).toHaveAttribute('data-theme', 'dark');
  await page.reload();
  await expect(html).toHaveAttribute('data-theme', 'dark');
  const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  expect(bg).toBe('rgb(18, 20, 23)');
});

test('the built page carries a strict Content-Security-Policy', async ({ page }) => {
  await page.goto('/');
  const csp = await page.locator('meta[http-equiv="Content-Security-Policy"]').getAttribute('content');
  expect(csp).toContain("script-src 'self' 'wasm-unsafe-eval'");
  expect(csp).toContain("worker-src 'self' blob:");
  expect(csp).toContain('https://huggingface.co');
  expect(csp).toContain('https://*.hf.co');
  expect(csp).not.toContain("'unsafe-eval'");
  expect(csp).not.toContain("'unsafe-inline'");
  const isolated = await page.evaluate(() => crossOriginIsolated);
  expect(isolated).toBe(true);
});

test('keyboard reaches the prompt, the sliders and Generate', async ({ page }) => {
  await openFresh(page);
  await page.getByRole('textbox', { name: 'Prompt', exact: true }).focus();
  const seen: string[] = [];
  for (let i = 0; i < 30; i++) {
    await page.keyboard.press('Tab');
    seen.push(
      await page.evaluate(
        () =>
          document.activeElement?.getAttribute('aria-label') ??
          (document.activeElement as HTMLElement)?.innerText ??
          document.activeElement?.id ??
          '',
      ),
    );
    if (seen[seen.length - 1] === 'Generate') break;
  }
  expect(seen).toContain('Generate');
});

test('a crashed worker is replaced: pending work is rejected, the GPU check answers again, the gallery stays', async ({ page }) => {
  await openFresh(page);
  await seedGallery(page, { prompt: 'survivor', seed: 5, steps: 4, model: 'demo/tiny-sdxl' });
  await page.reload();
  await expect(page.getByRole('region', { name: 'GPU check' })).toContainText('swiftshader');
  const workers = page.workers();
  expect(workers.length).toBe(1);
  await workers[0]!.evaluate(() => {
    setTimeout(() => {
      throw new Error('simulated crash');
    });
  });
  await expect(page.getByRole('status').filter({ hasText: 'The engine restarted (worker-crashed)' })).toBeVisible();
  await expect.poll(() => page.workers().length).toBe(1);
  await expect(page.getByRole('region', { name: 'GPU check' })).toContainText('swiftshader');
  await expect(page.getByRole('region', { name: 'Gallery' })).toContainText('survivor');
});
