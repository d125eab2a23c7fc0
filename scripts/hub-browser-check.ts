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
import { parseArgs } from 'node:util';
import { build } from 'vite';
import { startMockHub } from './mock-hub/server';

const { values } = parseArgs({ options: { 'bench-bytes': { type: 'string', default: String(1e9) } } });
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
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium', args: ['--no-sandbox', '--disable-dev-shm-usage'] });
try {
  const tab = await browser.newPage();
  tab.on('console', (m) => console.error(`[page] ${m.text()}`));
  await tab.goto(pageUrl);
  await tab.waitForFunction(() => document.title === 'ready');
  const result = await tab.evaluate(
    ([h, n]) => (globalThis as unknown as { hubCheck(h: string, n: number): Promise<unknown> }).hubCheck(h, n),
    [hub.url, Number(values['bench-bytes'])] as const,
  );
  console.log(JSON.stringify(result, null, 2));
} finally {
  await browser.close();
  await hub.close();
  page.close();
  await rm(out, { recursive: true, force: true });
  await rm(root, { recursive: true, force: true });
}
