/**
 * Fused kernels chosen by the per-adapter self-test (runtime/fused-ops-probe.ts) on WebGPU in Node (Dawn over
 * lavapipe), fp32 and fp16: the probe's verdicts, then the tiny KOALA's pipeline with the chosen kernels
 * against the same pipeline without them — final latents within 1e-5 (fp32) / 2e-3 (fp16) of their magnitude,
 * the decoded image within the diffusers-golden tolerance of sdxl-pipeline.webgpu.test.ts — and fewer kernel
 * launches (bind groups) per step.
 */
import { describe, expect, it } from 'vitest';
import { webgpuSuite } from '../../test/webgpu-node';
import { localRepoFromDir } from '../hub/node.node.js';
import { fixtureDir, golden } from '../model/testing/fixtures.node.js';
import { GpuLedger } from '../runtime/gpu-ledger';
import { BlobRegistry } from './ort-backend';
import { openSdxlModel } from './sdxl-model';
import { fusedProbeShapes, SdxlPipeline, type PipelineRequest } from './sdxl-pipeline';

const { skip } = await webgpuSuite();
const ledger = new GpuLedger();
if (!skip) ledger.instrumentGpu(navigator.gpu);
const ort = skip ? undefined : await import('onnxruntime-web/webgpu');
if (ort) ort.env.wasm.numThreads = 1;
const webgpu = skip ? undefined : await import('../runtime/webgpu-backend');
const probe = skip ? undefined : await import('../runtime/fused-ops-webgpu');

const FILE = 'pipeline_koala_lightning_euler_trailing_cfg3.5_10steps_64x48.safetensors';

describe.skipIf(skip)('fused kernels chosen by self-test (WebGPU, Node)', () => {
  for (const precision of ['fp32', 'fp16'] as const) {
    it(`${precision}: the chosen kernels keep the pipeline's result and cut kernel launches`, { timeout: 600_000 }, async () => {
      const make = async (fused: boolean) => {
        const blobs = new BlobRegistry();
        const model = await openSdxlModel(await localRepoFromDir(fixtureDir('tiny-koala'), { variant: null }), blobs);
        const p = fused ? await probe!.probeFusedOpsWebgpu(precision === 'fp16' ? 'float16' : 'float32', fusedProbeShapes(model.unet.weights)) : undefined;
        const backend = webgpu!.createWebgpuBackend(blobs);
        return { pipe: new SdxlPipeline(model, backend, { precision, fused: p?.ops }), probe: p };
      };
      const plain = await make(false);
      const fused = await make(true);
      console.log(`fused ops ${precision}: ${JSON.stringify(fused.probe!.report)} (self-test ${fused.probe!.ms.toFixed(0)} ms)`);
      expect(fused.probe!.ops.gelu || fused.probe!.ops.biasSplitGelu).toBe(true);
      const req: PipelineRequest = {
        prompts: ['a koala bear eating eucalyptus leaves'], negativePrompts: ['worst quality, low quality, illustration, low resolution'], promptStyle: 'plain',
        numImagesPerPrompt: 1, steps: 10, guidance: 3.5, scheduler: 'euler', timestepSpacing: 'trailing', width: 48, height: 64, seed: 0,
        latents: (await golden('tiny-koala', FILE, 'latents_init')).data, dump: true,
      };
      const run = async (p: SdxlPipeline) => {
        const at: number[] = [];
        const d = await p.generate({ ...req, onStep: () => at.push(ledger.bindGroups) });
        return { d, groupsPerStep: (at.at(-1)! - at[0]!) / (at.length - 1) };
      };
      try {
        const a = await run(plain.pipe);
        const b = await run(fused.pipe);
        const la = a.d.dump!['latents']!.data;
        const lb = b.d.dump!['latents']!.data;
        let diff = 0;
        let mag = 0;
        for (let i = 0; i < la.length; i++) {
          diff = Math.max(diff, Math.abs(la[i]! - lb[i]!));
          mag = Math.max(mag, Math.abs(la[i]!));
        }
        const ref = await golden('tiny-koala', FILE, 'image');
        let err = 0;
        const rgba = b.d.images[0]!.rgba;
        for (let p = 0; p < 48 * 64; p++) for (let c = 0; c < 3; c++) err = Math.max(err, Math.abs(rgba[p * 4 + c]! / 255 - ref.data[p * 3 + c]!));
        console.log(`fused ops ${precision}: latents rel diff ${(diff / mag).toExponential(2)}; image vs golden ${err.toFixed(4)}; kernel launches per step ${a.groupsPerStep} → ${b.groupsPerStep}`);
        expect(diff / mag).toBeLessThanOrEqual(precision === 'fp32' ? 1e-5 : 2e-3);
        expect(err).toBeLessThanOrEqual(precision === 'fp32' ? 1e-2 : 5e-2);
        expect(b.groupsPerStep).toBeLessThan(a.groupsPerStep);
      } finally {
        await plain.pipe.release();
        await fused.pipe.release();
      }
    });
  }
});
