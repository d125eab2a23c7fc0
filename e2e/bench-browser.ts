/**
 * `benchBrowser()`: one SdxlPipeline generation per run in Debian's Chromium on WebGPU (SwiftShader), fp32,
 * on the tiny KOALA fixture, through the e2e harness (e2e/harness/: the project's pipeline bundled with
 * esbuild, injected into a document on the `vite preview` origin). Called by `scripts/bench-pipeline.ts --browser`.
 *
 * Servers: reuses a preview server already listening on 127.0.0.1:4173 (KOALA_E2E_PORT overrides) (else spawns
 * `npx vite preview --mode test --port 4173 --strictPort --host 127.0.0.1`, which needs a prior
 * `npx vite build --mode test`, and stops it afterwards). The fixtures are served by a private in-process mock
 * hub on a free port (a shared hub on :8123 may carry another test's injected faults).
 */
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { startMockHub } from '../scripts/mock-hub/server';
import type { PipelineBench } from './harness/pipeline';
import { callHarness, openHarness } from './harness/page';
import { ensurePreview } from './harness/preview';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ARGS = [
  '--enable-unsafe-webgpu',
  '--use-webgpu-adapter=swiftshader',
  '--no-sandbox',
  '--disable-background-networking',
  '--disable-component-update',
];

export interface BenchBrowserOptions {
  width: number;
  height: number;
  steps: number;
  guidance: number;
  runs: number;
  /** Fixture repo under test/fixtures (default test/tiny-koala). */
  repo?: string;
}

export async function benchBrowser(o: BenchBrowserOptions): Promise<PipelineBench> {
  const stopPreview = await ensurePreview('benchBrowser');
  const hub = await startMockHub({ root: resolve(ROOT, 'test/fixtures'), port: 0, host: '127.0.0.1' });
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
  try {
    const page = await browser.newPage();
    const errors: string[] = [];
    await openHarness(page, errors);
    const res = await callHarness(page, 'runPipeline', {
      hub: hub.url,
      repo: o.repo ?? 'test/tiny-koala',
      width: o.width,
      height: o.height,
      steps: o.steps,
      guidance: o.guidance,
      runs: o.runs,
    });
    if (errors.length) console.warn(`benchBrowser: page errors: ${errors.join('; ')}`);
    return res;
  } finally {
    await browser.close();
    await hub.close();
    stopPreview();
  }
}
