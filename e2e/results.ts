/** Generated results in the page, for the e2e specs: generate, download the PNG, read its parameters and pixels. */
import { expect, type Page } from '@playwright/test';
import { decode } from 'fast-png';
import { pngTextChunks } from './png';

export const gallery = (page: Page) => page.getByRole('region', { name: 'Gallery' }).getByRole('listitem');

/** RGB bytes of a decoded PNG (any channel count fast-png gives). */
export function rgbOf(bytes: Uint8Array): { rgb: Uint8Array; width: number; height: number } {
  const img = decode(bytes);
  const ch = img.channels;
  const rgb = new Uint8Array(img.width * img.height * 3);
  for (let i = 0; i < img.width * img.height; i++) {
    for (let c = 0; c < 3; c++) rgb[i * 3 + c] = Number(img.data[i * ch + (ch >= 3 ? c : 0)]);
  }
  return { rgb, width: img.width, height: img.height };
}

/** Generate; wait for image number `count` in the gallery; download it: its PNG's parameters and RGB pixels. */
export async function generateAndRead(page: Page, count: number, timeout = 300_000): Promise<{ parameters: string; rgb: Uint8Array; width: number; height: number }> {
  await page.getByRole('button', { name: 'Generate' }).click();
  await expect(gallery(page)).toHaveCount(count, { timeout });
  await expect(page.getByRole('button', { name: 'Generate' })).toBeEnabled();
  const [file] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'Download' }).click()]);
  const chunks: Buffer[] = [];
  for await (const c of await file.createReadStream()) chunks.push(c as Buffer);
  const bytes = new Uint8Array(Buffer.concat(chunks));
  return { parameters: pngTextChunks(bytes).parameters ?? '', ...rgbOf(bytes) };
}

/** Channel values that differ, and the largest difference. */
export function diffRgb(a: Uint8Array, b: Uint8Array): { changed: number; max: number } {
  expect(a.length).toBe(b.length);
  let changed = 0;
  let max = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (d) changed++;
    max = Math.max(max, d);
  }
  return { changed, max };
}
