/**
 * npm run screenshots [-- name…]: PNGs of the built page at desktop (1440×900) and phone (390×844) widths
 * into docs/screenshots/<state>-<desktop|phone>.png. Serves dist/ with `vite preview` and test/fixtures with
 * the mock hub itself, and drives Debian's Chromium (WebGPU through SwiftShader).
 *
 * Scenarios are a list (SCENARIOS below); each brings one page through one or more states and calls
 * `shot(state)` at each. Add a state by adding a scenario or a `shot` call. Scenarios that need the
 * inference engine (downloading, compiling, generating, done, error) are skipped, with a note, when the
 * build has no engine (the worker then answers only `probe`). Names given on the command line pick scenarios.
 */
import { mkdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import { chromium, expect, type Browser, type Page } from '@playwright/test';
import { preview } from 'vite';
import { startMockHub, type MockHub } from './mock-hub/server';
import { attentionModules, buildTinyLora } from '../e2e/lora-file';

const OUT = resolve(import.meta.dirname, '../docs/screenshots');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ARGS = ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-dev-shm-usage'];
const WEBGPU = ['--enable-unsafe-webgpu', '--use-webgpu-adapter=swiftshader'];
const VIEWPORTS = {
  desktop: { width: 1440, height: 900 },
  phone: { width: 390, height: 844 },
} as const;
const SLOW = 300_000;
const PROMPT = 'a koala in a eucalyptus tree, watercolor';

interface Ctx {
  page: Page;
  base: string;
  hub: MockHub;
  /** Page URL pointing at the mock hub's tiny model. */
  tinyUrl: (extra?: string) => string;
  /** Screenshot the page as `<state>-<viewport>.png`. */
  shot: (state: string, opts?: { fullPage?: boolean }) => Promise<void>;
}

interface Scenario {
  name: string;
  needsEngine?: boolean;
  webgpu?: boolean;
  theme?: 'light' | 'dark';
  run(ctx: Ctx): Promise<void>;
}

async function freshPage(page: Page, url: string) {
  await page.goto(url);
  await page.evaluate(async () => {
    localStorage.clear();
    await new Promise<void>((res) => {
      const r = indexedDB.deleteDatabase('koala-web-gallery');
      r.onsuccess = r.onerror = r.onblocked = () => res();
    });
  });
  await page.goto(url);
  await expect(page.getByRole('region', { name: 'GPU check' })).not.toContainText('Checking your GPU');
}

const generate = (page: Page) => page.getByRole('button', { name: 'Generate' }).click();

const SCENARIOS: Scenario[] = [
  {
    name: 'idle',
    async run(c) {
      await freshPage(c.page, `${c.base}/`);
      await c.shot('idle');
    },
  },
  {
    name: 'idle-dark',
    theme: 'dark',
    async run(c) {
      await freshPage(c.page, `${c.base}/`);
      await c.shot('idle-dark');
    },
  },
  {
    name: 'error-no-webgpu',
    webgpu: false,
    async run(c) {
      await freshPage(c.page, `${c.base}/`);
      await c.shot('error-no-webgpu');
    },
  },
  {
    // One page: downloading (throttled hub) -> compiling shaders -> generating (live preview) -> done.
    name: 'generation',
    needsEngine: true,
    async run(c) {
      const { page, hub } = c;
      hub.reset();
      hub.setFaults([{ kind: 'slow', path: 'unet', bytesPerSec: 500_000, times: 0 }]);
      await freshPage(page, c.tinyUrl('&steps=30&seed=2024'));
      await generate(page);
      await expect(page.getByRole('progressbar', { name: 'Downloading' })).toBeVisible({ timeout: 60_000 });
      await page.waitForTimeout(1500);
      await c.shot('downloading');
      await expect(page.getByRole('progressbar', { name: 'Compiling shaders' })).toBeVisible({ timeout: SLOW });
      await page.waitForTimeout(1000);
      await c.shot('compiling');
      await expect(page.locator('.progress-text')).toContainText(/Step (1[0-9]|2[0-9])\/30/, { timeout: SLOW });
      await c.shot('generating');
      await expect(page.getByRole('link', { name: 'Download' })).toBeVisible({ timeout: SLOW });
      hub.reset();
      // A second image so the gallery strip has company.
      await page.getByRole('textbox', { name: 'Prompt', exact: true }).fill('a koala astronaut floating above the earth, digital art');
      await page.getByRole('slider', { name: 'Steps' }).fill('8');
      await generate(page);
      await expect(page.getByRole('region', { name: 'Gallery' }).getByRole('listitem')).toHaveCount(2, { timeout: SLOW });
      await c.shot('done');
    },
  },
  {
    // Two LoRAs in the list: one applied (full match, its tag on the gallery item), one that matches only part.
    name: 'loras',
    needsEngine: true,
    async run(c) {
      const { page, hub } = c;
      hub.reset();
      await freshPage(page, c.tinyUrl('&steps=4&seed=77'));
      await generate(page);
      await expect(page.getByRole('link', { name: 'Download' })).toBeVisible({ timeout: SLOW });
      const full = buildTinyLora({
        modules: [...attentionModules('down_blocks.1.attentions.0.'), ...attentionModules('mid_block.attentions.0.transformer_blocks.0.')],
        amplitude: 0.2,
        seed: 5,
      });
      const partial = buildTinyLora({
        modules: attentionModules('down_blocks.2.attentions.0.transformer_blocks.0.'),
        missing: [
          ['down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q', 8, 8],
          ['down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_k', 8, 8],
        ],
        seed: 9,
      });
      await page.locator('summary', { hasText: 'LoRAs' }).click();
      const file = page.getByLabel('LoRA file');
      await file.setInputFiles({
        name: 'watercolor-koala.safetensors',
        mimeType: 'application/octet-stream',
        buffer: Buffer.from(full.bytes),
      });
      await expect(page.getByRole('listitem', { name: 'LoRA watercolor-koala' })).toContainText('Matches', { timeout: SLOW });
      await generate(page);
      await expect(page.getByRole('region', { name: 'Gallery' }).getByRole('listitem')).toHaveCount(2, { timeout: SLOW });
      await file.setInputFiles({
        name: 'pixel-art-xl.safetensors',
        mimeType: 'application/octet-stream',
        buffer: Buffer.from(partial.bytes),
      });
      await expect(page.getByRole('listitem', { name: 'LoRA pixel-art-xl' })).toContainText('not in this model', { timeout: SLOW });
      await page.getByRole('slider', { name: 'pixel-art-xl scale' }).fill('0.75');
      await page.locator('details.loras').scrollIntoViewIfNeeded();
      await c.shot('loras', { fullPage: false });
    },
  },
  {
    // Image to image: a wide input (the note says how it is fitted to 64×64), strength 0.6, one result.
    name: 'img2img',
    needsEngine: true,
    async run(c) {
      const { page } = c;
      c.hub.reset();
      await freshPage(page, c.tinyUrl('&steps=8&seed=31'));
      await page.getByRole('radio', { name: 'Image → image' }).check();
      await page.getByLabel('Input image file').setInputFiles(resolve(import.meta.dirname, '../test/fixtures/img2img-goldens/tiny-sdxl/input_128x64.png'));
      await expect(page.getByRole('region', { name: 'Input image' })).toContainText('128×64 px');
      await page.getByRole('slider', { name: 'Strength' }).fill('0.6');
      await generate(page);
      await expect(page.getByRole('link', { name: 'Download' })).toBeVisible({ timeout: SLOW });
      await page.evaluate(() => window.scrollTo(0, 0));
      await page.locator('.panel').evaluate((p) => p.scrollTo(0, 0));
      await c.shot('img2img');
    },
  },
  {
    // Inpainting: a rectangle painted with the mouse over the input, shown semi-transparent, and the result.
    name: 'inpaint',
    needsEngine: true,
    async run(c) {
      const { page } = c;
      c.hub.reset();
      await freshPage(page, c.tinyUrl('&steps=8&seed=32'));
      await page.getByRole('radio', { name: 'Inpaint' }).check();
      await page.getByLabel('Input image file').setInputFiles(resolve(import.meta.dirname, '../test/fixtures/img2img-goldens/tiny-sdxl/input.png'));
      const canvas = page.getByRole('img', { name: 'Mask: paint the area to repaint' });
      await canvas.scrollIntoViewIfNeeded();
      await page.getByRole('slider', { name: 'Brush size' }).fill('8');
      const box = (await canvas.boundingBox())!;
      const at = (x: number, y: number) => [box.x + (x / 64) * box.width, box.y + (y / 64) * box.height] as const;
      await page.mouse.move(...at(22, 20));
      await page.mouse.down();
      for (let y = 20; y <= 44; y += 4) {
        await page.mouse.move(...at(22, y), { steps: 2 });
        await page.mouse.move(...at(46, y), { steps: 6 });
      }
      await page.mouse.up();
      await expect(page.getByRole('button', { name: 'Generate' })).toBeEnabled();
      await generate(page);
      await expect(page.getByRole('link', { name: 'Download' })).toBeVisible({ timeout: SLOW });
      await page.mouse.move(0, 0);
      await page.evaluate(() => window.scrollTo(0, 0));
      // Desktop: the panel scrolls on its own; show the whole input box with the mask tools.
      await page.locator('.input-image').evaluate((e) => e.scrollIntoView({ block: 'center' }));
      await page.evaluate(() => window.scrollTo(0, 0));
      await c.shot('inpaint');
    },
  },
  {
    name: 'error-network',
    needsEngine: true,
    async run(c) {
      c.hub.reset();
      c.hub.setFaults([{ kind: 'status', status: 503, times: 0 }]);
      await freshPage(c.page, c.tinyUrl('&steps=2'));
      await generate(c.page);
      await expect(c.page.getByRole('alert').filter({ hasText: 'Could not reach the model hub' })).toBeVisible({ timeout: 120_000 });
      await c.shot('error-network');
      c.hub.reset();
    },
  },
];

/** Try a 1-step generation of the tiny model: true when the engine answers with real progress. */
async function probeEngine(browser: Browser, base: string, hub: MockHub): Promise<boolean> {
  const page = await browser.newPage();
  try {
    await page.goto(`${base}/?hub=${encodeURIComponent(hub.url)}&model=test/tiny-sdxl&size=64x64&steps=1&seed=1`);
    await expect(page.getByRole('region', { name: 'GPU check' })).not.toContainText('Checking your GPU');
    await page.getByRole('button', { name: 'Generate' }).click();
    return await Promise.race([
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
  } finally {
    await page.close();
  }
}

async function main() {
  await mkdir(OUT, { recursive: true });
  const server = await preview({ mode: 'test', preview: { port: 4180, strictPort: false, host: '127.0.0.1' } });
  const base = server.resolvedUrls!.local[0]!.replace(/\/$/, '');
  const hub = await startMockHub({ root: resolve(import.meta.dirname, '../test/fixtures'), port: 0 });
  const browsers = {
    webgpu: await chromium.launch({ executablePath: CHROMIUM, args: [...ARGS, ...WEBGPU] }),
    plain: await chromium.launch({ executablePath: CHROMIUM, args: ARGS }),
  };
  const only = process.argv.slice(2);
  const picked = SCENARIOS.filter((s) => !only.length || only.includes(s.name));
  const withEngine = picked.some((s) => s.needsEngine) ? await probeEngine(browsers.webgpu, base, hub) : false;
  if (!withEngine && picked.some((s) => s.needsEngine)) {
    console.log('engine not wired in this build: skipping the generation and error-network scenarios');
  }
  const written: string[] = [];
  try {
    for (const scenario of picked) {
      if (scenario.needsEngine && !withEngine) continue;
      for (const [vpName, viewport] of Object.entries(VIEWPORTS)) {
        const browser = scenario.webgpu === false ? browsers.plain : browsers.webgpu;
        const context = await browser.newContext({ viewport, colorScheme: scenario.theme ?? 'light', deviceScaleFactor: 1 });
        const page = await context.newPage();
        const tinyUrl = (extra = '') => {
          const q = new URLSearchParams({ hub: hub.url, model: 'test/tiny-sdxl', size: '64x64', steps: '4', prompt: PROMPT });
          for (const [k, v] of new URLSearchParams(extra)) q.set(k, v);
          return `${base}/?${q}`;
        };
        const shot = async (state: string, opts: { fullPage?: boolean } = {}) => {
          const file = resolve(OUT, `${state}-${vpName}.png`);
          // Phone: the whole page, unless the page scrolled itself (generation scrolls to the stage):
          // then what the user sees, since a full-page capture would paint the sticky header mid-page.
          const scrolled = await page.evaluate(() => window.scrollY > 0);
          await page.screenshot({ path: file, fullPage: opts.fullPage ?? (vpName === 'phone' && !scrolled) });
          written.push(file);
          console.log(`wrote ${file}`);
        };
        try {
          await scenario.run({ page, base, hub, tinyUrl, shot });
        } catch (err) {
          console.error(`scenario ${scenario.name} (${vpName}) failed: ${(err as Error).message}`);
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

await main();
