/**
 * The whole SDXL pipeline on onnxruntime-web's WebGPU EP in Node (Dawn over Mesa lavapipe, which has
 * shader-f16): fp32 and fp16 compute against the diffusers pipeline goldens, with the latents kept on
 * the GPU for the whole loop, through the engine's WebGPU backend (strict placement). Checks the readback count: 0 per step without previews, 1 for the image
 * (plus one per preview when asked).
 * Tolerance on the 8-bit image vs the golden's [0,1] image: 1e-2 (fp32), 5e-2 (fp16).
 */
import { describe, expect, it } from 'vitest';
import { webgpuSuite } from '../../test/webgpu-node';
import { localRepoFromDir } from '../hub/node.node.js';
import { fixtureDir, golden } from '../model/testing/fixtures.node.js';
import { BlobRegistry } from './ort-backend';
import { openSdxlModel } from './sdxl-model';
import { SdxlPipeline } from './sdxl-pipeline';
import { openLora } from '../model/lora';
import { fileSource } from '../model/safetensors.node.js';
import { FIXTURES } from '../model/testing/fixtures.node.js';
import { readSafetensorsHeader, readTensorF32 } from '../model/safetensors';
import { join } from 'node:path';

const { skip } = await webgpuSuite();
const ort = skip ? undefined : await import('onnxruntime-web/webgpu');
if (ort) ort.env.wasm.numThreads = 1;
// the engine's backend: every session under the strict CPU-fallback check (runtime/session.ts)
const webgpu = skip ? undefined : await import('../runtime/webgpu-backend');

// tiny-koala koala_lightning_euler_trailing_cfg3.5_10steps_64x48: CFG, negative prompt, odd size, 10 steps
const CASE = {
  file: 'pipeline_koala_lightning_euler_trailing_cfg3.5_10steps_64x48.safetensors',
  prompt: 'a koala bear eating eucalyptus leaves',
  negative: 'worst quality, low quality, illustration, low resolution',
  steps: 10,
  guidance: 3.5,
  width: 48,
  height: 64,
};

describe.skipIf(skip)('SDXL pipeline on WebGPU (Node, Dawn/lavapipe)', () => {
  for (const precision of ['fp32', 'fp16'] as const) {
    it(`${precision} compute matches the diffusers pipeline golden; reads back only the image and previews`, { timeout: 600_000 }, async () => {
      const blobs = new BlobRegistry();
      const model = await openSdxlModel(await localRepoFromDir(fixtureDir('tiny-koala'), { variant: null }), blobs);
      const backend = webgpu!.createWebgpuBackend(blobs);
      const pipe = new SdxlPipeline(model, backend, { precision });
      const g = async (t: string) => (await golden('tiny-koala', CASE.file, t)).data;
      try {
        const previews: number[] = [];
        const d = await pipe.generate({
          prompts: [CASE.prompt], negativePrompts: [CASE.negative], promptStyle: 'plain', numImagesPerPrompt: 1, steps: CASE.steps, guidance: CASE.guidance,
          scheduler: 'euler', timestepSpacing: 'trailing', width: CASE.width, height: CASE.height, seed: 0,
          latents: await g('latents_init'), dump: false, previewEvery: 4, onPreview: (p) => previews.push(p.step),
        });
        const ref = await g('image');
        let err = 0;
        const rgba = d.images[0]!.rgba;
        for (let p = 0; p < CASE.width * CASE.height; p++) for (let c = 0; c < 3; c++) err = Math.max(err, Math.abs(rgba[p * 4 + c]! / 255 - ref[p * 3 + c]!));
        console.log(`webgpu ${precision}: image max abs error ${err.toFixed(5)} (8-bit vs the golden's [0,1] image); previews at ${previews}; readbacks ${d.readbacks}; timings ${JSON.stringify(d.timings)}`);
        expect(err).toBeLessThanOrEqual(precision === 'fp32' ? 1e-2 : 5e-2);
        expect(previews).toEqual([4, 8]);
        // nothing per step: one read for the decoded image and one per preview
        expect(d.readbacks).toBe(1 + previews.length);
      } finally {
        await pipe.release();
      }
    });
  }
});

