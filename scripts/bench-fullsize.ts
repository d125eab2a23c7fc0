/**
 * `npm run bench:fullsize -- [--model koala-700m|koala-1b|sdxl-base] [--size 256] [--steps 2] [--precision fp16|fp32]
 *   [--dir DIR] [--seed N] [--existing DIR] [--json FILE]`
 *
 * A full-size generation in Node on WebGPU (Dawn; Mesa lavapipe on a machine without a GPU) through the app's own
 * engine code: a seeded random-weight checkpoint in diffusers layout (written once into --dir, default
 * $TMPDIR/koala-fullsize-<model>-s<seed>), opened like any model folder, the page's SdxlPipeline and WebGPU
 * backend (strict placement), CFG (batch 2), N Euler steps and the VAE decode. Prints per phase: seconds, peak
 * GPU bytes (every buffer counted), peak JS heap, peak RSS; per step: GPU seconds; readbacks; a NaN check.
 * `--existing DIR` runs any diffusers folder instead (e.g. test/fixtures/tiny-koala). JSON: bench-out/.
 * `--browser`: the same in Chromium (SwiftShader) through the page's IndexedDB cache: scripts/bench-fullsize-browser.ts.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { FULLSIZE_MODELS, type FullsizeModel } from './fullsize/checkpoint';
import { processHighWater, runFullsize } from './bench/fullsize-run';

const USAGE =
  'usage: npm run bench:fullsize -- [--model koala-700m|koala-1b|sdxl-base] [--size 256] [--steps 2] [--precision fp16|fp32] [--dir DIR] [--seed N] [--existing DIR] [--json FILE]';

function fail(msg: string): never {
  console.error(`bench:fullsize: ${msg}\n${USAGE}`);
  process.exit(2);
}

if (process.argv.includes('--browser')) {
  const { main } = await import('./bench-fullsize-browser');
  process.exit(await main(process.argv.slice(2)));
}

let values: Record<string, string | boolean | undefined>;
try {
  ({ values } = parseArgs({
    options: {
      model: { type: 'string', default: 'koala-700m' },
      size: { type: 'string', default: '256' },
      steps: { type: 'string', default: '2' },
      precision: { type: 'string', default: 'fp16' },
      dir: { type: 'string' },
      seed: { type: 'string', default: '1' },
      existing: { type: 'string' },
      json: { type: 'string' },
    },
  }));
} catch (e) {
  fail((e as Error).message);
}
{
  const model = values.model as FullsizeModel;
  if (!FULLSIZE_MODELS.includes(model)) fail(`--model must be one of ${FULLSIZE_MODELS.join(', ')}`);
  const size = Number(values.size);
  if (!Number.isInteger(size) || size < 64 || size % 64) fail(`--size must be a multiple of 64, got ${values.size}`);
  const steps = Number(values.steps);
  if (!Number.isInteger(steps) || steps < 1) fail(`--steps must be a positive integer, got ${values.steps}`);
  const precision = values.precision as 'fp16' | 'fp32';
  if (precision !== 'fp16' && precision !== 'fp32') fail(`--precision must be fp16 or fp32`);
  const seed = Number(values.seed);
  const existing = values.existing ? resolve(String(values.existing)) : undefined;
  const dir = existing ?? resolve(String(values.dir ?? join(tmpdir(), `koala-fullsize-${model}-s${seed}`)));
  const log = (l: string) => console.error(`[bench:fullsize] ${l}`);

  const run = await runFullsize({ model, dir, existing: !!existing, size, steps, seed, precision, log });
  const G = (n: number) => (n >= 2 ** 30 ? `${(n / 2 ** 30).toFixed(2)} GiB` : `${(n / 2 ** 20).toFixed(1)} MiB`);
  console.log(`\n${existing ? dir : model} ${precision}, ${size}×${size}, CFG (batch 2), ${steps} steps, on ${run.adapter}`);
  console.log(
    `${'phase'.padEnd(34)} ${'seconds'.padStart(8)} ${'GPU peak'.padStart(10)} ${'JS heap'.padStart(10)} ${'ext+AB'.padStart(10)} ${'RSS peak'.padStart(10)}`,
  );
  for (const p of run.phases) {
    console.log(
      `${p.phase.padEnd(34)} ${p.seconds.toFixed(1).padStart(8)} ${G(p.gpuPeakBytes).padStart(10)} ${G(p.jsHeapPeakBytes).padStart(10)} ${G(p.externalPeakBytes).padStart(10)} ${G(p.rssPeakBytes).padStart(10)}`,
    );
  }
  console.log(`GPU seconds per step: ${run.gpuStepSeconds.map((s) => s.toFixed(2)).join(', ')} (step 1 includes shader compilation)`);
  console.log(
    `peak GPU ${G(run.gpuPeakBytes)}, peak RSS ${G(run.rssPeakBytes)} (VmHWM ${G(processHighWater())}), peak JS heap ${G(run.jsHeapPeakBytes)}; readbacks in the denoise loop ${run.readbacksInLoop} (whole call ${run.readbacks}, with the dump the NaN check reads); latents/image finite: ${run.image.finite}; mean RGB ${run.image.meanRgb.toFixed(1)}`,
  );
  const out = resolve(String(values.json ?? `bench-out/fullsize-${existing ? 'dir' : model}-${precision}-${size}.json`));
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify({ date: new Date().toISOString(), ...run, vmHwmBytes: processHighWater() }, null, 2));
  console.log(`-> ${out}`);
  if (!run.image.finite) process.exit(1);
  process.exit(0);
}
