/**
 * `npm run bench:memory -- [--size 1024] [--measured FILE]`: the GPU memory ledger of KOALA-700M, KOALA-1B and
 * SDXL-base (fp16, CFG: U-Net batch 2) per phase, computed from the app's own graphs (no GPU, no weights:
 * scripts/bench/memory-ledger.ts), and next to it what a real run measured on the largest size this machine's
 * adapter could run (`npm run bench:fullsize` writes bench-out/fullsize-<model>-fp16-<size>.json: every GPU
 * buffer counted, JS heap, RSS), with the computed figure for that same size. Also: the VAE decode at 1024²
 * against binding limits of 128 MiB (WebGPU's minimum, lavapipe), 1 GiB (SwiftShader) and 2 GiB (a typical
 * laptop GPU). Prints tables; writes bench-out/memory.json.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { MemoryEstimate } from '../workers/runtime/memory-estimate';
import type { FullsizeRun } from './bench/fullsize-run';
import { ledger, minBindingBytes } from './bench/memory-ledger';
import { FULLSIZE_MODELS } from './fullsize/checkpoint';

const { values } = parseArgs({ options: { size: { type: 'string', default: '1024' }, measured: { type: 'string' } } });
const size = Number(values.size);
const GB = (n: number) => `${(n / 1e9).toFixed(2)} GB`;
const MiB = (n: number) => `${(n / 2 ** 20).toFixed(0)} MiB`;
const BINDING = 128 * 2 ** 20;

const out: Record<string, unknown> = { date: new Date().toISOString(), size };

// ---- computed ledger of the three models
console.log(`GPU memory per phase, computed from the graphs (fp16, ${size}×${size}, CFG; binding limit ${MiB(BINDING)})`);
console.log(
  `${'model'.padEnd(12)} ${'weights'.padStart(9)} ${'encode'.padStart(9)} ${'step'.padStart(9)} ${'VAE dec.'.padStart(9)} ${'peak'.padStart(9)}  U-Net / TE2 / TE1 / VAE weights; U-Net / VAE activations`,
);
const computed: Record<string, MemoryEstimate> = {};
for (const model of FULLSIZE_MODELS) {
  const e = await ledger({ model, width: size, height: size, precision: 'fp16', maxBindingBytes: BINDING });
  computed[model] = e;
  const c = e.components;
  const ph = Object.fromEntries(e.phases.map((p) => [p.phase, p.bytes]));
  console.log(
    `${model.padEnd(12)} ${GB(ph['sessions created']!).padStart(9)} ${GB(ph['encode']!).padStart(9)} ${GB(ph['denoise step']!).padStart(9)} ${GB(ph['vae decode']!).padStart(9)} ${GB(e.peakBytes).padStart(9)}  ` +
      `${GB(c.unet.weights)} / ${GB(c.text_encoder_2.weights)} / ${GB(c.text_encoder.weights)} / ${GB(c.vae_decoder.weights)}; ${GB(c.unet.activations)} / ${GB(c.vae_decoder.activations)}`,
  );
}
const koala = computed['koala-700m']!;
console.log(
  `KOALA-700M at ${size}²: ${GB(koala.peakBytes)} at its peak (${koala.peakPhase}) — ${koala.peakBytes <= 8e9 ? 'within' : 'OVER'} the paper's 8 GB`,
);
out.computed = computed;
{
  // the stock SDXL VAE must decode in fp32 (force_upcast); an fp16-safe VAE (madebyollin/sdxl-vae-fp16-fix) decodes in fp16
  const fix = await ledger({ model: 'koala-700m', width: size, height: size, precision: 'fp16', maxBindingBytes: BINDING, vae: 'fp16' });
  const v32 = koala.components.vae_decoder;
  const v16 = fix.components.vae_decoder;
  console.log(
    `KOALA-700M with the fp16-safe VAE (sdxl-vae-fp16-fix, fp16 decode): ${GB(fix.peakBytes)} at its peak (${fix.peakPhase}) instead of ${GB(koala.peakBytes)} — ` +
      `VAE weights ${GB(v16.weights)} vs ${GB(v32.weights)}, decode activations ${GB(v16.activations)} vs ${GB(v32.activations)}`,
  );
  out.fp16FixVae = { peakBytes: fix.peakBytes, peakPhase: fix.peakPhase, vae: v16, stockVae: v32 };
}

// ---- VAE decode at 1024² against adapters' binding limits
console.log(`\nVAE decode at 1024² (fp32; the pipeline bands it at ≤ 128 MiB per tensor on every adapter) vs binding limits:`);
const vaeLimits: Record<string, unknown>[] = [];
for (const [name, limit] of [
  ['128 MiB (WebGPU minimum, lavapipe)', 128 * 2 ** 20],
  ['1 GiB (SwiftShader)', 2 ** 30],
  ['2 GiB (typical laptop GPU)', 2 ** 31],
] as const) {
  const e = await ledger({ model: 'koala-700m', width: 1024, height: 1024, precision: 'fp16', maxBindingBytes: limit });
  const v = e.components.vae_decoder;
  const ok = v.largestTensor <= limit;
  vaeLimits.push({ limit, largestTensor: v.largestTensor, activations: v.activations, ok });
  console.log(
    `  ${name.padEnd(36)} largest tensor ${MiB(v.largestTensor).padStart(8)}, live activations ${GB(v.activations)}: ${ok ? 'fits' : 'DOES NOT FIT'}`,
  );
}
{
  const { buildVaeDecoderGraph } = await import('../workers/model/vae');
  const { synthWeights } = await import('../workers/model/testing/synth');
  const { graphMemory } = await import('../workers/runtime/memory-estimate');
  const cfg = resolve(import.meta.dirname, '../test/fixtures/koala-configs');
  const unbanded = graphMemory(
    buildVaeDecoderGraph(
      JSON.parse(readFileSync(`${cfg}/sdxl-vae.json`, 'utf8')),
      await synthWeights(JSON.parse(readFileSync(`${cfg}/sdxl-vae.keys.json`, 'utf8')), { dtype: 'F32' }),
      {
        batch: 1,
        height: 128,
        width: 128,
        compute: 'float32',
        maxBindingBytes: 2 ** 31,
      },
    ),
  );
  console.log(
    `  (banded only to a 2 GiB limit it would hold ${GB(unbanded.activations)} of activations, largest tensor ${MiB(unbanded.largestTensor)})`,
  );
  out.vaeUnbanded = unbanded;
}
const floor16 = await minBindingBytes({ model: 'koala-700m', width: 1024, height: 1024, precision: 'fp16' });
const floor32 = await minBindingBytes({ model: 'koala-700m', width: 1024, height: 1024, precision: 'fp32' });
console.log(
  `  smallest binding limit any KOALA-700M run at 1024² needs: fp16 ${MiB(floor16)}, fp32 ${MiB(floor32)} (OpenCLIP-bigG's token embedding, bound whole)`,
);
out.vaeLimits = vaeLimits;
out.minBindingBytes = { fp16: floor16, fp32: floor32 };

// ---- measured run next to the computed figure at its size
const measuredFile =
  values.measured ??
  (existsSync('bench-out')
    ? readdirSync('bench-out')
        .filter((f) => /^fullsize-(koala-700m|koala-1b|sdxl-base)-fp16-\d+\.json$/.test(f))
        .map((f) => `bench-out/${f}`)
        .sort((a, b) => Number(/(\d+)\.json$/.exec(b)![1]) - Number(/(\d+)\.json$/.exec(a)![1]))[0]
    : undefined);
if (!measuredFile || !existsSync(measuredFile)) {
  console.log(`\nNo measured run found (run \`npm run bench:fullsize -- --size 256\` first): only computed figures above.`);
} else {
  const run = JSON.parse(readFileSync(measuredFile, 'utf8')) as FullsizeRun;
  const e = await ledger({
    model: run.model as (typeof FULLSIZE_MODELS)[number],
    width: run.size,
    height: run.size,
    precision: 'fp16',
    maxBindingBytes: run.limits.maxStorageBufferBindingSize,
  });
  const ph = Object.fromEntries(e.phases.map((p) => [p.phase, p.bytes]));
  const peakOf = (re: RegExp, key: 'gpuPeakBytes' | 'jsHeapPeakBytes' | 'externalPeakBytes' | 'rssPeakBytes') =>
    Math.max(0, ...run.phases.filter((p) => re.test(p.phase)).map((p) => p[key]));
  console.log(`\nMeasured: ${run.model} fp16 ${run.size}×${run.size} on ${run.adapter} (${measuredFile}); computed for the same size:`);
  console.log(
    `${'phase'.padEnd(26)} ${'GPU measured'.padStart(13)} ${'GPU computed'.padStart(13)} ${'JS heap'.padStart(9)} ${'ext+AB'.padStart(9)} ${'RSS'.padStart(9)}`,
  );
  const rows: [string, RegExp, number | undefined][] = [
    ['weights read + sessions', /^session /, ph['sessions created']],
    ['encode', /^encode$/, ph['encode']],
    ['first step', /^step 1$/, ph['denoise step']],
    ['steady steps', /^steady steps$/, ph['denoise step']],
    ['VAE decode', /^vae decode$/, ph['vae decode']],
  ];
  const table = rows.map(([name, re, comp]) => {
    const r = {
      phase: name,
      gpuMeasured: peakOf(re, 'gpuPeakBytes'),
      gpuComputed: comp,
      jsHeap: peakOf(re, 'jsHeapPeakBytes'),
      external: peakOf(re, 'externalPeakBytes'),
      rss: peakOf(re, 'rssPeakBytes'),
    };
    console.log(
      `${name.padEnd(26)} ${GB(r.gpuMeasured).padStart(13)} ${(comp === undefined ? '-' : GB(comp)).padStart(13)} ${GB(r.jsHeap).padStart(9)} ${GB(r.external).padStart(9)} ${GB(r.rss).padStart(9)}`,
    );
    return r;
  });
  const largestComponent = Math.max(...Object.values(e.components).map((c) => c.weights));
  const externalPeak = Math.max(...run.phases.map((p) => p.externalPeakBytes));
  console.log(
    `JS memory (external + ArrayBuffers) peaked at ${GB(externalPeak)}; the largest component's weights are ${GB(largestComponent)}: ` +
      `${externalPeak <= largestComponent * 1.1 ? 'never more than one component at once' : 'MORE than one component at once'}.`,
  );
  console.log(
    `Peak GPU measured ${GB(run.gpuPeakBytes)} vs computed ${GB(e.peakBytes)} (ratio ${(run.gpuPeakBytes / e.peakBytes).toFixed(2)}); at ${size}² the computed peak scaled by that ratio is ${GB((koala.peakBytes * run.gpuPeakBytes) / e.peakBytes)}.`,
  );
  out.measured = {
    file: measuredFile,
    model: run.model,
    size: run.size,
    adapter: run.adapter,
    table,
    externalPeak,
    largestComponent,
    gpuPeakMeasured: run.gpuPeakBytes,
    gpuPeakComputed: e.peakBytes,
  };
}
mkdirSync('bench-out', { recursive: true });
writeFileSync(resolve('bench-out/memory.json'), JSON.stringify(out, null, 2));
console.log('\n-> bench-out/memory.json');