describe.skipIf(skip)('LoRA on WebGPU fp16 (the path users run)', () => {
  it('a kohya LoRA fused into the tiny KOALA matches diffusers; removing it gives the plain model back', { timeout: 600_000 }, async () => {
    const dir = join(FIXTURES, 'lora-goldens', 'tiny-koala');
    const golden = async (file: string) => {
      const f = await readSafetensorsHeader(fileSource(join(dir, file)));
      return { latents: await readTensorF32(f, 'latents_init'), image: await readTensorF32(f, 'image') };
    };
    const blobs = new BlobRegistry();
    const model = await openSdxlModel(await localRepoFromDir(fixtureDir('tiny-koala'), { variant: null }), blobs);
    const pipe = new SdxlPipeline(model, webgpu!.createWebgpuBackend(blobs), { precision: 'fp16' });
    const run = async (ref: { latents: Float32Array; image: Float32Array }) => {
      const d = await pipe.generate({
        prompts: ['a koala in a tree'], negativePrompts: ['blurry'], promptStyle: 'plain', numImagesPerPrompt: 1, steps: 4, guidance: 5,
        scheduler: 'euler', width: 64, height: 48, seed: 0, latents: ref.latents, dump: false,
      });
      const rgba = d.images[0]!.rgba;
      let err = 0;
      for (let p = 0; p < 64 * 48; p++) for (let c = 0; c < 3; c++) err = Math.max(err, Math.abs(rgba[p * 4 + c]! / 255 - ref.image[p * 3 + c]!));
      return err;
    };
    try {
      const lora = await openLora(fileSource(join(dir, 'loras/kohya.safetensors')), pipe.loraTargets(), 'kohya');
      const reports = await pipe.setLoras([{ lora, scale: 1 }]);
      expect(reports[0]).toMatchObject({ matched: 99, unmatchedCount: 0 });
      const withLora = await run(await golden('lora_kohya.safetensors'));
      await pipe.setLoras([]);
      const without = await run(await golden('lora_none.safetensors'));
      console.log(`webgpu fp16 LoRA: image max abs error ${withLora.toFixed(4)} with kohya@1, ${without.toFixed(4)} after removing it`);
      expect(withLora).toBeLessThanOrEqual(5e-2);
      expect(without).toBeLessThanOrEqual(5e-2);
    } finally {
      await pipe.release();
    }
  });
});

describe.skipIf(skip)('inpainting on WebGPU fp16 (blend graph on the GPU, strict placement)', () => {
  it('4-channel inpainting of the tiny SDXL matches diffusers; zero readbacks per step', { timeout: 600_000 }, async () => {
    const dir = join(FIXTURES, 'img2img-goldens', 'tiny-sdxl');
    const f = await readSafetensorsHeader(fileSource(join(dir, 'inpaint.safetensors')));
    const t = async (n: string) => readTensorF32(f, n);
    const blobs = new BlobRegistry();
    const model = await openSdxlModel(await localRepoFromDir(fixtureDir('tiny-sdxl'), { variant: null }), blobs);
    const pipe = new SdxlPipeline(model, webgpu!.createWebgpuBackend(blobs), { precision: 'fp16' });
    try {
      const d = await pipe.generate({
        prompts: ['a koala in a tree'], negativePrompts: ['blurry'], promptStyle: 'plain', numImagesPerPrompt: 1, steps: 5, guidance: 5,
        scheduler: 'euler', width: 64, height: 64, seed: 0, latents: await t('noise'), dump: false,
        init: { image: await t('image_input'), strength: 0.6, mask: await t('mask_input') },
      });
      const ref = await t('image');
      const rgba = d.images[0]!.rgba;
      let err = 0;
      for (let p = 0; p < 64 * 64; p++) for (let c = 0; c < 3; c++) err = Math.max(err, Math.abs(rgba[p * 4 + c]! / 255 - ref[p * 3 + c]!));
      console.log(`webgpu fp16 inpaint: image max abs error ${err.toFixed(4)}, ${d.stepsRun} steps, ${d.readbacks} readbacks`);
      expect(err).toBeLessThanOrEqual(5e-2);
      expect(d.stepsRun).toBe(3);
      // the encoded image latents once, the image once: nothing per step
      expect(d.readbacks).toBe(2);
    } finally {
      await pipe.release();
    }
  });
});
