/**
 * The preview server for browser benches, as e2e/bench-browser.ts does it: reuses a server already serving the
 * harness document on PAGE_ORIGIN (127.0.0.1:4173; KOALA_E2E_PORT overrides), else spawns
 * `npx vite preview --mode test --port <port> --strictPort --host 127.0.0.1` (needs a prior
 * `npx vite build --mode test`) and returns a function that stops it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HARNESS_PATH, PAGE_ORIGIN } from './page';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const HARNESS_URL = new URL(HARNESS_PATH, PAGE_ORIGIN).href;

async function reachable(url: string): Promise<boolean> {
  try {
    const r = await fetch(url, { signal: AbortSignal.timeout(3000) });
    await r.body?.cancel();
    return r.ok;
  } catch {
    return false;
  }
}

/** Reuses or starts the preview server; returns a stop function (a no-op when reused). */
export async function ensurePreview(who = 'bench'): Promise<() => void> {
  if (await reachable(HARNESS_URL)) return () => undefined;
  if (!existsSync(resolve(ROOT, 'dist/index.html'))) {
    throw new Error(`${who}: nothing serves ${PAGE_ORIGIN} and dist/ has no build; run \`npx vite build --mode test\` first`);
  }
  const child: ChildProcess = spawn(
    'npx',
    ['vite', 'preview', '--mode', 'test', '--port', new URL(PAGE_ORIGIN).port, '--strictPort', '--host', '127.0.0.1'],
    { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'], detached: true },
  );
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const stop = () => {
    // the npx -> vite process group this function started
    if (child.pid && child.exitCode === null) {
      try {
        process.kill(-child.pid, 'SIGTERM');
      } catch {
        /* already gone */
      }
    }
  };
  for (let i = 0; i < 120; i++) {
    if (await reachable(HARNESS_URL)) return stop;
    if (child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  stop();
  throw new Error(`${who}: vite preview did not serve ${HARNESS_URL} within 60 s${stderr ? `: ${stderr.trim().slice(-500)}` : ''}`);
}
