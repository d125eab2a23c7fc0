/**
 * `npm run memory:estimates`: writes src/memory-estimates.json, the GPU memory the page tells a user a model
 * needs at each offered size before anything is downloaded. Each figure is the peak of the computed ledger
 * (scripts/bench/memory-ledger.ts → workers/runtime/memory-estimate.ts: every session's weights resident, plus
 * the live activations of the phase that needs most), for CFG (U-Net batch 2), with attention, feed-forward
 * and VAE bands cut to a 128 MiB binding limit; and `minBindingBytes`, the smallest maxStorageBufferBindingSize
 * / maxBufferSize the request can run with (memory-ledger.ts minBindingBytes). scripts/memory-estimates.test.ts checks the file against a
 * fresh computation, so it cannot drift from the graphs.
 */
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { ledger, minBindingBytes } from './bench/memory-ledger';
import { FULLSIZE_MODELS } from './fullsize/checkpoint';
import { SIZES } from '../src/models';

export const ESTIMATE_BINDING_BYTES = 128 * 2 ** 20;
export const ESTIMATES_FILE = resolve(import.meta.dirname, '../src/memory-estimates.json');

export interface MemoryEstimatesFile {
  about: string;
  maxBindingBytes: number;
  /** model → precision → "WxH" → peak bytes, the phase that peaks, the smallest binding limit that works */
  models: Record<string, Record<'fp16' | 'fp32', Record<string, { bytes: number; phase: string; minBindingBytes: number }>>>;
}

export async function computeEstimate(model: (typeof FULLSIZE_MODELS)[number], precision: 'fp16' | 'fp32', width: number, height: number) {
  const e = await ledger({ model, width, height, precision, maxBindingBytes: ESTIMATE_BINDING_BYTES });
  return { bytes: e.peakBytes, phase: e.peakPhase, minBindingBytes: await minBindingBytes({ model, width, height, precision }) };
}

export async function computeEstimatesFile(): Promise<MemoryEstimatesFile> {
  const out: MemoryEstimatesFile = {
    about: "GPU bytes a generation needs (CFG), computed from the app's graphs by `npm run memory:estimates`; do not edit.",
    maxBindingBytes: ESTIMATE_BINDING_BYTES,
    models: {},
  };
  for (const model of FULLSIZE_MODELS) {
    out.models[model] = { fp16: {}, fp32: {} };
    for (const precision of ['fp16', 'fp32'] as const) {
      for (const s of SIZES.filter((x) => x.group !== 'tiny')) {
        out.models[model]![precision][`${s.width}x${s.height}`] = await computeEstimate(model, precision, s.width, s.height);
      }
    }
  }
  return out;
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(import.meta.filename)) {
  const t0 = performance.now();
  const file = await computeEstimatesFile();
  writeFileSync(ESTIMATES_FILE, JSON.stringify(file, null, 2) + '\n');
  console.log(`wrote ${ESTIMATES_FILE} in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  for (const [m, byP] of Object.entries(file.models)) {
    console.log(
      `${m}: fp16 1024x1024 ${(byP.fp16['1024x1024']!.bytes / 1e9).toFixed(2)} GB, fp32 ${(byP.fp32['1024x1024']!.bytes / 1e9).toFixed(2)} GB`,
    );
  }
}
