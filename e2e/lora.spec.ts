/**
 * LoRAs in the page, against the mock hub's tiny fixture (test/tiny-sdxl): a kohya-layout LoRA built here
 * for real modules of the fixture's U-Net is added with the file input, checked against the loaded model
 * ("Matches 8 of 8 modules"), applied (its `<lora:name:1>` tag is in the PNG, and the pixels change), turned
 * off (the pixels are the LoRA-free image's again); a file that is not safetensors and a hub file that is not
 * a LoRA show the engine's errors; the list survives a reload without the page checking anything.
 * One page across serial steps (SwiftShader compiles shaders for about a minute before the first image).
 */
import { existsSync } from 'node:fs';
import { expect, test, type BrowserContext, type Page } from '@playwright/test';
import { HUB, TINY, openFresh } from './helpers';
import { attentionModules, buildTinyLora } from './lora-file';
import { diffRgb as diff, gallery, generateAndRead } from './results';

test.skip(!existsSync('workers/engine.ts'), 'workers/engine.ts is not wired into this build yet');

const BASE = `http://127.0.0.1:${process.env.KOALA_E2E_PORT ?? 4173}`;
const PROMPT = 'a koala wearing a tiny hat';
const URL_ = `?hub=${encodeURIComponent(HUB)}&model=${TINY}&size=64x64&steps=2&seed=11&prompt=${encodeURIComponent(PROMPT)}`;
const SLOW = 300_000;
const NAME = 'koala-test-lora';
const MODULES = [...attentionModules('down_blocks.1.attentions.0.'), ...attentionModules('mid_block.attentions.0.transformer_blocks.0.')];
const LORA = buildTinyLora({ modules: MODULES, rank: 4, amplitude: 0.2, seed: 5 });

const row = (page: Page, name: string) => page.getByRole('listitem', { name: `LoRA ${name}` });

async function hubPost(path: string, body?: unknown) {
  await fetch(`${HUB}/${path}`, body === undefined ? {} : { method: 'POST', body: JSON.stringify(body) });
}

