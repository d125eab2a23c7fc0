/**
 * U-Net graphs on onnxruntime-web's wasm backend against the diffusers goldens of both tiny fixtures
 * (every case, including the forward_upsample_size ones): fp32 weights <= 1e-4; fp16 weight files
 * upcast to fp32 compute exact (<= 1e-4) against a float64 reference run on the same fp16 weights, and
 * as close to the fp32 goldens as those weights allow; a graph with forced attention/FF chunking <= 1e-4.
 */
import { describe, expect, it } from 'vitest';
import { openComponent } from './model-dir.node.js';
import { fixtureDir, goldenCases, FIXTURE_NAMES, type FixtureName } from './testing/fixtures.node.js';
import { maxAbsDiff, runWasm } from './testing/run-wasm.node.js';
import { bytesSource, encodeSafetensors, readTensorF32, type TensorToEncode } from './safetensors';
import { buildUnetGraph, unusedWeights, type UnetGraphOptions } from './unet';
import { WeightIndex } from './weights';
import { caseTag, unetCaseInputs, unetCaseOutput, unetCaseReference as reference, unetCases as cases, type UnetCase } from './unet-goldens.node.js';

async function runCase(fx: FixtureName, c: UnetCase, variant: string | undefined, extra: Partial<UnetGraphOptions> = {}) {
  const comp = await openComponent(fixtureDir(fx), 'unet', variant);
  const [h, w] = c.latent_hw;
  const graph = buildUnetGraph(comp.config, comp.weights, { batch: c.batch, height: h, width: w, compute: 'float32', ...extra });
  expect(unusedWeights(graph, comp.weights)).toEqual([]);
  const ref = await unetCaseOutput(fx, c);
  const res = await runWasm(graph, await unetCaseInputs(fx, c));
  expect(res.out.dims).toEqual(ref.shape);
  return { err: maxAbsDiff(res.out.data, ref.data), out: res.out.data, ref: ref.data, comp, graph };
}

describe.each(FIXTURE_NAMES.map((f) => [f]))('U-Net vs diffusers goldens: %s', (fx) => {
  it('golden file has every case of cases.json', async () => {
    expect((await goldenCases(fx, 'unet.safetensors')).length).toBe(cases(fx).length);
    expect(cases(fx).some((c) => c.forward_upsample_size)).toBe(true);
  });

  for (const c of cases(fx)) {
    const tag = caseTag(c);
    it(`${tag}: fp32 weights, fp32 compute <= 1e-4`, async () => {
      const { err } = await runCase(fx, c, undefined);
      console.log(`[unet] ${fx} ${tag} fp32 max abs err ${err.toExponential(3)}`);
      expect(err).toBeLessThanOrEqual(1e-4);
    });
    it(`${tag}: fp16 weight file upcast to fp32 compute: exact vs float64 on the same weights, near the fp32 goldens`, async () => {
      const { err, out, ref, comp } = await runCase(fx, c, 'fp16');
      const ref64 = await reference(fx, c, comp.config, comp.weights);
      const exact = maxAbsDiff(out, ref64);
      const inherent = maxAbsDiff(ref64, ref);
      console.log(`[unet] ${fx} ${tag} fp16-weights: vs goldens ${err.toExponential(3)}, vs float64 reference with the same fp16 weights ${exact.toExponential(3)} (the reference itself is ${inherent.toExponential(3)} from the goldens)`);
      expect(exact).toBeLessThanOrEqual(1e-4);
      // rounding the weights to fp16 alone moves the tiny KOALA U-Net's output by up to 2.3e-2 (see the
      // reference line above): the graph cannot be closer to the fp32 goldens than the weights allow.
      expect(err).toBeLessThanOrEqual(Math.max(1e-2, inherent * 1.05));
      expect(err).toBeLessThanOrEqual(3e-2);
    });
    it(`${tag}: the float64 reference itself matches the fp32 goldens <= 1e-4`, async () => {
      const comp = await openComponent(fixtureDir(fx), 'unet');
      const ref64 = await reference(fx, c, comp.config, comp.weights);
      const err = maxAbsDiff(ref64, (await unetCaseOutput(fx, c)).data);
      console.log(`[unet] ${fx} ${tag} float64 reference vs goldens ${err.toExponential(3)}`);
      expect(err).toBeLessThanOrEqual(1e-4);
    });
  }

  it('forced chunking (tiny maxBindingBytes) splits attention and feed-forward and still matches <= 1e-4', async () => {
    const c = cases(fx)[1];
    const maxBindingBytes = 512;
    const { err, graph } = await runCase(fx, c, undefined, { maxBindingBytes });
    console.log(`[unet] ${fx} chunked case${c.index} max abs err ${err.toExponential(3)}; ${graph.stats.opCounts.Split ?? 0} Split nodes`);
    expect(err).toBeLessThanOrEqual(1e-4);
    const scores = graph.report.attentionScores;
    expect(scores.length).toBeGreaterThan(0);
    // chunked: more score MatMuls than attention modules would give unchunked
    const comp = await openComponent(fixtureDir(fx), 'unet');
    const unchunked = buildUnetGraph(comp.config, comp.weights, {
      batch: c.batch, height: c.latent_hw[0], width: c.latent_hw[1], compute: 'float32',
    });
    expect(scores.length).toBeGreaterThan(unchunked.report.attentionScores.length);
    expect(graph.stats.opCounts.Split).toBeGreaterThan(unchunked.stats.opCounts.Split ?? 0);
    // feed-forward chunking: more GEGLU/output Gemms (attention chunking adds none)
    expect(graph.stats.opCounts.Gemm).toBeGreaterThan(unchunked.stats.opCounts.Gemm);
    // every chunk fits, or is down to a single query row (one row can exceed a 512-byte limit)
    for (const s of scores) expect(s.bytes <= maxBindingBytes || s.shape[2] === 1).toBe(true);
  });
});

