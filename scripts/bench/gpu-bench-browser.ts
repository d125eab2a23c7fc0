/**
 * `npm run bench:gpu -- --browser`: the benchmark page (/bench.html, the built page served by `vite preview`; run
 * `npx vite build --mode test` first) in Debian's Chromium with WebGPU (SwiftShader on a machine without a GPU),
 * started through its URL parameters; waits for the page's result and returns it.
 */
import { chromium } from 'playwright-core';
import type { GpuBenchResult } from '../../workers/bench/gpu-bench';
import { PAGE_ORIGIN } from '../../e2e/harness/page';
import { ensurePreview } from '../../e2e/harness/preview';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export async function runInBrowser(o: { model: string; size: number; steps: number; precision?: string; graphCapture?: string; fused?: string; noVae?: boolean }): Promise<GpuBenchResult> {
  const stop = await ensurePreview('bench:gpu --browser');
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-dev-shm-usage', '--enable-unsafe-webgpu', '--use-webgpu-adapter=swiftshader'],
  });
  try {
    const page = await browser.newPage();
    page.on('console', (m) => {
      if (m.type() === 'error') console.error(`page: ${m.text()}`);
    });
    const q = new URLSearchParams({ model: o.model, size: String(o.size), steps: String(o.steps), run: '1', ...(o.precision ? { precision: o.precision } : {}), ...(o.graphCapture ? { capture: o.graphCapture } : {}), ...(o.fused ? { fused: o.fused } : {}), ...(o.noVae ? { vae: '0' } : {}) });
    await page.goto(new URL(`/bench.html?${q}`, PAGE_ORIGIN).href);
    let last = '';
    for (;;) {
      const state = await page.evaluate(() => ({ result: document.body.dataset.benchResult, error: document.body.dataset.benchError, status: document.getElementById('status')?.textContent ?? '' }));
      if (state.result) return JSON.parse(state.result) as GpuBenchResult;
      if (state.error) throw new Error(`the benchmark page stopped: ${state.error}`);
      if (state.status !== last) console.log(`  ${state.status}`);
      last = state.status;
      await page.waitForTimeout(2000);
    }
  } finally {
    await browser.close();
    stop();
  }
}
