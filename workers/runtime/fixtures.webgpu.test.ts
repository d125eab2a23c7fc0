/**
 * The tiny fixture U-Nets through the runtime as the engine uses it: createSession on the WebGPU EP in Node
 * (Dawn/lavapipe) with the strict CPU-fallback check, GPU-resident output read through a ReadbackCounter.
 * fp16 weight files + fp16 compute (the path real users with shader-f16 run): within 2e-2 × max|ref| of the same
 * fp16 weights computed in fp32 (wasm backend), which isolates the fp16 compute error; against the diffusers goldens
 * (fp32 weights) the fp16 weight rounding adds to it: measured up to 2.08e-2 × max|ref| (tiny-koala case1), so that
 * bound is 2.5e-2. fp32 weights + fp32 compute: within 1e-3 of the goldens. (workers/model/*webgpu*.test.ts cover CLIP/VAE and the U-Net against a
 * float64 reference; this file checks the session layer on the biggest graphs we have goldens for.)
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { webgpuSuite } from '../../test/webgpu-node';
import { openComponent } from '../model/model-dir.node.js';
import { FIXTURE_NAMES, fixtureDir, golden } from '../model/testing/fixtures.node.js';
import { buildUnetGraph } from '../model/unet';
import { ort } from './ort';
import { ReadbackCounter } from './readback';
import { createSession } from './session';

const { skip } = await webgpuSuite();

interface UnetCase { index: number; batch: number; latent_hw: [number, number] }
const cases = (fx: string) => (JSON.parse(readFileSync(join(fixtureDir(fx as never), 'goldens', 'cases.json'), 'utf8')) as { unet: UnetCase[] }).unet;
const INPUTS = ['sample', 'timestep', 'encoder_hidden_states', 'text_embeds', 'time_ids'] as const;

function errors(out: Float32Array, ref: Float32Array) {
  let err = 0, max = 0;
  for (let i = 0; i < ref.length; i++) {
    const d = Math.abs(out[i] - ref[i]);
    err = Number.isNaN(d) ? Infinity : Math.max(err, d);
    max = Math.max(max, Math.abs(ref[i]));
  }
  return { err, max };
}

describe.skipIf(skip)('fixture U-Nets on WebGPU through createSession', () => {
  for (const fx of FIXTURE_NAMES) {
    for (const [precision, variant, tol] of [['float16', 'fp16', '2e-2 × max of fp32 compute on the same weights (2.5e-2 × max of the goldens)'], ['float32', undefined, 'abs 1e-3 of the goldens']] as const) {
      it(`${fx} U-Net ${precision} compute (${variant ?? 'fp32'} weights): no CPU node, every case within ${tol}`, async () => {
        const comp = await openComponent(fixtureDir(fx), 'unet', variant);
        for (const c of cases(fx)) {
          const graph = buildUnetGraph(comp.config, comp.weights, { batch: c.batch, height: c.latent_hw[0], width: c.latent_hw[1], compute: precision });
          const s = await createSession(graph, { backend: 'webgpu', name: `unet-${fx}-case${c.index}`, gpuOutputs: true });
          expect(s.cpuNodes).toEqual([]);
          const feeds: Record<string, InstanceType<typeof ort.Tensor>> = {};
          for (const n of INPUTS) {
            const gld = await golden(fx, 'unet.safetensors', `case${c.index}.${n}`);
            feeds[n] = new ort.Tensor('float32', gld.data, graph.inputs.find((i) => i.name === n)!.shape);
          }
          const rb = new ReadbackCounter();
          const t0 = performance.now();
          const r = await s.run(feeds, { readbacks: rb });
          expect(r.out.location).toBe('gpu-buffer');
          const out = Float32Array.from(await rb.read<Float32Array>(r.out, 'out', { release: true }));
          const ms = performance.now() - t0;
          expect(rb.count).toBe(1);
          const ref = (await golden(fx, 'unet.safetensors', `case${c.index}.out`)).data;
          const { err, max } = errors(out, ref);
          let line = `[runtime webgpu] ${fx} unet case${c.index} B=${c.batch} ${c.latent_hw.join('x')} ${precision}: vs goldens max abs err ${err.toExponential(2)} (${(err / max).toExponential(2)} of max|ref| ${max.toFixed(2)})`;
          await s.release();
          if (precision === 'float16') {
            // same fp16 weights, fp32 compute, wasm backend
            const g32 = buildUnetGraph(comp.config, comp.weights, { batch: c.batch, height: c.latent_hw[0], width: c.latent_hw[1], compute: 'float32' });
            const w = await createSession(g32, { backend: 'wasm', name: 'unet-fp32-ref' });
            const same = (await w.run(feeds)).out.data as Float32Array;
            await w.release();
            const e16 = errors(out, same);
            line += `; vs fp32 compute on the same fp16 weights ${e16.err.toExponential(2)} (${(e16.err / e16.max).toExponential(2)} of max)`;
            expect(e16.err).toBeLessThanOrEqual(2e-2 * e16.max);
            expect(err).toBeLessThanOrEqual(2.5e-2 * max);
          } else {
            expect(err).toBeLessThanOrEqual(1e-3);
          }
          console.log(`${line}; session ${s.createMs.toFixed(0)} ms, first run ${ms.toFixed(0)} ms`);
        }
      }, 600_000);
    }
  }
});
