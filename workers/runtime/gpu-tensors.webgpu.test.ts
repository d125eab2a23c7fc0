/**
 * Runtime on WebGPU in Node (Dawn over Mesa lavapipe, test/webgpu-node.ts): sessions from BuiltGraphs,
 * the CPU-fallback check, helper graphs vs CPU math, and a GPU-resident 3-step loop that reads back once.
 */
import { describe, expect, it } from 'vitest';
import { webgpuSuite } from '../../test/webgpu-node';
import { GraphBuilder } from '../model/graph';
import { WeightIndex } from '../model/weights';
import { EngineError } from '../protocol';
import { buildCfgCombineGraph, buildConcatBatchGraph, buildScaleInputGraph, buildStepGraph, type LatentShape } from './helper-graphs';
import { disposeAll, LatentOps, uploadF32 } from './gpu-tensors';
import { ort } from './ort';
import { ReadbackCounter } from './readback';
import { createSession, type Backend } from './session';

const { skip } = await webgpuSuite();

/** Deterministic pseudo-random values in [-2, 2). */
function values(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s / 2 ** 32) * 4 - 2;
  });
}

const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]) || (Number.isNaN(a[i] - b[i]) ? Infinity : 0));
  return m;
};

const shape: LatentShape = { batch: 2, channels: 4, height: 6, width: 5 };
const n = shape.batch * shape.channels * shape.height * shape.width;
const dims = [shape.batch, shape.channels, shape.height, shape.width];
const dims2 = [2 * shape.batch, shape.channels, shape.height, shape.width];

/** CPU reference of the fused CFG step. */
function refStep(sample: Float32Array, noisePred: Float32Array, g: number, prevX0: Float32Array, noise: Float32Array, c: Float32Array) {
  const prev = new Float64Array(n);
  const x0 = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const u = noisePred[i], t = noisePred[i + n];
    const eps = u + g * (t - u);
    prev[i] = c[0] * sample[i] + c[1] * eps + c[2] * prevX0[i] + c[3] * noise[i];
    x0[i] = c[4] * sample[i] + c[5] * eps;
  }
  return { prev, x0 };
}

