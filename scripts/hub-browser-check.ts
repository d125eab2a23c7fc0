/**
 * npx tsx scripts/hub-browser-check.ts [--bench-bytes N]
 * Runs workers/hub in Debian's Chromium (headless) against the mock hub on another origin: real IndexedDB,
 * real Web Locks, CORS preflights for Range/If-Range across the LFS redirect; then benchIdb(N)
 * (default 1 GB) for the Chromium IndexedDB write/read figure. Prints JSON.
 */
import { chromium } from '@playwright/test';
import { createReadStream } from 'node:fs';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { extname, join, resolve } from 'node:path';
import { build } from 'vite';
import { startMockHub } from './mock-hub/server';

export interface HubBrowserCheckOptions {
  /** Bytes for benchIdb (0 = skip). */
  benchBytes: number;
  /** Run the download/resume/integrity/locks checks (false = benchmark only). */
  checks?: boolean;
  chromiumPath?: string;
}

/** Build the check page, serve it, start a mock hub, run it in headless Chromium; returns the page's JSON. */
export async function runHubBrowserCheck(o: HubBrowserCheckOptions): Promise<Record<string, unknown>> {
  const here = resolve(import.meta.dirname, 'hub-browser-check');
  const out = await mkdtemp(join(tmpdir(), 'hub-check-page-'));
  const root = await mkdtemp(join(tmpdir(), 'hub-check-repo-'));
  await cp(resolve(import.meta.dirname, '../test/fixtures/tiny-sdxl'), join(root, 'test/tiny-sdxl'), { recursive: true, filter: (s) => !s.includes('goldens') });
  await build({ configFile: false, root: here, logLevel: 'warn', build: { outDir: out, emptyOutDir: true, target: 'es2022' } });
  const types: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm' };
  const page = createServer((req, res) => {
    const p = join(out, req.url === '/' ? 'index.html' : decodeURIComponent(req.url!.split('?')[0]));
    if (!p.startsWith(out)) return res.writeHead(403).end();
    res.setHeader('Content-Type', types[extname(p)] ?? 'application/octet-stream');
    createReadStream(p)
      .on('error', () => res.writeHead(404).end())
      .pipe(res);
  });
  await new Promise<void>((r) => page.listen(0, '127.0.0.1', r));
  const pageUrl = `http://127.0.0.1:${(page.address() as AddressInfo).port}/`;
  const hub = await startMockHub({ root });
  const browser = await chromium.launch({ executablePath: o.chromiumPath ?? process.env.CHROMIUM_PATH ?? '/usr/bin/chromium', args: ['--no-sandbox', '--disable-dev-shm-usage'] });
  try {
    const tab = await browser.newPage();
    tab.on('console', (m) => console.error(`[page] ${m.text()}`));
    await tab.goto(pageUrl);
    await tab.waitForFunction(() => document.title === 'ready');
    return await tab.evaluate(
      ([h, n, c]) => (globalThis as unknown as { hubCheck(h: string, n: number, c: boolean): Promise<Record<string, unknown>> }).hubCheck(h, n, c),
      [hub.url, o.benchBytes, o.checks ?? true] as const,
    );
  } finally {
    await browser.close();
    await hub.close();
    page.close();
    await rm(out, { recursive: true, force: true });
    await rm(root, { recursive: true, force: true });
  }
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(import.meta.filename)) {
  const { parseArgs } = await import('node:util');
  const { values } = parseArgs({ options: { 'bench-bytes': { type: 'string', default: String(1e9) } } });
  console.log(JSON.stringify(await runHubBrowserCheck({ benchBytes: Number(values['bench-bytes']) }), null, 2));
}
