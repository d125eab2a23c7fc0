/**
 * Node side of the e2e harness: bundles e2e/harness/entry.ts (the project's graph builders, pipeline and
 * onnxruntime-web/webgpu) with esbuild and injects it into a document on the preview origin, so `/ort/` (the
 * preview server's onnxruntime-web runtime files) is same-origin and navigator.gpu sees a secure context.
 */
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import type { Page } from 'playwright-core';
import type { KoalaHarness } from './entry';

/** The preview server's default origin (playwright.config.ts: KOALA_E2E_PORT overrides the port). */
export const PAGE_ORIGIN = `http://127.0.0.1:${process.env.KOALA_E2E_PORT ?? 4173}`;
/** A plain file the preview server serves (no CSP) that hosts the injected harness. */
export const HARNESS_PATH = '/ort/ort-wasm-simd-threaded.asyncify.mjs';

let bundled: Promise<string> | undefined;

/** The harness as one ES module (built once per process, ~1 s). */
export function harnessBundle(): Promise<string> {
  bundled ??= build({
    entryPoints: [fileURLToPath(new URL('./entry.ts', import.meta.url))],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    write: false,
    // the ORT build that loads its .mjs/.wasm at run time (from wasmPaths), as the page's Vite build does
    conditions: ['onnxruntime-web-use-extern-wasm'],
    logLevel: 'warning',
  }).then((r) => r.outputFiles[0]!.text);
  return bundled;
}

/**
 * Opens a document the preview server itself serves (one of ORT's runtime files: served from the loopback
 * address, without the app's CSP meta tag; a page fulfilled by page.route would count as a public-address
 * page, and Chromium's Local Network Access checks would then block its fetches to the mock hub), injects
 * the harness module and waits until `window.__koalaHarness` exists. Collects page errors into `errors`.
 */
export async function openHarness(page: Page, errors: string[] = [], origin = PAGE_ORIGIN): Promise<void> {
  const js = await harnessBundle();
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  const url = new URL(HARNESS_PATH, origin).href;
  const res = await page.goto(url);
  if (!res?.ok()) throw new Error(`${url}: HTTP ${res?.status()} (is \`vite preview --mode test\` serving a build of this project?)`);
  await page.addScriptTag({ type: 'module', content: js });
  await page.waitForFunction(() => '__koalaHarness' in globalThis, undefined, { timeout: 60_000 });
}

/** Calls one harness function in the page (arguments and result cross as JSON). */
export function callHarness<K extends keyof KoalaHarness>(
  page: Page,
  fn: K,
  ...args: Parameters<KoalaHarness[K]>
): Promise<Awaited<ReturnType<KoalaHarness[K]>>> {
  return page.evaluate(
    ([f, a]) => (globalThis as unknown as { __koalaHarness: Record<string, (...x: unknown[]) => unknown> }).__koalaHarness[f]!(...a),
    [fn, args] as const,
  ) as Promise<Awaited<ReturnType<KoalaHarness[K]>>>;
}
