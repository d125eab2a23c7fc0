/**
 * Vite config for the page and its module worker.
 *
 * - onnxruntime-web: resolved with the `onnxruntime-web-use-extern-wasm` condition (the builds that load
 *   their .wasm/.mjs at run time instead of inlining them), excluded from dependency pre-bundling, and its
 *   ort-wasm-simd-threaded*.{wasm,mjs} files are served at `<base>ort/` in dev/preview and copied there in
 *   the build (src/ort-assets.ts gives the URL; the worker receives it in the `probe` request).
 * - COOP/COEP headers in dev and preview so the page is cross-origin isolated (SharedArrayBuffer, wasm
 *   threads). `require-corp` is fine for the hub: the engine's fetches are CORS requests.
 * - A Content-Security-Policy meta tag in the build: only the page's own scripts, its wasm, workers from
 *   self/blob, and connections to self + the Hugging Face hub. Extra hubs (a mirror) at build time:
 *   KOALA_HUB_ORIGINS="https://hf-mirror.example https://other". `--mode test` (the e2e build) and
 *   KOALA_ALLOW_LOCALHOST=1 also allow http://localhost:* and http://127.0.0.1:* (the mock hub).
 * - The bundled tiny demo model: in dev and preview, `<base>demo-hub/` proxies to a local hub server
 *   (scripts/mock-hub) that serves test/fixtures with the Hugging Face URL scheme, so `npm start` runs the
 *   whole flow offline on `demo/tiny-sdxl` (random weights). Set KOALA_DEMO_HUB=0 to turn it off.
 */
import { createReadStream, existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { extname, join, resolve } from 'node:path';
import react from '@vitejs/plugin-react';
import { defaultClientConditions, defineConfig, loadEnv, type Connect, type Plugin, type UserConfig } from 'vite';

const ORT_DIST = resolve(import.meta.dirname, 'node_modules/onnxruntime-web/dist');
const ORT_FILE = /^ort-wasm-simd-threaded(\.[a-z]+)?\.(wasm|mjs)$/;
const MIME: Record<string, string> = { '.wasm': 'application/wasm', '.mjs': 'text/javascript' };

export const ISOLATION_HEADERS = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
  'Cross-Origin-Resource-Policy': 'same-origin',
};

function ortFiles(): string[] {
  return readdirSync(ORT_DIST).filter((f) => ORT_FILE.test(f));
}

/** Serve onnxruntime-web's runtime files at <base>ort/ in dev and preview; emit them into the build. */
function ortAssets(): Plugin {
  let base = '/';
  const middleware: Connect.NextHandleFunction = (req, res, next) => {
    const url = (req.url ?? '').split('?')[0]!;
    const prefix = `${base}ort/`;
    if (!url.startsWith(prefix)) return next();
    const name = url.slice(prefix.length);
    if (!ORT_FILE.test(name) || !existsSync(join(ORT_DIST, name))) return next();
    const file = join(ORT_DIST, name);
    res.setHeader('Content-Type', MIME[extname(name)]!);
    res.setHeader('Content-Length', String(statSync(file).size));
    res.setHeader('Cache-Control', 'no-cache');
    for (const [k, v] of Object.entries(ISOLATION_HEADERS)) res.setHeader(k, v);
    createReadStream(file).pipe(res);
  };
  return {
    name: 'koala:ort-assets',
    configResolved(c) {
      base = c.base;
    },
    configureServer(server) {
      server.middlewares.use(middleware);
    },
    generateBundle() {
      for (const name of ortFiles()) {
        this.emitFile({ type: 'asset', fileName: `ort/${name}`, source: readFileSync(join(ORT_DIST, name)) });
      }
    },
  };
}

export function contentSecurityPolicy(connectExtra: string[]): string {
  const connect = ["'self'", 'https://huggingface.co', 'https://*.huggingface.co', 'https://*.hf.co', ...connectExtra];
  return [
    "default-src 'self'",
    "script-src 'self' 'wasm-unsafe-eval'",
    "worker-src 'self' blob:",
    `connect-src ${connect.join(' ')}`,
    "img-src 'self' blob: data:",
    "style-src 'self'",
    "font-src 'self'",
    "manifest-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'none'",
  ].join('; ');
}

/** The CSP goes into the built index.html (dev keeps Vite's inline HMR preamble working without it). */
function csp(connectExtra: string[]): Plugin {
  return {
    name: 'koala:csp',
    apply: 'build',
    transformIndexHtml: {
      order: 'post',
      handler: () => [
        {
          tag: 'meta',
          attrs: { 'http-equiv': 'Content-Security-Policy', content: contentSecurityPolicy(connectExtra) },
          injectTo: 'head-prepend',
        },
      ],
    },
  };
}

function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.once('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as AddressInfo;
      srv.close(() => res(port));
    });
  });
}

/** Start the demo hub (scripts/mock-hub.ts serving test/fixtures) as a child process; null when unavailable. */
async function startDemoHub(): Promise<string | null> {
  const script = resolve(import.meta.dirname, 'scripts/mock-hub.ts');
  const tsx = resolve(import.meta.dirname, 'node_modules/tsx/dist/cli.mjs');
  const fixtures = resolve(import.meta.dirname, 'test/fixtures');
  if (![script, tsx, fixtures].every((p) => existsSync(p))) return null;
  const port = await freePort();
  const child = spawn(process.execPath, [tsx, script, '--root', fixtures, '--port', String(port), '--no-redirect'], {
    stdio: 'ignore',
  });
  child.unref();
  process.once('exit', () => child.kill());
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) break;
    try {
      const r = await fetch(`${url}/api/models/demo/tiny-sdxl/revision/main`);
      if (r.ok) return url;
    } catch {
      /* not up yet */
    }
    await new Promise((r) => setTimeout(r, 150));
  }
  console.warn('demo hub (scripts/mock-hub.ts) did not start: the tiny demo model is unavailable');
  child.kill();
  return null;
}

export default defineConfig(async ({ mode, command }): Promise<UserConfig> => {
  const env = { ...loadEnv(mode, process.cwd(), 'KOALA_'), ...process.env };
  const extra = (env.KOALA_HUB_ORIGINS ?? '').split(/\s+/).filter((o) => /^https?:\/\/[^\s;,']+$/.test(o));
  if (mode === 'test' || mode === 'development' || env.KOALA_ALLOW_LOCALHOST === '1') {
    extra.push('http://localhost:*', 'http://127.0.0.1:*');
  }
  const serving = command === 'serve' && !process.env.VITEST;
  const demoHub = serving && env.KOALA_DEMO_HUB !== '0' ? await startDemoHub() : null;
  const proxy = demoHub
    ? { '/demo-hub': { target: demoHub, changeOrigin: true, rewrite: (p: string) => p.replace(/^\/demo-hub/, '') } }
    : undefined;
  return {
    plugins: [react(), ortAssets(), csp(extra)],
    resolve: {
      conditions: ['onnxruntime-web-use-extern-wasm', ...defaultClientConditions],
    },
    optimizeDeps: { exclude: ['onnxruntime-web'] },
    worker: { format: 'es' as const },
    build: {
      target: 'es2022',
      sourcemap: true,
      chunkSizeWarningLimit: 2000,
      // the app, and the GPU benchmark page (src/bench/: its own small entry, never loaded by the app)
      rollupOptions: { input: { main: resolve(import.meta.dirname, 'index.html'), bench: resolve(import.meta.dirname, 'bench.html') } },
    },
    server: { headers: ISOLATION_HEADERS, proxy },
    preview: { headers: ISOLATION_HEADERS, proxy },
  };
});
