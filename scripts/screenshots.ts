/**
 * npm run screenshots: PNGs of the built page at desktop (1440×900) and phone (390×844) widths into
 * docs/screenshots/. Serves dist/ with `vite preview` and test/fixtures with the mock hub itself, and drives
 * Debian's Chromium (WebGPU through SwiftShader).
 *
 * States are a list (STATES below): add one by giving it a name and a function that brings the page there.
 * States that need the inference engine (downloading, generating, done, error) are skipped, with a note,
 * while the build has no engine (the worker then answers only `probe`).
 */
import { mkdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import { chromium, expect, type Browser, type Page } from '@playwright/test';
import { preview } from 'vite';
import { startMockHub, type MockHub } from './mock-hub/server';

const OUT = resolve(import.meta.dirname, '../docs/screenshots');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ARGS = ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-dev-shm-usage'];
const WEBGPU = ['--enable-unsafe-webgpu', '--use-webgpu-adapter=swiftshader'];
const VIEWPORTS = {
  desktop: { width: 1440, height: 900 },
  phone: { width: 390, height: 844 },
} as const;

interface Ctx {
  page: Page;
  base: string;
  hub: MockHub;
  /** Page URL pointing at the mock hub's tiny model. */
  tinyUrl: (extra?: string) => string;
}

interface State {
  name: string;
  needsEngine?: boolean;
  webgpu?: boolean;
  theme?: 'light' | 'dark';
  fullPage?: boolean;
  run(ctx: Ctx): Promise<void>;
}

async function freshPage(ctx: Ctx, url: string) {
  await ctx.page.goto(url);
  await ctx.page.evaluate(async () => {
    localStorage.clear();
    await new Promise<void>((res) => {
      const r = indexedDB.deleteDatabase('koala-web-gallery');
      r.onsuccess = r.onerror = r.onblocked = () => res();
    });
  });
  await ctx.page.goto(url);
  await expect(ctx.page.getByRole('region', { name: 'GPU check' })).not.toContainText('Checking your GPU');
}

async function generate(page: Page) {
  await page.getByRole('button', { name: 'Generate' }).click();
}

const STATES: State[] = [
  { name: 'idle', run: (c) => freshPage(c, `${c.base}/`) },
  { name: 'idle-dark', theme: 'dark', run: (c) => freshPage(c, `${c.base}/`) },
  {
    name: 'error-no-webgpu',
    webgpu: false,
    run: (c) => freshPage(c, `${c.base}/`),
  },
  {
    name: 'downloading',
    needsEngine: true,
    async run(c) {
      c.hub.setFaults([{ kind: 'slow', path: 'unet', bytesPerSec: 400_000, times: 0 }]);
      await freshPage(c, c.tinyUrl());
      await generate(c.page);
      await expect(c.page.getByRole('progressbar', { name: 'Downloading' })).toBeVisible({ timeout: 60_000 });
      await c.page.waitForTimeout(2500);
    },
  },
  {
    name: 'generating',
    needsEngine: true,
    async run(c) {
      c.hub.reset();
      await freshPage(c, c.tinyUrl('&steps=40'));
      await generate(c.page);
      await expect(c.page.getByRole('img', { name: 'Live preview' })).toBeVisible({ timeout: 120_000 });
      await c.page.waitForTimeout(500);
    },
  },
  {
    name: 'done',
    needsEngine: true,
    fullPage: true,
    async run(c) {
      c.hub.reset();
      await freshPage(c, c.tinyUrl());
      await generate(c.page);
      await expect(c.page.getByRole('link', { name: 'Download' })).toBeVisible({ timeout: 180_000 });
    },
  },
  {
    name: 'error-network',
    needsEngine: true,
    async run(c) {
      c.hub.setFaults([{ kind: 'status', status: 503, times: 0 }]);
      await freshPage(c, c.tinyUrl('&model=test/tiny-koala'));
      await generate(c.page);
      await expect(c.page.getByRole('alert').filter({ hasText: 'Error' })).toBeVisible({ timeout: 60_000 });
      c.hub.reset();
    },
  },
];

async function main() {
  await mkdir(OUT, { recursive: true });
  const server = await preview({ mode: 'test', preview: { port: 4180, strictPort: false, host: '127.0.0.1' } });
  const base = server.resolvedUrls!.local[0]!.replace(/\/$/, '');
  const hub = await startMockHub({ root: resolve(import.meta.dirname, '../test/fixtures'), port: 0 });
  const browsers = {
    webgpu: await chromium.launch({ executablePath: CHROMIUM, args: [...ARGS, ...WEBGPU] }),
    plain: await chromium.launch({ executablePath: CHROMIUM, args: ARGS }),
  };
  const withEngine = await probeEngine(browsers.webgpu, base, hub);
  if (!withEngine) console.log('engine not wired in this build: skipping downloading/generating/done/error-network');
  const only = process.argv.slice(2);
  const written: string[] = [];
  try {
    for (const state of STATES) {
      if (only.length && !only.includes(state.name)) continue;
      if (state.needsEngine && !withEngine) continue;
      for (const [vpName, viewport] of Object.entries(VIEWPORTS)) {
        const browser = state.webgpu === false ? browsers.plain : browsers.webgpu;
        const context = await browser.newContext({ viewport, colorScheme: state.theme ?? 'light', deviceScaleFactor: 1 });
        const page = await context.newPage();
        const tinyUrl = (extra = '') =>
          `${base}/?hub=${encodeURIComponent(hub.url)}&model=test/tiny-sdxl&size=64x64&steps=4&prompt=${encodeURIComponent('a koala in a eucalyptus tree, watercolor')}${extra}`;
        try {
          await state.run({ page, base, hub, tinyUrl });
          const file = resolve(OUT, `${state.name}-${vpName}.png`);
          await page.screenshot({ path: file, fullPage: state.fullPage ?? vpName === 'phone' });
          written.push(file);
          console.log(`wrote ${file}`);
        } catch (err) {
          console.error(`state ${state.name} (${vpName}) failed: ${(err as Error).message}`);
          process.exitCode = 1;
        } finally {
          await context.close();
        }
      }
    }
  } finally {
    await browsers.webgpu.close();
    await browsers.plain.close();
    await hub.close();
    await new Promise<void>((res) => server.httpServer.close(() => res()));
  }
  console.log(`${written.length} screenshots in ${OUT}`);
}

/** Try a 1-step generation of the tiny model: true when the engine answers with progress or a result. */
async function probeEngine(browser: Browser, base: string, hub: MockHub): Promise<boolean> {
  const page = await browser.newPage();
  try {
    await page.goto(`${base}/?hub=${encodeURIComponent(hub.url)}&model=test/tiny-sdxl&size=64x64&steps=1&seed=1`);
    await expect(page.getByRole('region', { name: 'GPU check' })).not.toContainText('Checking your GPU');
    await page.getByRole('button', { name: 'Generate' }).click();
    const outcome = await Promise.race([
      page
        .getByRole('alert')
        .filter({ hasText: 'no inference engine' })
        .waitFor({ timeout: 60_000 })
        .then(() => false),
      page
        .locator('.progress-text')
        .first()
        .waitFor({ timeout: 60_000 })
        .then(() => true),
    ]).catch(() => false);
    return outcome;
  } finally {
    await page.close();
  }
}

await main();
