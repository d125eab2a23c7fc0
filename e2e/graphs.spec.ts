/**
 * The project's ONNX graphs in a REAL browser: Debian's Chromium, WebGPU through SwiftShader, onnxruntime-web's
 * native WebGPU EP (workers/runtime/ort.ts), fp32 (SwiftShader has no shader-f16).
 *
 * - Text encoders (every golden prompt), U-Net (every golden case) and VAE decoder (every golden case) of both
 *   tiny fixtures, built from the repo fetched off the mock hub, within 1e-3 abs of the diffusers goldens.
 * - No node on the CPU EP (ORT's verbose placement report, workers/runtime/ort-log.ts), except the CLIP
 *   int64 -> float Cast of input_ids for the EOS ArgMax (B x 77 values), as the Node WebGPU tests accept.
 * - The whole SdxlPipeline on WebGPU reads back from the GPU only the image and one tensor per preview.
 *
 * One page (the harness, e2e/harness/) for every test: SwiftShader compiles shaders slowly.
 */
import { resolve } from 'node:path';
import { expect, test, type Page } from '@playwright/test';
import type { GraphCheck } from './harness/graphs';
import { startMockHub, type MockHub } from '../scripts/mock-hub/server';
import { callHarness, openHarness } from './harness/page';

const FIXTURES = ['test/tiny-sdxl', 'test/tiny-koala'] as const;
const TOLERANCE = 1e-3;
/** Nodes the Node WebGPU tests also accept on the CPU (workers/model/webgpu.test.ts). */
const ALLOWED_ON_CPU: Partial<Record<GraphCheck['graph'], RegExp[]>> = {
  text_encoder: [/^Cast \(pool\/Cast\)$/],
  text_encoder_2: [/^Cast \(pool\/Cast\)$/],
};

/** ORT's own verbose/info/warning log lines (the sessions keep the verbose logger of the placement check). */
const notOrtLog = (line: string) => !/\[[VIW]:onnxruntime[:,]/.test(line);

test.describe.configure({ mode: 'serial' });

let page: Page;
/** A private mock hub on a free port: the shared one on :8123 may carry other specs' injected faults. */
let hub: MockHub;
const errors: string[] = [];

test.beforeAll(async ({ browser }) => {
  hub = await startMockHub({ root: resolve('test/fixtures'), port: 0, host: '127.0.0.1' });
  page = await browser.newPage();
  page.on('console', (m) => {
    if (m.type() === 'error' && !/^Failed to load resource/.test(m.text())) errors.push(m.text());
  });
  // failed loads by URL (the console line has none); the harness document's /favicon.ico 404 is expected
  page.on('response', (r) => {
    if (r.status() >= 400 && !r.url().endsWith('/favicon.ico')) errors.push(`HTTP ${r.status()} ${r.url()}`);
  });
  await openHarness(page, errors, test.info().project.use.baseURL);
  expect(await page.evaluate(async () => !!(await navigator.gpu?.requestAdapter())), 'a WebGPU adapter (SwiftShader)').toBe(true);
});

test.afterAll(async () => {
  await page?.close();
  await hub?.close();
});

for (const repo of FIXTURES) {
  test(`${repo}: text encoders, U-Net and VAE decoder on WebGPU fp32 match the goldens, nothing unexpected on the CPU`, async () => {
    test.setTimeout(600_000);
    const t0 = Date.now();
    const checks = await callHarness(page, 'checkFixtureGraphs', hub.url, repo);
    console.log(`${repo}: ${checks.length} sessions in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    for (const c of checks) {
      const errs = c.outputs
        .map((o) => `${o.case}.${o.output} ${o.maxAbsErr.toExponential(2)} (max|ref| ${o.maxAbsRef.toPrecision(3)})`)
        .join(', ');
      console.log(
        `  ${c.graph} ${c.inputs.join(' ')}: create ${c.createMs.toFixed(0)} ms, run ${c.runMs.toFixed(0)} ms; CPU nodes ${JSON.stringify(c.cpuNodes)}; max abs err ${errs}`,
      );
    }
    expect(new Set(checks.map((c) => c.graph))).toEqual(new Set(['text_encoder', 'text_encoder_2', 'unet', 'vae']));
    for (const c of checks) {
      const allowed = ALLOWED_ON_CPU[c.graph] ?? [];
      expect(
        c.cpuNodes.filter((n) => !allowed.some((r) => r.test(n))),
        `${c.graph} ${c.inputs}: nodes on the CPU`,
      ).toEqual([]);
      expect(c.outputs.length).toBeGreaterThan(0);
      for (const o of c.outputs) {
        expect(o.maxAbsRef, `${c.graph} ${o.case}.${o.golden} is a non-trivial golden`).toBeGreaterThan(0);
        expect(o.maxAbsErr, `${c.graph} ${o.case}.${o.output} vs ${o.golden}`).toBeLessThanOrEqual(TOLERANCE);
      }
    }
    expect(errors.filter(notOrtLog)).toEqual([]);
  });
}

test('SdxlPipeline on WebGPU in Chromium reads back only the image and the previews', async () => {
  test.setTimeout(600_000);
  const r = await callHarness(page, 'runPipeline', {
    hub: hub.url,
    repo: 'test/tiny-koala',
    width: 48,
    height: 64,
    steps: 10,
    guidance: 3.5,
    runs: 1,
    negativePrompt: 'worst quality, low quality',
    previewEvery: 4,
  });
  const run = r.runs[0]!;
  console.log(
    `pipeline on ${r.adapter}: prepare ${r.prepareSeconds.toFixed(2)} s, readbacks ${run.readbacks}, previews at ${run.previews}, timings ${JSON.stringify(run.timings)}`,
  );
  expect(r.adapter).toMatch(/swiftshader/i);
  expect(run.previews).toEqual([4, 8]);
  // one read for the decoded image, one per preview, nothing per step
  expect(run.readbacks).toBeGreaterThanOrEqual(1);
  expect(run.readbacks).toBeLessThanOrEqual(1 + run.previews.length);
  expect(run.meanRgb).toBeGreaterThan(0);
  expect(run.meanRgb).toBeLessThan(255);
});
