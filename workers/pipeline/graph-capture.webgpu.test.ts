/**
 * The denoising loop under onnxruntime graph capture (PipelineOptions.graphCapture) on WebGPU in Node (Dawn
 * over lavapipe): the captured U-Net replays recorded command buffers over fixed input/output buffers that
 * the loop-input and step graphs rewrite. Against the same pipeline without capture, on the tiny KOALA:
 * - the final latents agree to 1e-5 of their magnitude (the same kernels, in the same order), fp32 and fp16;
 * - a second generation on the same captured session (other prompt, seed, guidance and step count) agrees
 *   too — the fixed buffers are refilled, not left from the first;
 * - an ancestral sampler (per-step noise) and 4-channel inpainting (the blend inputs) agree;
 * - no GPU→CPU read happens between the first and the last step, and the U-Net creates no bind group after
 *   its first steps (a replay reuses the recorded ones; the plain loop makes one per kernel launch).
 * The uncaptured pipeline itself is checked against the diffusers goldens in sdxl-pipeline.webgpu.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { webgpuSuite } from '../../test/webgpu-node';
import { localRepoFromDir } from '../hub/node.node.js';
import { fixtureDir, FIXTURES, golden, type FixtureName } from '../model/testing/fixtures.node.js';
import { readSafetensorsHeader, readTensorF32 } from '../model/safetensors';
import { fileSource } from '../model/safetensors.node.js';
import { BlobRegistry } from './ort-backend';
import { openSdxlModel } from './sdxl-model';
import { SdxlPipeline, type PipelineRequest } from './sdxl-pipeline';
import { GpuLedger } from '../runtime/gpu-ledger';

const { skip } = await webgpuSuite();
// counts bind groups: onnxruntime creates one per kernel launch, a replayed run none
const ledger = new GpuLedger();
if (!skip) ledger.instrumentGpu(navigator.gpu);
const ort = skip ? undefined : await import('onnxruntime-web/webgpu');
if (ort) ort.env.wasm.numThreads = 1;
const webgpu = skip ? undefined : await import('../runtime/webgpu-backend');

const FILE = 'pipeline_koala_lightning_euler_trailing_cfg3.5_10steps_64x48.safetensors';
const REL = 1e-5;

async function pipelines(fixture: FixtureName, precision: 'fp16' | 'fp32') {
  const make = async (graphCapture: boolean) => {
    const blobs = new BlobRegistry();
    const model = await openSdxlModel(await localRepoFromDir(fixtureDir(fixture), { variant: null }), blobs);
    const backend = webgpu!.createWebgpuBackend(blobs);
    return { pipe: new SdxlPipeline(model, backend, { precision, graphCapture }), backend };
  };
  return { plain: await make(false), captured: await make(true) };
}

/** Final latents, and the GPU→CPU reads and bind groups made per step between the first and the last step. */
async function run(p: { pipe: SdxlPipeline; backend: { readbacks: number } }, req: PipelineRequest) {
  const at: { reads: number; groups: number }[] = [];
  const d = await p.pipe.generate({ ...req, dump: true, skipDecode: true, onStep: () => at.push({ reads: p.backend.readbacks, groups: ledger.bindGroups }) });
  const first = at[0]!;
  const last = at.at(-1)!;
  return { latents: d.dump!['latents']!.data, readsInLoop: last.reads - first.reads, bindGroupsPerStep: (last.groups - first.groups) / (at.length - 1) };
}

function relDiff(a: Float32Array, b: Float32Array): { rel: number; max: number } {
  expect(a.length).toBe(b.length);
  let d = 0;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i]! - b[i]!));
    m = Math.max(m, Math.abs(b[i]!));
  }
  expect(Number.isFinite(d)).toBe(true);
  return { rel: d / m, max: m };
}

describe.skipIf(skip)('graph capture in the denoising loop (WebGPU, Node)', () => {
  for (const precision of ['fp16', 'fp32'] as const) {
    it(`${precision}: captured and plain loops agree, twice on one session; no reads between steps`, { timeout: 600_000 }, async () => {
      const { plain, captured } = await pipelines('tiny-koala', precision);
      try {
        const first: PipelineRequest = {
          prompts: ['a koala bear eating eucalyptus leaves'], negativePrompts: ['worst quality'], promptStyle: 'plain', numImagesPerPrompt: 1,
          steps: 10, guidance: 3.5, scheduler: 'euler', timestepSpacing: 'trailing', width: 48, height: 64, seed: 0,
          latents: (await golden('tiny-koala', FILE, 'latents_init')).data,
        };
        const second: PipelineRequest = { ...first, prompts: ['a red panda'], negativePrompts: ['blurry'], steps: 6, guidance: 6, seed: 7, latents: undefined, scheduler: 'dpmpp-2m' };
        for (const [name, req] of [['first', first], ['second', second]] as const) {
          const a = await run(plain, req);
          const b = await run(captured, req);
          const { rel, max } = relDiff(b.latents, a.latents);
          console.log(`graph capture ${precision} ${name}: latents rel diff ${rel.toExponential(2)} (|max| ${max.toFixed(2)}); reads in loop ${a.readsInLoop}/${b.readsInLoop}; bind groups per step ${a.bindGroupsPerStep} plain, ${b.bindGroupsPerStep} captured`);
          expect(rel).toBeLessThanOrEqual(REL);
          expect(b.readsInLoop).toBe(0);
          // the U-Net is replayed: only the step graph makes bind groups
          expect(b.bindGroupsPerStep).toBeLessThan(a.bindGroupsPerStep / 4);
        }
      } finally {
        await plain.pipe.release();
        await captured.pipe.release();
      }
    });
  }

  it('fp16: ancestral noise and 4-channel inpainting agree with the plain loop', { timeout: 600_000 }, async () => {
    const { plain, captured } = await pipelines('tiny-sdxl', 'fp16');
    const f = await readSafetensorsHeader(fileSource(join(FIXTURES, 'img2img-goldens', 'tiny-sdxl', 'inpaint.safetensors')));
    const t = (n: string) => readTensorF32(f, n);
    try {
      const base: PipelineRequest = {
        prompts: ['a koala in a tree'], negativePrompts: ['blurry'], promptStyle: 'plain', numImagesPerPrompt: 1, steps: 5, guidance: 5,
        scheduler: 'euler-a', width: 64, height: 64, seed: 3,
      };
      const inpaint: PipelineRequest = { ...base, scheduler: 'euler', latents: await t('noise'), init: { image: await t('image_input'), strength: 0.6, mask: await t('mask_input') } };
      for (const [name, req] of [['euler-a', base], ['inpaint', inpaint]] as const) {
        const a = await run(plain, req);
        const b = await run(captured, req);
        const { rel } = relDiff(b.latents, a.latents);
        console.log(`graph capture fp16 ${name}: latents rel diff ${rel.toExponential(2)}`);
        expect(rel).toBeLessThanOrEqual(REL);
        expect(b.readsInLoop).toBe(0);
      }
    } finally {
      await plain.pipe.release();
      await captured.pipe.release();
    }
  });
});
