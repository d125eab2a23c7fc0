/**
 * npm run bench:cache -- [--bytes N] [--chunk-mib N] [--dir DIR] [--idb-bytes N] [--chromium-bytes N] [--no-chromium] [--out FILE]
 *
 * Write and read throughput (MB/s, 1 MB = 1e6 bytes) of the model cache stores for a synthetic file:
 * - the Node filesystem store (default 1 GB, 32 MiB chunks, fdatasync per chunk, read back via fs.openAsBlob),
 * - the IndexedDB store on fake-indexeddb (in-memory: a code-path figure, not a browser figure),
 * - hash-wasm sha256 (the verification cost per byte downloaded).
 * - Chromium's IndexedDB (headless Debian Chromium, a page calling `benchIdb(bytes)` from workers/hub/bench.ts;
 *   default 1 GB; `--no-chromium` skips it).
 */
import 'fake-indexeddb/auto';
import { createSHA256 } from 'hash-wasm';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { benchStore, type BenchResult } from '../workers/hub/bench';
import { createFsStore } from '../workers/hub/fs-store.node.js';
import { IdbBlobStore } from '../workers/hub/idb-store';

const { values } = parseArgs({
  options: {
    bytes: { type: 'string', default: String(1e9) },
    'idb-bytes': { type: 'string', default: String(256e6) },
    'chunk-mib': { type: 'string', default: '32' },
    dir: { type: 'string' },
    out: { type: 'string' },
    'chromium-bytes': { type: 'string', default: String(1e9) },
    'no-chromium': { type: 'boolean', default: false },
  },
});
const bytes = Number(values.bytes);
const idbBytes = Number(values['idb-bytes']);
const chunkSize = Number(values['chunk-mib']) * 1024 * 1024;

const fmt = (r: BenchResult) =>
  `${r.store.padEnd(11)} ${(r.bytes / 1e6).toFixed(0).padStart(6)} MB in ${(r.chunkSize / 2 ** 20).toFixed(0)} MiB chunks: ` +
  `write ${r.writeMBps.toFixed(0).padStart(5)} MB/s (${r.writeSeconds.toFixed(2)} s), read ${r.readMBps.toFixed(0).padStart(5)} MB/s (${r.readSeconds.toFixed(2)} s)`;

const results: Record<string, unknown> = { date: new Date().toISOString(), node: process.version };

const dir = values.dir ?? (await mkdtemp(join(tmpdir(), 'koala-bench-cache-')));
try {
  const fs = await benchStore(createFsStore({ dir, chunkSize }), bytes);
  console.log(fmt(fs), `[${dir}]`);
  results.fs = fs;
} finally {
  if (!values.dir) await rm(dir, { recursive: true, force: true });
}

if (idbBytes > 0) {
  const idb = await benchStore(new IdbBlobStore({ name: `bench-${process.pid}`, chunkSize }), idbBytes);
  console.log(fmt(idb), '[fake-indexeddb, in memory]');
  results.fakeIdb = idb;
}

const hasher = await createSHA256();
hasher.init();
const buf = new Uint8Array(chunkSize).map((_, i) => i * 31);
const hashBytes = Math.min(bytes, 512e6);
const t0 = performance.now();
for (let done = 0; done < hashBytes; done += buf.length) hasher.update(buf);
hasher.digest();
const hashMBps = hashBytes / 1e6 / ((performance.now() - t0) / 1000);
console.log(`sha256 (hash-wasm) ${hashMBps.toFixed(0)} MB/s`);
results.sha256MBps = hashMBps;

if (!values['no-chromium'] && existsSync(process.env.CHROMIUM_PATH ?? '/usr/bin/chromium')) {
  // Chromium's IndexedDB, in an on-disk profile (an in-memory incognito profile fails at 1 GB): bench-cache-browser.ts
  const dir = await mkdtemp(join(tmpdir(), 'bench-idb-'));
  const out = join(dir, 'idb.json');
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'bench-cache-browser.ts'), '--bytes', String(values['chromium-bytes']), '--out', out], { stdio: 'inherit' });
  if (r.status === 0) results.chromiumIdb = JSON.parse(await readFile(out, 'utf8'));
  else console.log(`Chromium IndexedDB benchmark failed (exit ${r.status})`);
  await rm(dir, { recursive: true, force: true });
}

if (values.out) {
  await writeFile(values.out, JSON.stringify(results, null, 2));
  console.log(`wrote ${values.out}`);
}