describe.skipIf(skip)('runtime on WebGPU (Node, Dawn)', () => {
  for (const backend of ['webgpu', 'wasm'] as Backend[]) {
    it(`${backend}: helper graphs equal CPU math (CFG combine, step, scale_model_input, concat)`, async () => {
      const gpu = backend === 'webgpu';
      const sample = values(n, 1), noisePred = values(2 * n, 2), prevX0 = values(n, 3), noise = values(n, 4);
      const coeffs = Float32Array.from([0.97, -0.31, 0.12, 0.05, 1.01, -0.7]);
      const t = (d: Float32Array, shp: number[]) => new ort.Tensor('float32', d, shp);
      const rb = new ReadbackCounter();
      const read = async (x: import('./ort').OrtTensor) => Float32Array.from((await rb.read<Float32Array>(x, 'test')) as Float32Array);

      const step = await createSession(buildStepGraph(shape, { cfg: true }), { backend, gpuOutputs: gpu, name: 'cfg_step' });
      const r = await step.run({ sample: t(sample, dims), noise_pred: t(noisePred, dims2), guidance: t(new Float32Array([7.5]), [1]), prev_x0: t(prevX0, dims), noise: t(noise, dims), coefficients: t(coeffs, [6]) });
      if (gpu) expect(r.prev_sample.location).toBe('gpu-buffer');
      const ref = refStep(sample, noisePred, 7.5, prevX0, noise, coeffs);
      expect(maxAbsDiff(await read(r.prev_sample), ref.prev)).toBeLessThanOrEqual(1e-5);
      expect(maxAbsDiff(await read(r.x0), ref.x0)).toBeLessThanOrEqual(1e-5);

      const plain = await createSession(buildStepGraph(shape, { cfg: false }), { backend, gpuOutputs: gpu });
      const eps = noisePred.subarray(0, n);
      const r2 = await plain.run({ sample: t(sample, dims), model_output: t(Float32Array.from(eps), dims), prev_x0: t(prevX0, dims), noise: t(noise, dims), coefficients: t(coeffs, [6]) });
      const ref2 = refStep(sample, Float32Array.from([...eps, ...eps]), 1, prevX0, noise, coeffs);
      expect(maxAbsDiff(await read(r2.prev_sample), ref2.prev)).toBeLessThanOrEqual(1e-5);

      const cfg = await createSession(buildCfgCombineGraph(shape), { backend, gpuOutputs: gpu });
      const r3 = await cfg.run({ noise_pred: t(noisePred, dims2), guidance: t(new Float32Array([3.5]), [1]) });
      const ref3 = Array.from({ length: n }, (_, i) => noisePred[i] + 3.5 * (noisePred[i + n] - noisePred[i]));
      expect(maxAbsDiff(await read(r3.model_output), ref3)).toBeLessThanOrEqual(1e-5);

      const sc = await createSession(buildScaleInputGraph(shape, { cfg: true }), { backend, gpuOutputs: gpu });
      const r4 = await sc.run({ sample: t(sample, dims), scale: t(new Float32Array([1 / Math.sqrt(14.6146 ** 2 + 1)]), [1]) });
      expect(r4.model_input.dims).toEqual(dims2);
      const s = 1 / Math.sqrt(14.6146 ** 2 + 1);
      const ref4 = [...sample, ...sample].map((v) => v * s);
      expect(maxAbsDiff(await read(r4.model_input), ref4)).toBeLessThanOrEqual(1e-6);

      const cat = await createSession(buildConcatBatchGraph(shape), { backend, gpuOutputs: gpu });
      const r5 = await cat.run({ sample: t(sample, dims) });
      expect(maxAbsDiff(await read(r5.batch2), [...sample, ...sample])).toBe(0);

      expect(rb.count).toBe(gpu ? 6 : 0);
      for (const x of [r, r2, r3, r4, r5]) disposeAll(...Object.values(x));
      await Promise.all([step, plain, cfg, sc, cat].map((x) => x.release()));
    });
  }

  it('a 3-step loop with GPU-resident tensors reads back once (the final latents), and matches the CPU loop', async () => {
    // A stand-in "U-Net" with the real I/O contract: sample [2B,…] -> noise_pred [2B,…] (tanh(w·x + b)).
    const g = new GraphBuilder({ name: 'fake_unet', weights: new WeightIndex([]), compute: 'float16' });
    const x = g.input('sample', 'float32', dims2);
    const y = g.op1('Tanh', [g.op1('Add', [g.op1('Mul', [g.toCompute(x), g.constFloat([0.8], [1])]), g.constFloat([0.1], [1])])]);
    g.output(y, 'noise_pred');
    const fakeUnet = g.build();

    const init = values(n, 9);
    const noises = [values(n, 10), values(n, 11), values(n, 12)];
    const coeffs = [0, 1, 2].map((i) => Float32Array.from([1 - 0.1 * i, -0.3, 0.05 * i, 0.02, 1, -0.5]));
    const scales = [0.07, 0.2, 0.6];

    async function loop(backend: Backend) {
      const rb = new ReadbackCounter();
      const unet = await createSession(fakeUnet, { backend, gpuOutputs: backend === 'webgpu', name: 'fake_unet' });
      const ops = await LatentOps.create(backend, shape, { cfg: true });
      let sample = await uploadF32(backend, Float32Array.from(init), dims);
      let prevX0: import('./ort').OrtTensor | undefined;
      for (let i = 0; i < 3; i++) {
        const input = await ops.modelInput(sample, scales[i]);
        const out = await unet.run({ sample: input }, { readbacks: rb });
        const noise = await uploadF32(backend, noises[i], dims);
        const { prev, x0 } = await ops.step({ sample, modelOutput: out.noise_pred, coefficients: coeffs[i], guidance: 5, noise, prevX0 });
        disposeAll(input, out.noise_pred, noise, sample, prevX0);
        sample = prev;
        prevX0 = x0;
      }
      const final = Float32Array.from(await rb.read<Float32Array>(sample, 'final latents', { release: true }));
      disposeAll(prevX0);
      await ops.release();
      await unet.release();
      return { final, rb };
    }

    const gpu = await loop('webgpu');
    expect(gpu.rb.count).toBe(1);
    expect(gpu.rb.log).toEqual([{ what: 'final latents', bytes: n * 4 }]);
    const cpu = await loop('wasm');
    expect(cpu.rb.count).toBe(0);
    // fp16 "U-Net" on both backends; the step arithmetic is fp32
    const err = maxAbsDiff(gpu.final, cpu.final);
    console.log(`3-step GPU loop vs wasm loop: max abs diff ${err.toExponential(2)}; readbacks ${gpu.rb.count}`);
    expect(err).toBeLessThanOrEqual(2e-3);
  });

  it('a WebGPU output left on the CPU is counted as a readback', async () => {
    const rb = new ReadbackCounter();
    const s = await createSession(buildConcatBatchGraph(shape), { backend: 'webgpu', name: 'concat' });
    const r = await s.run({ sample: new ort.Tensor('float32', values(n, 1), dims) }, { readbacks: rb });
    expect(r.batch2.location).toBe('cpu');
    expect(rb.log).toEqual([{ what: 'concat.batch2', bytes: 2 * n * 4 }]);
    await s.release();
  });

  it('placement: strict refuses a graph with a CPU-only node and names it; report mode lists it', async () => {
    const g = new GraphBuilder({ name: 'det', weights: new WeightIndex([]), compute: 'float32' });
    const m = g.input('m', 'float32', [2, 2]);
    const soft = g.op1('Softmax', [m], { axis: -1 });
    const det = { ...g.op1('Det', [soft], {}, { name: 'determinant' }), shape: [] }; // (no shape inference for Det)
    g.output(g.op1('Mul', [det, det]), 'out');
    const graph = g.build();
    let err: unknown;
    try {
      await createSession(graph, { backend: 'webgpu', name: 'det-graph' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(EngineError);
    expect((err as EngineError).message).toBe('det-graph: 1 node(s) would run on the CPU instead of WebGPU: Det (graph/determinant)');

    const rep = await createSession(graph, { backend: 'webgpu', placement: 'report' });
    expect(rep.cpuNodes).toEqual(['Det (graph/determinant)']);
    const out = await rep.run({ m: new ort.Tensor('float32', new Float32Array([1, 2, 3, 5]), [2, 2]) });
    const a = Math.exp(1) / (Math.exp(1) + Math.exp(2)), b = Math.exp(3) / (Math.exp(3) + Math.exp(5));
    const d = a * (1 - b) - (1 - a) * b;
    expect((out.out.data as Float32Array)[0]).toBeCloseTo(d * d, 6);
    await rep.release();

    const allowed = await createSession(graph, { backend: 'webgpu', allowCpu: [/^Det /] });
    expect(allowed.cpuNodes).toEqual(['Det (graph/determinant)']);
    await allowed.release();
  });

  it('strict placement passes a pure-GPU graph; shape mismatches are specific errors', async () => {
    const s = await createSession(buildCfgCombineGraph(shape), { backend: 'webgpu' });
    expect(s.cpuNodes).toEqual([]);
    await expect(s.run({ noise_pred: new ort.Tensor('float32', new Float32Array(n), dims), guidance: new ort.Tensor('float32', new Float32Array(1), [1]) })).rejects.toThrow(
      'model_output: input "noise_pred" has shape [2,4,6,5], the graph expects [4,4,6,5]',
    );
    await s.release();
  });
});
