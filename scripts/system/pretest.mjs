#!/usr/bin/env node
/* global process, console */
/**
 * `pretest` of `npm test`: makes sure the two system pieces the tests need are there before any test starts.
 *
 * - Chromium for the Playwright tests (`CHROMIUM_PATH`, default /usr/bin/chromium; never a downloaded browser);
 * - a WebGPU adapter with `shader-f16` for the fp16 tests in Node (the `webgpu` package, Dawn). On a machine
 *   without a GPU that is Mesa >= 25 lavapipe from Debian's bookworm-backports.
 *
 * When something is missing and this user may install Debian packages (root, or passwordless sudo), it runs
 * scripts/system/install-debian.sh (the one place that knows the packages) with one line of progress, then
 * checks again. When it may not, it stops at once with one message naming the exact command to run.
 * `SKIP_WEBGPU=1` opts out of the WebGPU tests in Node explicitly (then no adapter is needed; the test summary
 * says they were skipped). Exit codes: 0 ready, 1 not ready.
 */
import { spawnSync } from 'node:child_process';
import { accessSync, constants, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const INSTALLER = 'scripts/system/install-debian.sh';
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const skipWebgpu = isSet(process.env.SKIP_WEBGPU);

function isSet(v) {
  return !!v && v !== '0' && v !== 'false';
}

function say(line) {
  console.log(`[npm test] ${line}`);
}

function chromiumOk() {
  try {
    accessSync(CHROMIUM, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Asks Dawn (in a child process, so a driver crash cannot take this one down) for its default adapter. */
function probeAdapter() {
  const code = `
    import { create } from 'webgpu';
    const gpu = create([]);
    const a = await gpu.requestAdapter().catch((e) => ({ error: String(e && e.message || e) }));
    const out = !a ? { adapter: null } : a.error ? a : {
      adapter: [a.info.vendor, a.info.architecture, a.info.device, a.info.description].filter(Boolean).join(' / '),
      f16: a.features.has('shader-f16'),
    };
    process.stdout.write(JSON.stringify(out));
    process.exit(0);`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
  try {
    return JSON.parse(r.stdout);
  } catch {
    return { adapter: null, error: (r.stderr || `exit ${r.status}`).trim().split('\n').slice(-1)[0] };
  }
}

function adapterProblem() {
  if (skipWebgpu) return null;
  const p = probeAdapter();
  if (p.error) return `Dawn's requestAdapter() failed: ${p.error}`;
  if (!p.adapter) return 'no WebGPU adapter (Dawn found no Vulkan driver)';
  if (!p.f16) return `the WebGPU adapter "${p.adapter}" has no shader-f16`;
  return null;
}

function canInstall() {
  if (!commandExists('apt-get')) return false;
  if (process.getuid?.() === 0) return true;
  return commandExists('sudo') && spawnSync('sudo', ['-n', 'true'], { stdio: 'ignore' }).status === 0;
}

function commandExists(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

function check() {
  const missing = [];
  if (!chromiumOk()) missing.push({ what: `Chromium (${CHROMIUM}) for the browser tests`, flag: '--chromium-only' });
  const gpu = adapterProblem();
  if (gpu) missing.push({ what: `a WebGPU adapter with shader-f16 for the fp16 tests: ${gpu}`, flag: '--mesa-only' });
  return missing;
}

function fail(missing, extra) {
  const sudo = process.getuid?.() === 0 ? '' : 'sudo ';
  const lines = [
    `cannot run the tests: missing ${missing.map((m) => m.what).join('; and ')}.`,
    `Install the Debian packages with:  ${sudo}bash ${INSTALLER}`,
  ];
  if (!chromiumOk()) lines.push('(or point CHROMIUM_PATH at an existing Chromium)');
  if (!skipWebgpu && missing.some((m) => m.flag === '--mesa-only')) {
    lines.push('(or skip the WebGPU tests in Node explicitly:  SKIP_WEBGPU=1 npm test)');
  }
  if (extra) lines.push(extra);
  console.error(lines.map((l) => `[npm test] ${l}`).join('\n'));
  process.exit(1);
}

if (process.env.CHROMIUM_PATH && !chromiumOk()) {
  console.error(
    `[npm test] CHROMIUM_PATH=${CHROMIUM} is not an executable file; point it at Chromium, or unset it to use /usr/bin/chromium.`,
  );
  process.exit(1);
}
let missing = check();
if (missing.length === 0) {
  if (skipWebgpu) say('SKIP_WEBGPU=1: the WebGPU tests in Node will be skipped');
  process.exit(0);
}
if (!canInstall()) fail(missing);

const flags = missing.length === 2 ? [] : [missing[0].flag];
const what = missing.length === 2 ? 'Chromium and Mesa 25 lavapipe' : flags[0] === '--chromium-only' ? 'Chromium' : 'Mesa 25 lavapipe';
const log = join(mkdtempSync(join(tmpdir(), 'koala-pretest-')), 'install.log');
say(`installing ${what} (Debian packages, once; about 1-3 minutes; log: ${log}) ...`);
const started = Date.now();
const root = process.getuid?.() === 0;
const installer = join(ROOT, INSTALLER);
const r = spawnSync(root ? 'bash' : 'sudo', root ? [installer, ...flags] : ['-n', 'bash', installer, ...flags], {
  cwd: ROOT,
  encoding: 'utf8',
  stdio: ['ignore', 'pipe', 'pipe'],
  timeout: 20 * 60_000,
});
const output = `${r.stdout ?? ''}${r.stderr ?? ''}`;
writeFileSync(log, output);
if (r.status !== 0) {
  const tail = output.trim().split('\n').slice(-8).join('\n');
  fail(missing, `${INSTALLER} failed (exit ${r.status ?? r.signal}); its last lines:\n${tail}`);
}
missing = check();
if (missing.length)
  fail(missing, `${INSTALLER} ran, but that is still missing (log: ${log}: ${readFileSync(log, 'utf8').trim().split('\n').pop()})`);
say(`installed in ${((Date.now() - started) / 1000).toFixed(0)} s: ${(r.stdout ?? '').trim().split('\n').pop()}`);
