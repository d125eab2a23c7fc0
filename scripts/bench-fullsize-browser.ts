/**
 * `npm run bench:fullsize -- --browser [--size 256] [--steps 1] [--dir DIR | --existing DIR] [--model koala-700m]
 *   [--seed N] [--variant fp16|fp32] [--precision fp32|fp16] [--guidance G] [--timeout-min 90] [--min-free-mib 768] [--keep-profile]
 *   [--json FILE]`
 *
 * The full-size bench in the page's environment: Debian's Chromium, WebGPU through SwiftShader, the page's own
 * IndexedDB model cache, the page's engine code (the e2e harness: e2e/harness/fullsize.ts bundled and injected
 * into a document on the `vite preview` origin, as `bench:pipeline --browser` does; needs
 * `npx vite build --mode test` first). No internet: a seeded random-weight checkpoint (scripts/fullsize/checkpoint.ts,
 * written once into --dir, default $TMPDIR/koala-fullsize-<model>-s<seed>; a complete folder is used as it is)
 * is served by the project's mock hub (scripts/mock-hub/server.ts, in this process on 127.0.0.1) from a staging
 * folder of hard links to the files of the chosen variant.
 *
 * 1. cache fill, in a fresh on-disk profile (temp user-data-dir): the engine's openModel() downloads the repo
 *    from the mock hub into IndexedDB (chunked, sha256-verified): write MB/s.
 * 2. the browser is closed, the mock hub stopped; a new browser on the same profile opens the model offline from
 *    IndexedDB (read MB/s: every file's Blob streamed), builds every session through SdxlPipeline.prepare on
 *    createWebgpuBackend (seconds per session), and runs one generation (CFG, --steps Euler steps, default 1),
 *    reading the decoded image back.
 * Memory: GPU bytes counted by runtime/gpu-ledger.ts in the page; JS heap of the page's main thread (where the
 * harness runs the engine) both from CDP `Performance.getMetrics` JSHeapUsedSize (sampled every 2 s from here)
 * and `performance.memory.usedJSHeapSize` (sampled in the page); RSS of Chromium's processes by type (browser,
 * renderer, gpu-process, ...) from /proc. The wasm heap of onnxruntime-web is not JS heap: it shows in the
 * renderer's RSS. Prints a table; JSON to bench-out/fullsize-browser.json.
 */
import { linkSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import type { CachedRun, FillResult } from '../e2e/harness/fullsize';
import { callHarness, openHarness, PAGE_ORIGIN } from '../e2e/harness/page';
import { ensurePreview } from '../e2e/harness/preview';
import { FULLSIZE_MODELS, writeRandomCheckpoint, type FullsizeModel } from './fullsize/checkpoint';
import { startMockHub, type MockHub } from './mock-hub/server';

const USAGE =
  'usage: npm run bench:fullsize -- --browser [--size 256] [--steps 1] [--dir DIR | --existing DIR] [--model koala-700m|koala-1b|sdxl-base] [--seed N] [--variant fp16|fp32] [--precision fp32|fp16] [--guidance G] [--timeout-min 90] [--min-free-mib 768] [--keep-profile] [--json FILE]';
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ARGS = [
  '--enable-unsafe-webgpu',
  '--use-webgpu-adapter=swiftshader',
  '--no-sandbox',
  '--disable-background-networking',
  '--disable-component-update',
  // measurement aids: unquantised performance.memory; no GPU-process kill while SwiftShader is busy for long
  '--enable-precise-memory-info',
  '--disable-gpu-watchdog',
];

const G = (n: number) => (n >= 2 ** 30 ? `${(n / 2 ** 30).toFixed(2)} GiB` : `${(n / 2 ** 20).toFixed(0)} MiB`);
const MB = (n: number) => `${(n / 1e6).toFixed(0)} MB`;

// ---------------------------------------------------------------- Chromium processes (RSS by type) and CDP heap

interface ProcSample {
  /** Peak of the summed VmRSS per process type (browser, renderer, gpu-process, utility, zygote, ...; 'all': every process). */
  peakRss: Record<string, number>;
  /** Lowest MemAvailable of the machine. */
  minMemAvailable: number;
  gpuPids: Set<number>;
  rendererPids: Set<number>;
  exited: string[];
}

function readProcs(): { pid: number; ppid: number; cmd: string }[] {
  const out: { pid: number; ppid: number; cmd: string }[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const cmd = readFileSync(`/proc/${e}/cmdline`, 'utf8').replace(/\0/g, ' ');
      out.push({ pid: Number(e), ppid, cmd });
    } catch {
      /* gone */
    }
  }
  return out;
}