test.describe('LoRAs: one page, in order', () => {
  test.describe.configure({ mode: 'serial', timeout: 600_000 });
  let context: BrowserContext;
  let page: Page;
  let plain: Uint8Array;

  test.beforeAll(async ({ browser }) => {
    await hubPost('__reset');
    await fetch(`${HUB}/__faults`, { method: 'DELETE' });
    context = await browser.newContext({ baseURL: BASE, acceptDownloads: true });
    page = await context.newPage();
  });
  test.afterAll(async () => {
    await context.close();
  });

  test('a LoRA file: checked against the loaded model, applied (tag in the PNG, other pixels), turned off (same pixels again)', async () => {
    await openFresh(page, URL_);
    // Without LoRA first: this loads the model (so the LoRA can be checked the moment it is added).
    const before = await generateAndRead(page, 1);
    expect(before.parameters).not.toContain('<lora:');
    plain = before.rgb;

    await page.locator('summary', { hasText: 'LoRAs' }).click();
    await page
      .getByLabel('LoRA file')
      .setInputFiles({ name: `${NAME}.safetensors`, mimeType: 'application/octet-stream', buffer: Buffer.from(LORA.bytes) });
    const r = row(page, NAME);
    await expect(r).toBeVisible();
    await expect(r).toContainText(`local file, ${(LORA.bytes.length / 1000).toFixed(2)} kB`);
    await expect(r).toContainText(`Matches ${MODULES.length} of ${MODULES.length} modules (U-Net ${MODULES.length})`, { timeout: SLOW });

    const scale = page.getByRole('slider', { name: `${NAME} scale` });
    await scale.fill('0.5');
    await expect(r.locator('output')).toHaveText('0.50');
    await scale.fill('1');
    await expect(r.locator('output')).toHaveText('1.00');
    await expect(page.getByRole('checkbox', { name: NAME })).toBeChecked();

    const withLora = await generateAndRead(page, 2);
    expect(withLora.parameters).toContain(`<lora:${NAME}:1>`);
    expect(withLora.parameters).toMatch(/Seed: 11/);
    const d = diff(plain, withLora.rgb);
    console.log(`LoRA on vs off: ${d.changed} of ${plain.length} channel values differ, max |diff| ${d.max}`);
    expect(d.changed).toBeGreaterThan(plain.length / 4); // most of the image changed
    expect(d.max).toBeGreaterThan(8);
    await expect(gallery(page).first()).toContainText(`LoRA ${NAME}:1`);
    await expect(r).toContainText(`Matches ${MODULES.length} of ${MODULES.length} modules`);

    await page.getByRole('checkbox', { name: NAME }).uncheck();
    await expect(page.locator('summary', { hasText: 'LoRAs' })).toContainText('0 of 1 on');
    const off = await generateAndRead(page, 3);
    expect(off.parameters).not.toContain('<lora:');
    const back = diff(plain, off.rgb);
    console.log(`LoRA off again vs never on: ${back.changed} channel values differ, max |diff| ${back.max}`);
    expect(back.changed).toBe(0); // the model's own weights are back: same seed, same image
  });

  test('a file that is not safetensors and a hub file that is not a LoRA: the engine says why', async () => {
    await page
      .getByLabel('LoRA file')
      .setInputFiles({ name: 'not-a-lora.safetensors', mimeType: 'text/plain', buffer: Buffer.from('just some text, no tensors here\n') });
    const bad = row(page, 'not-a-lora');
    await expect(bad).toContainText(/not a safetensors LoRA file/, { timeout: SLOW });

    // Add by text: nonsense gets an inline message; a hub ref without a hub goes to the model's hub (the mock).
    const input = page.getByRole('textbox', { name: 'Add a LoRA from the hub' });
    await input.fill('just words');
    await page.getByRole('button', { name: 'Add', exact: true }).click();
    await expect(page.getByRole('alert').filter({ hasText: 'not a .safetensors file of a hub repo' })).toBeVisible();
    await input.fill(`${TINY}/unet/diffusion_pytorch_model.safetensors`);
    await input.press('Enter'); // adds; does not submit the settings form
    const hubRow = row(page, 'diffusion_pytorch_model');
    await expect(hubRow).toContainText(`${TINY}/unet/diffusion_pytorch_model.safetensors on 127.0.0.1:`);
    await expect(hubRow).toContainText(/No LoRA keys found/, { timeout: SLOW });
    await expect(input).toHaveValue('');
    await expect(gallery(page)).toHaveCount(3);

    // Generate with the broken file on: the engine refuses, in the page's error box.
    await page.getByRole('checkbox', { name: 'diffusion_pytorch_model' }).uncheck();
    await page.getByRole('button', { name: 'Generate' }).click();
    await expect(page.getByRole('alert').filter({ hasText: 'These settings cannot be used (bad-input)' })).toContainText('not-a-lora', {
      timeout: SLOW,
    });
    await expect(gallery(page)).toHaveCount(3);
  });

  test('a reload keeps the list (files, scales, on/off) and checks nothing before the model loads', async () => {
    await page.reload();
    await expect(page.getByRole('region', { name: 'GPU check' })).not.toContainText('Checking your GPU');
    const list = page.getByRole('list', { name: 'LoRA list' });
    await expect(list.getByRole('listitem')).toHaveCount(3); // the section opens itself when it has LoRAs
    const r = row(page, NAME);
    await expect(r).toContainText(`local file, ${(LORA.bytes.length / 1000).toFixed(2)} kB`);
    await expect(r.locator('output')).toHaveText('1.00');
    await expect(page.getByRole('checkbox', { name: NAME })).not.toBeChecked();
    await expect(page.getByRole('checkbox', { name: 'not-a-lora' })).toBeChecked();
    await page.waitForTimeout(2000);
    await expect(r).toContainText('Checked against the model when it loads');
    await expect(row(page, 'not-a-lora')).toContainText('Checked against the model when it loads');
    // The gallery keeps the LoRA by name (the file itself lives only in the LoRA list).
    await expect(gallery(page).nth(1)).toContainText(`LoRA ${NAME}:1`);

    await page.getByRole('button', { name: 'Remove not-a-lora' }).click();
    await page.getByRole('button', { name: 'Remove diffusion_pytorch_model' }).click();
    await expect(list.getByRole('listitem')).toHaveCount(1);
    await page.reload();
    await expect(page.getByRole('list', { name: 'LoRA list' }).getByRole('listitem')).toHaveCount(1);
  });
});
