/**
 * src/memory-estimates.json (what the page tells a user about GPU memory) is what the ledger computes now from
 * the app's graphs, for every model and every offered size; and the ledger's arithmetic holds.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { SIZES } from '../src/models';
import { computeEstimate, ESTIMATES_FILE, type MemoryEstimatesFile } from './memory-estimates';
import { ledger } from './bench/memory-ledger';

const file = JSON.parse(readFileSync(ESTIMATES_FILE, 'utf8')) as MemoryEstimatesFile;

describe('GPU memory estimates (src/memory-estimates.json)', () => {
  it('covers every full-size model, both precisions and every non-tiny size', () => {
    const sizes = SIZES.filter((s) => s.group !== 'tiny')
      .map((s) => `${s.width}x${s.height}`)
      .sort();
    for (const m of ['koala-700m', 'koala-1b', 'sdxl-base']) {
      for (const p of ['fp16', 'fp32'] as const) expect(Object.keys(file.models[m]![p]).sort()).toEqual(sizes);
    }
  });

  it.each([
    ['koala-700m', 'fp16', 1024, 1024],
    ['sdxl-base', 'fp32', 768, 1344],
  ] as const)(
    '%s %s %ix%i equals a fresh computation (run `npm run memory:estimates` after changing a graph)',
    async (model, precision, w, h) => {
      expect(file.models[model]![precision][`${w}x${h}`]).toEqual(await computeEstimate(model, precision, w, h));
    },
  );

  it('KOALA-700M fp16 at 1024²: all weights resident (~3.2 GiB), the VAE decode is the peak, within 8 GB', async () => {
    const e = await ledger({ model: 'koala-700m', width: 1024, height: 1024, precision: 'fp16', maxBindingBytes: 128 * 2 ** 20 });
    const weights = Object.values(e.components).reduce((a, c) => a + c.weights, 0);
    // text encoders 123 M + 695 M and the U-Net 783 M parameters in fp16, the VAE decoder's 49.5 M in fp32
    expect(weights).toBeGreaterThan(((123e6 + 695e6 + 783e6) * 2 + 49.5e6 * 4) * 0.99);
    expect(weights).toBeLessThan(((123e6 + 695e6 + 783e6) * 2 + 83.7e6 * 4) * 1.01);
    expect(e.phases[0]!.bytes).toBe(weights);
    expect(e.peakPhase).toBe('vae decode');
    expect(e.peakBytes).toBe(weights + e.components.vae_decoder.activations);
    expect(e.peakBytes).toBeLessThan(8e9);
    for (const c of Object.values(e.components)) expect(c.largestTensor).toBeLessThanOrEqual(128 * 2 ** 20);
  });
});