function kib(status: string, field: string): number {
  return Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0) * 1024;
}

class ChromiumProcesses {
  readonly s: ProcSample = { peakRss: {}, minMemAvailable: Infinity, gpuPids: new Set(), rendererPids: new Set(), exited: [] };
  private timer?: ReturnType<typeof setInterval>;
  private seen = new Map<number, string>();
  private rejectLow?: (e: Error) => void;
  phase = '';
  /** Rejects once the machine's MemAvailable falls below `minFree` (the bench stops before the OOM killer picks). */
  readonly lowMemory: Promise<never>;
  constructor(
    private readonly profile: string,
    private readonly minFree: number,
  ) {
    this.lowMemory = new Promise<never>((_, reject) => (this.rejectLow = reject));
    this.lowMemory.catch(() => undefined);
  }
  start(): void {
    this.timer = setInterval(() => this.sample(), 1000);
  }
  stop(): void {
    clearInterval(this.timer);
  }
  sample(): void {
    const procs = readProcs();
    const root = procs.find((p) => p.cmd.includes(`--user-data-dir=${this.profile}`) && !p.cmd.includes('--type='));
    const mem = /MemAvailable:\s+(\d+) kB/.exec(readFileSync('/proc/meminfo', 'utf8'));
    if (mem) this.s.minMemAvailable = Math.min(this.s.minMemAvailable, Number(mem[1]) * 1024);
    if (!root) return;
    const low = this.s.minMemAvailable < this.minFree;
    const kids = new Map<number, number[]>();
    for (const p of procs) kids.set(p.ppid, [...(kids.get(p.ppid) ?? []), p.pid]);
    const byPid = new Map(procs.map((p) => [p.pid, p]));
    const sums: Record<string, number> = {};
    const alive = new Set<number>();
    const stack = [root.pid];
    while (stack.length) {
      const pid = stack.pop()!;
      stack.push(...(kids.get(pid) ?? []));
      const p = byPid.get(pid)!;
      const type = /--type=(\S+)/.exec(p.cmd)?.[1] ?? (pid === root.pid ? 'browser' : 'other');
      if (type === 'gpu-process') this.s.gpuPids.add(pid);
      if (type === 'renderer') this.s.rendererPids.add(pid);
      alive.add(pid);
      if (!this.seen.has(pid)) this.seen.set(pid, type);
      try {
        sums[type] = (sums[type] ?? 0) + kib(readFileSync(`/proc/${pid}/status`, 'utf8'), 'VmRSS');
      } catch {
        /* gone */
      }
    }
    for (const [pid, type] of this.seen) {
      // (renderers come and go with navigations; a crash of the harness page's one is caught by crashGuard)
      if (!alive.has(pid) && type === 'gpu-process') {
        this.s.exited.push(`${type} ${pid} exited during "${this.phase}"`);
        this.seen.delete(pid);
      }
    }
    sums['all'] = Object.values(sums).reduce((a, b) => a + b, 0);
    for (const [t, v] of Object.entries(sums)) this.s.peakRss[t] = Math.max(this.s.peakRss[t] ?? 0, v);
    if (low && this.rejectLow) {
      const held = Object.entries(sums)
        .filter(([t]) => t !== 'all')
        .map(([t, v]) => `${t} ${G(v)}`)
        .join(', ');
      this.rejectLow(
        new Error(
          `the machine's available memory fell to ${G(this.s.minMemAvailable)} (limit --min-free-mib ${(this.minFree / 2 ** 20).toFixed(0)}) during "${this.phase}"; ` +
            `Chromium's processes held ${held}; stopped before the kernel's OOM killer picks a process`,
        ),
      );
      this.rejectLow = undefined;
    }
  }
  /** Forget the processes of a browser that was closed on purpose. */
  reset(): void {
    this.seen.clear();
  }
}

