/**
 * npm run bench:cache:browser -- [--bytes N] [--chunk-mib N] [--runs N] [--out FILE]
 *
 * IndexedDB write/read throughput (MB/s, 1 MB = 1e6 bytes) of the engine's cache store in Debian's
 * Chromium (headless) for a synthetic file (default 1 GB in 32 MiB chunks): workers/hub/bench.ts `benchIdb`,
 * bundled with esbuild into one script and injected into a blank page on a local http origin (IndexedDB
 * needs a real origin), in a fresh on-disk profile. Write = the download path's calls (chunk Blob + partial record per chunk, then the
 * complete record); read = `readBlob()` streamed to the end. The Node store's figures: `npm run bench:cache`.
 */
import { build } from 'esbuild';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { chromium } from '@playwright/test';
import type { BenchResult } from '../workers/hub/bench';

const { values } = parseArgs({
  options: {
    bytes: { type: 'string', default: String(1e9) },
    'chunk-mib': { type: 'string', default: '32' },
    runs: { type: 'string', default: '1' },
    out: { type: 'string' },
  },
});
const bytes = Number(values.bytes);
const chunkSize = Number(values['chunk-mib']) * 1024 * 1024;
const runs = Math.max(1, Number(values.runs));

const bundle = await build({
  stdin: {
    contents: `import { benchIdb } from './workers/hub/bench.ts'; globalThis.benchIdb = benchIdb;`,
    resolveDir: resolve(import.meta.dirname, '..'),
    loader: 'ts',
  },
  bundle: true,
  format: 'iife',
  target: 'es2022',
  platform: 'browser',
  write: false,
  logLevel: 'warning',
});
const code = bundle.outputFiles[0]!.text;

const server = createServer((_req, res) => {
  res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
  res.end('<!doctype html><meta charset="utf-8"><title>bench-cache-browser</title>');
});
await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
const executablePath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
// A persistent profile: IndexedDB (and its Blobs) on disk as for a real user. A default Playwright context is
// off-the-record, keeps IndexedDB in memory, and fails reading 1 GB back ("TypeError: network error").
const profile = await mkdtemp(join(tmpdir(), 'bench-cache-browser-'));
const context = await chromium.launchPersistentContext(profile, { executablePath, args: ['--no-sandbox', '--disable-dev-shm-usage'] });
const fmt = (r: BenchResult) =>
  `chromium-idb ${(r.bytes / 1e6).toFixed(0).padStart(6)} MB in ${(r.chunkSize / 2 ** 20).toFixed(0)} MiB chunks: ` +
  `write ${r.writeMBps.toFixed(0).padStart(5)} MB/s (${r.writeSeconds.toFixed(2)} s), read ${r.readMBps.toFixed(0).padStart(5)} MB/s (${r.readSeconds.toFixed(2)} s)`;
const results: BenchResult[] = [];
try {
  const page = await context.newPage();
  page.on('console', (m) => {
    if (m.type() === 'error') console.error(`[page] ${m.text()}`);
  });
  await page.goto(url);
  await page.addScriptTag({ content: code });
  const version = context.browser()?.version() ?? (await page.evaluate(() => navigator.userAgent));
  const quota = await page.evaluate(() => navigator.storage.estimate());
  console.log(`Chromium ${version}; origin quota ${(Number(quota.quota) / 1e9).toFixed(1)} GB`);
  for (let i = 0; i < runs; i++) {
    const r = await page.evaluate(
      ([n, c]) => (globalThis as unknown as { benchIdb(n: number, c: number): Promise<BenchResult> }).benchIdb(n, c),
      [bytes, chunkSize] as const,
    );
    console.log(fmt(r));
    results.push(r);
  }
} finally {
  await context.close();
  server.close();
  await rm(profile, { recursive: true, force: true });
}
if (values.out) {
  await writeFile(values.out, JSON.stringify({ date: new Date().toISOString(), chromium: executablePath, results }, null, 2));
  console.log(`wrote ${values.out}`);
}
