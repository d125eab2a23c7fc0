/**
 * Graphs cut into segments that run in wasm instances of their own (worker threads) give the diffusers
 * goldens, and a graph that cannot fit one 4 GiB instance is refused before any weight is read.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import * as ort from 'onnxruntime-web';
import { describe, expect, it } from 'vitest';
import { buildClipTextGraph, type ClipTextConfig } from '../model/clip';
import { openComponent } from '../model/model-dir.node.js';
import { fixtureDir, FIXTURE_NAMES, FIXTURES } from '../model/testing/fixtures.node.js';
import { synthWeights, type KeyList } from '../model/testing/synth';
import { maxAbsDiff, runWasm } from '../model/testing/run-wasm.node.js';
import { buildUnetGraph, type UnetConfig } from '../model/unet';
import { buildVaeDecoderGraph, type VaeConfig } from '../model/vae';
import { caseTag, unetCaseInputs, unetCaseOutput, unetCases } from '../model/unet-goldens.node.js';
import { EngineError } from '../protocol';
import { planWasmSegments, SegmentedSession, segmentHeapNeed, WASM_HEAP_BYTES } from './wasm-instances.node.js';

describe.each(FIXTURE_NAMES.map((f) => [f]))('segmented wasm sessions: %s', (fx) => {
  const c = unetCases(fx)[0]!;

  it(`U-Net ${caseTag(c)} in 5+ segments, each its own wasm instance, matches the goldens <= 1e-4`, async () => {
    const comp = await openComponent(fixtureDir(fx), 'unet');
    const [h, w] = c.latent_hw;
    const graph = buildUnetGraph(comp.config, comp.weights, { batch: c.batch, height: h, width: w, compute: 'float32' });
    const budget = Math.ceil(graph.stats.weightBytes / 6);
    const segments = graph.split!(budget);
    expect(segments.length).toBeGreaterThanOrEqual(5);
    // every weight is loaded by exactly one segment, and each segment stays within the budget
    const total = segments.reduce((a, s) => a + s.graph.stats.weightBytes, 0);
    expect(total).toBe(graph.stats.weightBytes);
    for (const s of segments) expect(s.plan.weightBytes).toBeLessThanOrEqual(budget);
    expect(segments[0]!.plan.inputs.length).toBeGreaterThan(0);
    expect(segments.at(-1)!.plan.outputs).toEqual(['out']);

    const session = await SegmentedSession.create(graph, { label: 'unet', ort, maxWeightBytes: budget });
    try {
      expect(session.segments).toBe(segments.length);
      const res = await runWasm(graph, await unetCaseInputs(fx, c), session as unknown as ort.InferenceSession);
      const ref = await unetCaseOutput(fx, c);
      const err = maxAbsDiff(res.out.data, ref.data);
      console.log(`[wasm-instances] ${fx} U-Net in ${segments.length} segments: max abs err ${err.toExponential(3)}`);
      expect(err).toBeLessThanOrEqual(1e-4);
    } finally {
      await session.release();
    }
  });

  it('text_encoder_2 in segments equals the whole graph exactly', async () => {
    const comp = await openComponent(fixtureDir(fx), 'text_encoder_2');
    const graph = buildClipTextGraph(comp.config as ClipTextConfig, comp.weights, { batch: 1, compute: 'float32', withProjection: true });
    const ids = Array.from({ length: 77 }, (_, i) => (i === 0 ? 49406 : i === 5 ? 49407 : i < 5 ? 320 + i : 0));
    const whole = await runWasm(graph, { input_ids: ids });
    const session = await SegmentedSession.create(graph, { label: 'te2', ort, maxWeightBytes: 1024 });
    try {
      expect(session.segments).toBeGreaterThanOrEqual(3);
      const split = await runWasm(graph, { input_ids: ids }, session as unknown as ort.InferenceSession);
      for (const name of Object.keys(whole)) expect(maxAbsDiff(split[name]!.data, whole[name]!.data)).toBe(0);
    } finally {
      await session.release();
    }
  });
});

describe('wasm memory limit', () => {
  it('a graph that cannot fit 4 GiB fails at once (no weight read) with a message naming the limit', async () => {
    // the full-size SDXL VAE decoder at 4096×4096: tens of GiB of activations (header only, no weight data)
    const keys = JSON.parse(readFileSync(resolve(FIXTURES, 'koala-configs/sdxl-vae.keys.json'), 'utf8')) as KeyList;
    const config = JSON.parse(readFileSync(resolve(FIXTURES, 'koala-configs/sdxl-vae.json'), 'utf8')) as VaeConfig;
    const weights = await synthWeights(keys, { dtype: 'F32' });
    const t0 = performance.now();
    const graph = buildVaeDecoderGraph(config, weights, { batch: 1, height: 512, width: 512, compute: 'float32' });
    let error: unknown;
    try {
      planWasmSegments(graph, 'vae_decoder 1x512x512');
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(EngineError);
    expect((error as EngineError).code).toBe('out-of-memory');
    expect((error as Error).message).toMatch(/vae_decoder 1x512x512 needs about [\d.]+ GiB of wasm memory/);
    expect((error as Error).message).toContain(
      `${(WASM_HEAP_BYTES / 2 ** 30).toFixed(2)} GiB one onnxruntime-web wasm instance can address`,
    );
    expect(performance.now() - t0).toBeLessThan(10_000);
  });

  it('full size at 1024², batch 2: SDXL-base cannot fit one instance and splits into segments that each fit; KOALA-700M fp32 takes 2', async () => {
    for (const [model, count, wholeFits] of [
      ['sdxl-base', 7, false],
      ['koala-700m', 2, true],
    ] as const) {
      const keys = JSON.parse(readFileSync(resolve(FIXTURES, `koala-configs/${model}-unet.keys.json`), 'utf8')) as KeyList;
      const config = JSON.parse(readFileSync(resolve(FIXTURES, `koala-configs/${model}-unet.json`), 'utf8')) as UnetConfig;
      const graph = buildUnetGraph(config, await synthWeights(keys, { dtype: 'F32' }), {
        batch: 2,
        height: 128,
        width: 128,
        compute: 'float32',
      });
      const whole = graph.split!(Infinity)[0]!;
      expect(segmentHeapNeed(whole).bytes < WASM_HEAP_BYTES).toBe(wholeFits);
      const segments = planWasmSegments(graph, `${model} unet 2x128x128`);
      expect(segments.length).toBe(count);
      for (const s of segments) expect(segmentHeapNeed(s).bytes).toBeLessThan(WASM_HEAP_BYTES);
      // every checkpoint tensor is loaded by exactly one segment (only tiny inline constants are repeated)
      expect(segments.reduce((a, s) => a + s.graph.stats.weightBytes, 0)).toBe(graph.stats.weightBytes);
    }
  });
});