/** CDP Performance.getMetrics of the page (its main thread), polled; calls wait while the thread is busy. */
async function cdpHeapSampler(context: BrowserContext, page: Page) {
  const cdp = await context.newCDPSession(page);
  await cdp.send('Performance.enable');
  let peak = 0;
  let samples = 0;
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      try {
        const { metrics } = await cdp.send('Performance.getMetrics');
        const used = metrics.find((m) => m.name === 'JSHeapUsedSize')?.value ?? 0;
        peak = Math.max(peak, used);
        samples++;
      } catch {
        return;
      }
      await new Promise((r) => setTimeout(r, 2000));
    }
  })();
  return {
    async stop() {
      stopped = true;
      await Promise.race([loop, new Promise((r) => setTimeout(r, 3000))]);
      await cdp.detach().catch(() => undefined);
      return { peak, samples };
    },
  };
}

// ---------------------------------------------------------------- staging the checkpoint for the mock hub

/**
 * A folder of hard links to what the hub should serve (configs, tokenizers, the variant's weights), so the
 * mock hub hashes and lists only those; `undefined` when links cannot be made (then the folder is served whole).
 */
function stageRepo(src: string, dst: string, variant: 'fp16' | null): number | undefined {
  let bytes = 0;
  const isFp16 = (n: string) => /\.fp16[.-]/.test(n);
  const walk = (from: string, to: string) => {
    const names = readdirSync(from);
    mkdirSync(to, { recursive: true });
    for (const n of names) {
      if (n.startsWith('.') || n === 'goldens') continue;
      const a = join(from, n);
      const st = statSync(a);
      if (st.isDirectory()) {
        walk(a, join(to, n));
        continue;
      }
      if (n.includes('.safetensors')) {
        if (variant === null && isFp16(n)) continue;
        if (variant === 'fp16' && !isFp16(n) && names.includes(n.replace('.safetensors', '.fp16.safetensors'))) continue;
      }
      linkSync(a, join(to, n));
      bytes += st.size;
    }
  };
  try {
    walk(src, dst);
    return bytes;
  } catch (e) {
    console.error(`[bench:fullsize --browser] hard links into ${dst} failed (${(e as Error).message}); serving ${src} whole`);
    return undefined;
  }
}

// ---------------------------------------------------------------- the run

function withDeadline<T>(p: Promise<T>, deadline: number, what: () => string, guards: Promise<never>[] = []): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the overall time limit ran out during ${what()}`)), Math.max(0, deadline - Date.now()));
  });
  return Promise.race([p, timeout, ...guards]).finally(() => clearTimeout(timer));
}

/** Rejects when the page's renderer crashes or the page closes under us. */
function crashGuard(page: Page, what: () => string, procs: ChromiumProcesses): Promise<never> {
  return new Promise<never>((_, reject) => {
    page.on('crash', () => {
      procs.sample();
      reject(
        new Error(
          `the page's renderer process crashed during ${what()} (peak renderer RSS ${G(procs.s.peakRss['renderer'] ?? 0)}, ` +
            `GPU process ${G(procs.s.peakRss['gpu-process'] ?? 0)}, lowest MemAvailable ${G(procs.s.minMemAvailable)}: out of memory?)`,
        ),
      );
    });
  });
}

async function launch(profile: string): Promise<{ context: BrowserContext; page: Page }> {
  const context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, args: ARGS, headless: true });
  const page = context.pages()[0] ?? (await context.newPage());
  return { context, page };
}

