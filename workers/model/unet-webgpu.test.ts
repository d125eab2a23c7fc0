/**
 * The tiny U-Nets on onnxruntime-web's native WebGPU EP in Node (Dawn over Mesa lavapipe, which has
 * shader-f16), every golden case:
 * - fp16 COMPUTE with the fp16 weight files (the path real users run): within 2e-2 x max|ref| of a
 *   float64 reference run on the same fp16 weights (fp16 arithmetic error), and within that plus the
 *   weight-rounding deviation (reference vs goldens, up to 2.3e-2 abs on tiny-koala) of the goldens;
 * - fp32 compute within 1e-3 of the goldens.
 * Skipped loudly without an f16 adapter (a failure with CI set: see test/webgpu-node.ts).
 */
import v8 from 'node:v8';
import { describe, expect, it } from 'vitest';
import { webgpuSuite } from '../../test/webgpu-node';
import { openComponent } from './model-dir.node.js';
import { externalDataFor, maxAbsDiff } from './testing/run-wasm.node.js';
import { fixtureDir, FIXTURE_NAMES, type FixtureName } from './testing/fixtures.node.js';
import { buildUnetGraph } from './unet';
import { caseTag, maxAbs, unetCaseInputs, unetCaseOutput, unetCaseReference, unetCases, type UnetCase } from './unet-goldens.node.js';

// ORT's WebGPU wasm takes minutes to tier up with TurboFan on 2 cores; the baseline compiler starts at once
v8.setFlagsFromString('--liftoff-only');
const { skip } = await webgpuSuite();
const ort = skip ? undefined : await import('onnxruntime-web/webgpu');

async function runWebGpu(fx: FixtureName, c: UnetCase, compute: 'float16' | 'float32', variant?: string) {
  const comp = await openComponent(fixtureDir(fx), 'unet', variant);
  const graph = buildUnetGraph(comp.config, comp.weights, { batch: c.batch, height: c.latent_hw[0], width: c.latent_hw[1], compute });
  const session = await ort!.InferenceSession.create(graph.model, {
    executionProviders: ['webgpu'],
    externalData: await externalDataFor(graph.externalData),
    graphOptimizationLevel: 'all',
  });
  try {
    const inputs = await unetCaseInputs(fx, c);
    const feeds: Record<string, import('onnxruntime-web').Tensor> = {};
    for (const i of graph.inputs) feeds[i.name] = new ort!.Tensor('float32', inputs[i.name], i.shape);
    const out = (await session.run(feeds)).out.data as Float32Array;
    return { out, comp };
  } finally {
    await session.release();
  }
}

describe.skipIf(skip)('U-Net on the native WebGPU EP (Node, Dawn)', { timeout: 600_000 }, () => {
  for (const fx of FIXTURE_NAMES) {
    for (const c of unetCases(fx)) {
      const tag = `${fx} ${caseTag(c)}`;
      it(`${tag}: fp16 compute, fp16 weights`, async () => {
        const { out, comp } = await runWebGpu(fx, c, 'float16', 'fp16');
        const ref = (await unetCaseOutput(fx, c)).data;
        const ref64 = await unetCaseReference(fx, c, comp.config, comp.weights);
        const m = maxAbs(ref);
        const vsGolden = maxAbsDiff(out, ref), vsRef64 = maxAbsDiff(out, ref64), weightRounding = maxAbsDiff(ref64, ref);
        console.log(`[unet/webgpu] ${tag} fp16 compute: vs goldens ${vsGolden.toExponential(3)} (${(vsGolden / m).toExponential(2)} x max|ref| ${m.toFixed(2)}); vs float64 on the same fp16 weights ${vsRef64.toExponential(3)} (${(vsRef64 / m).toExponential(2)} x); fp16 weight rounding alone ${weightRounding.toExponential(3)}`);
        expect(out.every(Number.isFinite)).toBe(true);
        expect(vsRef64).toBeLessThanOrEqual(2e-2 * m);
        expect(vsGolden).toBeLessThanOrEqual(2e-2 * m + weightRounding);
      });
      it(`${tag}: fp32 compute within 1e-3 of the goldens`, async () => {
        const { out } = await runWebGpu(fx, c, 'float32');
        const err = maxAbsDiff(out, (await unetCaseOutput(fx, c)).data);
        console.log(`[unet/webgpu] ${tag} fp32 compute: max abs err ${err.toExponential(3)}`);
        expect(err).toBeLessThanOrEqual(1e-3);
      });
    }
  }
});
