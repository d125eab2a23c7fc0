import { expect, type Page } from '@playwright/test';

export const HUB = `http://127.0.0.1:${process.env.KOALA_E2E_HUB_PORT ?? 8123}`;
export const TINY = 'test/tiny-sdxl';

/** Collect CSP violations and uncaught page errors so a test can assert there were none. */
export function watchPage(page: Page) {
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' && /Content Security Policy|Refused to/i.test(m.text())) problems.push(m.text());
  });
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  return problems;
}

/** Fresh page with empty storage, waiting until the GPU check has answered. */
export async function openFresh(page: Page, query = '') {
  await page.goto(`/${query}`);
  await page.evaluate(async () => {
    localStorage.clear();
    for (const name of ['koala-web-gallery', 'koala-web-loras', 'koala-web-inputs']) {
      await new Promise<void>((res) => {
        const r = indexedDB.deleteDatabase(name);
        r.onsuccess = r.onerror = r.onblocked = () => res();
      });
    }
  });
  await page.goto(`/${query}`);
  await expect(page.getByRole('region', { name: 'GPU check' })).not.toContainText('Checking your GPU');
}

/** Put a gallery item straight into IndexedDB (the page's own store), as a finished generation would. */
export async function seedGallery(page: Page, item: { prompt: string; seed: number; steps: number; model: string }) {
  await page.evaluate(async (it) => {
    // 2×2 RGBA PNG drawn by the browser.
    const c = new OffscreenCanvas(2, 2);
    const ctx = c.getContext('2d')!;
    ctx.fillStyle = '#3a7';
    ctx.fillRect(0, 0, 2, 2);
    const png = await c.convertToBlob({ type: 'image/png' });
    const db = await new Promise<IDBDatabase>((res, rej) => {
      const r = indexedDB.open('koala-web-gallery');
      r.onupgradeneeded = () => r.result.createObjectStore('images');
      r.onsuccess = () => res(r.result);
      r.onerror = () => rej(r.error);
    });
    const settings = JSON.parse(localStorage.getItem('koala-web:settings:v1') ?? 'null') ?? {};
    const id = `seeded-${it.seed}`;
    const value = {
      id,
      createdAt: Date.now(),
      png,
      width: 64,
      height: 64,
      seed: it.seed,
      parameters: `${it.prompt}\nSteps: ${it.steps}, Sampler: Euler, CFG scale: 5, Seed: ${it.seed}, Size: 64x64`,
      params: {
        model: { repo: it.model },
        prompt: it.prompt,
        steps: it.steps,
        guidance: 5,
        scheduler: 'euler',
        width: 64,
        height: 64,
        seed: it.seed,
        numImages: 1,
      },
      settings: {
        ...settings,
        model: it.model,
        revision: 'main',
        hub: '',
        prompt: it.prompt,
        negativePrompt: '',
        steps: it.steps,
        guidance: 5,
        seed: it.seed,
        seedLocked: true,
        width: 64,
        height: 64,
        scheduler: 'euler',
        spacing: 'leading',
        numImages: 1,
      },
    };
    await new Promise<void>((res, rej) => {
      const tx = db.transaction('images', 'readwrite');
      tx.objectStore('images').put(value, id);
      tx.oncomplete = () => res();
      tx.onerror = () => rej(tx.error);
    });
    db.close();
  }, item);
}