export async function main(argv: string[]): Promise<number> {
  const fail = (msg: string): number => {
    console.error(`bench:fullsize --browser: ${msg}\n${USAGE}`);
    return 2;
  };
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        browser: { type: 'boolean' },
        model: { type: 'string', default: 'koala-700m' },
        size: { type: 'string', default: '256' },
        steps: { type: 'string', default: '1' },
        guidance: { type: 'string', default: '7.5' },
        seed: { type: 'string', default: '1' },
        dir: { type: 'string' },
        existing: { type: 'string' },
        variant: { type: 'string', default: 'fp16' },
        precision: { type: 'string', default: 'fp32' },
        'timeout-min': { type: 'string', default: '90' },
        'keep-profile': { type: 'boolean', default: false },
        'min-free-mib': { type: 'string', default: '768' },
        json: { type: 'string' },
      },
    }));
  } catch (e) {
    return fail((e as Error).message);
  }
  const model = values.model as FullsizeModel;
  if (!FULLSIZE_MODELS.includes(model)) return fail(`--model must be one of ${FULLSIZE_MODELS.join(', ')}`);
  const size = Number(values.size);
  if (!Number.isInteger(size) || size < 64 || size % 64) return fail(`--size must be a multiple of 64, got ${values.size}`);
  const steps = Number(values.steps);
  if (!Number.isInteger(steps) || steps < 1) return fail(`--steps must be a positive integer, got ${values.steps}`);
  const guidance = Number(values.guidance);
  if (!(guidance >= 0)) return fail(`--guidance must be a number >= 0`);
  const seed = Number(values.seed);
  if (values.variant !== 'fp16' && values.variant !== 'fp32') return fail('--variant must be fp16 or fp32');
  const variant = values.variant === 'fp16' ? 'fp16' : null;
  const precision = values.precision as 'fp32' | 'fp16';
  if (precision !== 'fp32' && precision !== 'fp16') return fail('--precision must be fp32 or fp16');
  const limitMin = Number(values['timeout-min']);
  if (!(limitMin > 0)) return fail('--timeout-min must be positive');
  const minFree = Number(values['min-free-mib']) * 2 ** 20;
  if (!(minFree >= 0)) return fail('--min-free-mib must be a number >= 0');
  const existing = values.existing ? resolve(String(values.existing)) : undefined;
  const dir = existing ?? resolve(String(values.dir ?? join(tmpdir(), `koala-fullsize-${model}-s${seed}`)));
  const t0 = Date.now();
  const deadline = t0 + limitMin * 60_000;
  const el = () => `${((Date.now() - t0) / 1000).toFixed(0).padStart(5)} s`;
  const log = (l: string) => console.error(`[bench:fullsize --browser ${el()}] ${l}`);
  let phase = 'setup';
  const what = () => `"${phase}" (${el().trim()} after the start)`;

  // ---- checkpoint, staging, hub, preview server
  const ckpt = existing
    ? { dir, bytesWritten: 0, seconds: 0 }
    : writeRandomCheckpoint({ out: dir, model, seed, variants: [variant === 'fp16' ? 'fp16' : 'fp32'], log });
  log(`checkpoint ${dir}: ${ckpt.bytesWritten ? `written (${G(ckpt.bytesWritten)}) in ${ckpt.seconds.toFixed(1)} s` : 'already there'}`);
  const stage = await mkdtemp(join(tmpdir(), 'koala-fullsize-hub-'));
  const name = basename(dir);
  const staged = stageRepo(dir, join(stage, 'bench', name), variant);
  const hubRoot = staged === undefined ? dirname(dir) : stage;
  const repo = `bench/${name}`;
  const profile = await mkdtemp(join(tmpdir(), 'koala-fullsize-profile-'));
  const procs = new ChromiumProcesses(profile, minFree);
  let hub: MockHub | undefined;
  let stopPreview: (() => void) | undefined;
  let context: BrowserContext | undefined;
  const pageErrors: string[] = [];
  const consoleErrors: string[] = [];
  /** The page's `[fullsize]` progress lines, with seconds since the start (kept in the JSON, also on failure). */
  const progress: string[] = [];
  const onConsole = (page: Page) =>
    page.on('console', (m) => {
      const text = m.text();
      if (text.startsWith('[fullsize] ')) {
        progress.push(`${el().trim()}: ${text.slice(11)}`);
        log(`page: ${text.slice(11)}`);
      } else if ((m.type() === 'error' || m.type() === 'warning') && !m.location().url.endsWith('/favicon.ico')) {
        const at = m.location().url;
        consoleErrors.push(`${m.type()}: ${text}${at ? ` (${at})` : ''}`);
        if (consoleErrors.length <= 20) log(`page ${m.type()}: ${consoleErrors.at(-1)!.slice(0, 400)}`);
      }
    });
  let fill: FillResult | undefined;
  let run: CachedRun | undefined;
  let hubSeconds = 0;
  let hubBytesServed = 0;
  let cdpHeap = { peak: 0, samples: 0 };
  let version = '';
  let hubUrl = '';
  try {
    phase = 'mock hub scan (sha256 of the served files)';
    hub = await startMockHub({ root: hubRoot, port: 0, host: '127.0.0.1' });
    hubUrl = hub.url;
    const th = Date.now();
    const state = await hub.repoState(repo);
    if (!state.files.length) throw new Error(`the mock hub finds no files for ${repo} under ${hubRoot}`);
    hubSeconds = (Date.now() - th) / 1000;
    log(
      `mock hub ${hub.url} serves ${repo}: ${state.files.length} files, ${G(state.files.reduce((s, f) => s + f.size, 0))}, hashed in ${hubSeconds.toFixed(1)} s`,
    );
    phase = 'preview server';
    stopPreview = await ensurePreview('bench:fullsize --browser');
    log(`preview server ${PAGE_ORIGIN}; profile ${profile}`);

    // ---- 1. cache fill in a fresh profile
    phase = 'cache fill (download into IndexedDB)';
    procs.start();
    procs.phase = phase;
    ({ context } = await launch(profile));
    {
      const page = context.pages()[0]!;
      page.setDefaultTimeout(limitMin * 60_000);
      onConsole(page);
      await openHarness(page, pageErrors);
      version = await page.evaluate(() => navigator.userAgent);
      fill = await withDeadline(callHarness(page, 'fillFullsizeCache', { hub: hubUrl, repo, variant }), deadline, what, [
        crashGuard(page, what, procs),
        procs.lowMemory,
      ]);
    }
    hubBytesServed = hub.bytesServed();
    await context.close();
    context = undefined;
    procs.reset();
    await hub.close();
    hub = undefined;
    log(`cache filled; browser closed, mock hub stopped (it served ${MB(hubBytesServed)})`);

    // ---- 2. a new browser on the same profile: everything from IndexedDB
    phase = 'reload: open from IndexedDB, sessions, generation';
    procs.phase = phase;
    ({ context } = await launch(profile));
    {
      const page = context.pages()[0]!;
      page.setDefaultTimeout(limitMin * 60_000);
      onConsole(page);
      page.on('console', (m) => {
        const t = m.text();
        const p = /^\[fullsize\] (?:creating )?(session \S+|cache read|denoise step|step \d|vae decode)/.exec(t);
        if (p) procs.phase = p[1]!;
      });
      await openHarness(page, pageErrors);
      const heap = await cdpHeapSampler(context, page);
      try {
        run = await withDeadline(
          callHarness(page, 'runFullsizeCached', { hub: hubUrl, repo, variant, size, steps, guidance, precision }),
          deadline,
          what,
          [crashGuard(page, () => `"${procs.phase}" of the run (${el().trim()} after the start)`, procs), procs.lowMemory],
        );
      } finally {
        cdpHeap = await heap.stop();
      }
    }
  } catch (e) {
    procs.sample();
    const err = e as Error;
    console.error(`\nbench:fullsize --browser FAILED during ${what()}: ${err.message}`);
    if (procs.s.exited.length) console.error(`processes that went away: ${procs.s.exited.join('; ')}`);
    console.error(
      `peak RSS: ${
        Object.entries(procs.s.peakRss)
          .map(([t, v]) => `${t} ${G(v)}`)
          .join(', ') || 'n/a'
      }; lowest MemAvailable ${G(procs.s.minMemAvailable)}`,
    );
    if (pageErrors.length) console.error(`page errors: ${pageErrors.join('; ')}`);
    const out = resolve(String(values.json ?? 'bench-out/fullsize-browser.json'));
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(
      out,
      JSON.stringify(
        {
          date: new Date().toISOString(),
          failed: `during ${what()}: ${err.message}`,
          model: existing ? dir : model,
          chromium: { path: CHROMIUM, userAgent: version, args: ARGS },
          variant: variant ?? 'fp32',
          precision,
          size,
          steps,
          seconds: (Date.now() - t0) / 1000,
          hub: { scanSeconds: hubSeconds, bytesServed: hubBytesServed },
          fill,
          progress,
          processes: { peakRssBytes: procs.s.peakRss, minMemAvailableBytes: procs.s.minMemAvailable, exited: procs.s.exited },
          pageErrors,
          consoleErrors: consoleErrors.slice(0, 50),
        },
        null,
        2,
      ),
    );
    console.error(`-> ${out} (what was measured before the failure)`);
    return 1;
  } finally {
    procs.stop();
    await context?.close().catch(() => undefined);
    await hub?.close().catch(() => undefined);
    stopPreview?.();
    await rm(stage, { recursive: true, force: true }); // hard links only: the checkpoint stays
    if (values['keep-profile']) log(`profile kept: ${profile}`);
    else await rm(profile, { recursive: true, force: true });
  }
  procs.sample();

  // ---- report
  const r = run!;
  const f = fill!;
  const seconds = (Date.now() - t0) / 1000;
  const stepT = Object.entries(r.timings).filter(([k]) => /^step\d+$/.test(k));
  console.log(
    `\n${existing ? dir : model}: ${variant ?? 'fp32'} files, ${precision} compute, ${size}×${size}, CFG ${guidance} (batch 2), ${steps} step${steps > 1 ? 's' : ''}; ` +
      `${version.match(/Chrome\/\S+/)?.[0] ?? 'Chromium'} on ${r.adapter} (shader-f16 ${r.shaderF16}, maxBufferSize ${G(r.limits.maxBufferSize)}, crossOriginIsolated ${r.crossOriginIsolated})`,
  );
  console.log(
    `cache fill  (mock hub -> engine downloader -> IndexedDB, sha256-verified): ${MB(f.bytes)} in ${f.seconds.toFixed(1)} s = ${f.writeMBps.toFixed(1)} MB/s (${f.files.length} files; origin usage ${MB(f.usage)} of ${MB(f.quota)} quota)`,
  );
  console.log(`reload, open offline from IndexedDB (manifest + every file present): ${r.open.seconds.toFixed(2)} s`);
  console.log(
    `cache read  (every ModelFiles Blob streamed):                     ${MB(r.read.bytes)} in ${r.read.seconds.toFixed(1)} s = ${r.read.MBps.toFixed(1)} MB/s`,
  );
  console.log(
    `\n${'session (ORT creation)'.padEnd(34)} ${'seconds'.padStart(8)} ${'weights'.padStart(10)} ${'GPU added'.padStart(10)} ${'ratio'.padStart(6)} ${'GPU after'.padStart(10)}`,
  );
  for (const s of r.sessions) {
    const ratio = s.weightBytes ? (s.gpuBytesAdded / s.weightBytes).toFixed(2) : '';
    console.log(
      `${s.label.padEnd(34)} ${s.seconds.toFixed(1).padStart(8)} ${G(s.weightBytes).padStart(10)} ${G(s.gpuBytesAdded).padStart(10)} ${ratio.padStart(6)} ${G(s.gpuBytesAfter).padStart(10)}`,
    );
  }
  console.log(`${'prepare (all, incl. graph builds)'.padEnd(34)} ${r.prepareSeconds.toFixed(1).padStart(8)}`);
  console.log(`(ratio = GPU bytes added / weight bytes in the files: about 2 when ${variant ?? 'fp32'} weights run as ${precision})`);
  console.log(
    `\n${'phase'.padEnd(44)} ${'seconds'.padStart(8)} ${'GPU end'.padStart(10)} ${'GPU peak'.padStart(10)} ${'JS heap*'.padStart(10)}`,
  );
  for (const p of r.phases) {
    console.log(
      `${p.phase.padEnd(44)} ${p.seconds.toFixed(1).padStart(8)} ${G(p.gpuEndBytes).padStart(10)} ${G(p.gpuPeakBytes).padStart(10)} ${G(p.jsHeapPeakBytes).padStart(10)}`,
    );
  }
  console.log(
    `\nstep (CPU-side submit): ${stepT.map(([k, v]) => `${k} ${v.toFixed(1)} s`).join(', ')}; GPU seconds per step: ${r.gpuStepSeconds.map((s) => s.toFixed(1)).join(', ')} (step 1 includes shader compilation)`,
  );
  console.log(
    `encode ${(r.timings['encode'] ?? 0).toFixed(1)} s, decode + readback ${(r.timings['decode'] ?? 0).toFixed(1)} s, generate total ${(r.timings['total'] ?? 0).toFixed(1)} s`,
  );
  console.log(
    `readbacks: ${r.readbacks} in the call (decoded image + the dump's tensors for the NaN check), ${r.readbacksInLoop} in the denoise loop; image ${r.image.width}×${r.image.height}, mean RGB ${r.image.meanRgb.toFixed(1)}, latents |max| ${r.image.latentsAbsMax.toFixed(2)}, finite ${r.image.finite}`,
  );
  console.log(
    `peak GPU (ledger) ${G(r.gpuPeakBytes)}; peak JS heap of the page's main thread: *performance.memory.usedJSHeapSize ${G(r.jsHeapPeakBytes)} ` +
      `(counts ArrayBuffers: ORT's external-data parts), CDP Performance.getMetrics JSHeapUsedSize ${G(cdpHeap.peak)} (V8 heap; ${cdpHeap.samples} samples, every 2 s)`,
  );
  console.log(
    `peak RSS of Chromium's processes (both launches): ${Object.entries(procs.s.peakRss)
      .map(([t, v]) => `${t} ${G(v)}`)
      .join(', ')}; lowest MemAvailable ${G(procs.s.minMemAvailable)}`,
  );
  console.log(`whole bench ${(seconds / 60).toFixed(1)} min (mock hub hashing ${hubSeconds.toFixed(0)} s)`);
  if (procs.s.exited.length) console.log(`note: ${procs.s.exited.join('; ')}`);
  const out = resolve(String(values.json ?? 'bench-out/fullsize-browser.json'));
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(
    out,
    JSON.stringify(
      {
        date: new Date().toISOString(),
        model: existing ? dir : model,
        checkpoint: { dir, ...(staged !== undefined ? { stagedBytes: staged } : {}) },
        chromium: { path: CHROMIUM, userAgent: version, args: ARGS },
        variant: variant ?? 'fp32',
        precision,
        size,
        steps,
        guidance,
        seconds,
        hub: { scanSeconds: hubSeconds, bytesServed: hubBytesServed },
        fill: f,
        run: r,
        cdpJsHeapPeakBytes: cdpHeap.peak,
        processes: { peakRssBytes: procs.s.peakRss, minMemAvailableBytes: procs.s.minMemAvailable, exited: procs.s.exited },
        progress,
        pageErrors,
        consoleErrors: consoleErrors.slice(0, 50),
      },
      null,
      2,
    ),
  );
  console.log(`-> ${out}`);
  return r.image.finite ? 0 : 1;
}

// `tsx scripts/bench-fullsize-browser.ts ...` directly (bench-fullsize.ts imports main() for --browser)
if (process.argv[1] && resolve(process.argv[1]) === resolve(import.meta.dirname, 'bench-fullsize-browser.ts')) {
  process.exit(await main(process.argv.slice(2)));
}