describe('U-Net with the fused kernels the CPU backend runs (wasm)', () => {
  // what the CLI's wasm self-test keeps: com.microsoft Gelu, QuickGelu as SiLU, SkipLayerNormalization, MultiHeadAttention
  const fused = { gelu: true, silu: true, skipLayerNorm: true, mha: true };
  for (const fx of FIXTURE_NAMES) {
    it(`${fx}: every case matches the goldens <= 1e-4 with ${Object.keys(fused).length} fused kernels, and the graph uses them`, async () => {
      for (const c of cases(fx)) {
        const { err, graph } = await runCase(fx, c, undefined, { fused });
        const plain = buildUnetGraph((await openComponent(fixtureDir(fx), 'unet')).config, (await openComponent(fixtureDir(fx), 'unet')).weights, {
          batch: c.batch, height: c.latent_hw[0], width: c.latent_hw[1], compute: 'float32',
        });
        const ops = graph.stats.opCounts;
        console.log(`[unet] ${fx} ${caseTag(c)} fused: max abs err ${err.toExponential(3)}; nodes ${plain.stats.nodes} → ${graph.stats.nodes}`);
        expect(err).toBeLessThanOrEqual(1e-4);
        expect(ops.Erf ?? 0).toBe(0);
        expect(ops.Sigmoid ?? 0).toBe(0);
        expect(ops.Softmax ?? 0).toBe(0);
        expect(ops.Gelu).toBe(plain.stats.opCounts.Erf);
        expect(ops.QuickGelu).toBe(plain.stats.opCounts.Sigmoid);
        expect(ops.MultiHeadAttention).toBe(plain.stats.opCounts.Softmax);
        expect(ops.SkipLayerNormalization).toBe((2 / 3) * plain.stats.opCounts.LayerNormalization!);
        // the softmax scale rides on the q Gemm: no attention Mul left, the same FLOPs counted
        expect(graph.report.flops).toBe(plain.report.flops);
      }
    });
  }
  it('BiasSplitGelu (the GEGLU tail) builds as one node per feed-forward with the projection bias moved into it', async () => {
    const comp = await openComponent(fixtureDir('tiny-koala'), 'unet');
    const opts = { batch: 2, height: 8, width: 8, compute: 'float32' as const };
    const plain = buildUnetGraph(comp.config, comp.weights, opts);
    const graph = buildUnetGraph(comp.config, comp.weights, { ...opts, fused: { biasSplitGelu: true } });
    expect(graph.stats.opCounts.BiasSplitGelu).toBe(plain.stats.opCounts.Erf);
    expect(graph.stats.opCounts.Erf ?? 0).toBe(0);
    expect(unusedWeights(graph, comp.weights)).toEqual([]);
  });
});

describe('U-Net variants that the fixtures do not use directly', () => {
  const fx: FixtureName = 'tiny-sdxl';
  const c = cases(fx)[1]; // batch 2

  it('timestep of shape [B] (perSampleTimestep) gives the same output as a shared [1] timestep', async () => {
    const comp = await openComponent(fixtureDir(fx), 'unet');
    const graph = buildUnetGraph(comp.config, comp.weights, { batch: 2, height: c.latent_hw[0], width: c.latent_hw[1], compute: 'float32', perSampleTimestep: true });
    expect(graph.inputs.find((i) => i.name === 'timestep')!.shape).toEqual([2]);
    const feeds = await unetCaseInputs(fx, c);
    const t = feeds.timestep[0];
    const res = await runWasm(graph, { ...feeds, timestep: [t, t] });
    const err = maxAbsDiff(res.out.data, (await unetCaseOutput(fx, c)).data);
    console.log(`[unet] ${fx} case1 with timestep [B]: max abs err ${err.toExponential(3)}`);
    expect(err).toBeLessThanOrEqual(1e-4);
  });

  it('use_linear_projection false: proj_in/proj_out as 1x1 convs (same weights reshaped) match the goldens', async () => {
    const comp = await openComponent(fixtureDir(fx), 'unet');
    const tensors: Record<string, TensorToEncode> = {};
    for (const n of comp.weights.names()) {
      const { info, file } = comp.weights.get(n)!;
      const conv = /\.proj_(in|out)\.weight$/.test(n);
      tensors[n] = { dtype: 'F32', shape: conv ? [...info.shape, 1, 1] : info.shape, data: await readTensorF32(file, n) };
    }
    const weights = await WeightIndex.open([bytesSource(encodeSafetensors(tensors), 'conv-proj.safetensors')]);
    const graph = buildUnetGraph({ ...comp.config, use_linear_projection: false }, weights, { batch: 2, height: c.latent_hw[0], width: c.latent_hw[1], compute: 'float32' });
    expect(unusedWeights(graph, weights)).toEqual([]);
    const res = await runWasm(graph, await unetCaseInputs(fx, c));
    const err = maxAbsDiff(res.out.data, (await unetCaseOutput(fx, c)).data);
    console.log(`[unet] ${fx} case1 with conv proj_in/proj_out: max abs err ${err.toExponential(3)}`);
    expect(err).toBeLessThanOrEqual(1e-4);
    // the linear-projection checkpoint does not fit a conv-projection config
    expect(() => buildUnetGraph({ ...comp.config, use_linear_projection: false }, comp.weights, { batch: 1, height: 8, width: 8, compute: 'float32' }))
      .toThrow(/tensor "down_blocks\.1\.attentions\.0\.proj_in\.weight" has shape \[16,16\], expected \[16,16,1,1\]/);
  });
});
