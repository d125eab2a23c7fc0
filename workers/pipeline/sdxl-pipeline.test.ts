/**
 * Full StableDiffusionXLPipeline runs on the wasm backend against every pipeline golden of both
 * tiny fixtures (diffusers 0.30.3), with the goldens' initial latents (and step noise for Euler a).
 * Tolerances (goldens/README.md): embeddings 1e-4 abs; final latents 1e-3 abs or 1e-5 × max|ref|;
 * image in [0,1] 1e-3 abs.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-web';
import { afterAll, describe, expect, it } from 'vitest';
import { localRepoFromDir } from '../hub/node.node';
import { fixtureDir, golden, goldenFile, FIXTURE_NAMES, type FixtureName } from '../model/testing/fixtures.node';
import { maxAbsDiff } from '../model/testing/run-wasm.node';
import type { SchedulerName, TimestepSpacing } from '../protocol';
import { BlobRegistry, createOrtBackend } from './ort-backend';
import { SdxlPipeline, type PipelineRequest } from './sdxl-pipeline';
import { openSdxlModel } from './sdxl-model';

ort.env.wasm.numThreads = 1;

interface PipelineCase {
  name: string;
  file: string;
  scheduler: string;
  prompt: string;
  negative_prompt: string | null;
  guidance_scale: number;
  num_inference_steps: number;
  height: number;
  width: number;
}

const SCHEDULER: Record<string, { scheduler: SchedulerName; spacing?: TimestepSpacing }> = {
  euler: { scheduler: 'euler' },
  euler_trailing: { scheduler: 'euler', spacing: 'trailing' },
  euler_ancestral: { scheduler: 'euler-a' },
  dpmpp_2m: { scheduler: 'dpmpp-2m' },
  dpmpp_2m_karras: { scheduler: 'dpmpp-2m-karras' },
};

const maxAbs = (a: ArrayLike<number>) => Array.from(a).reduce((m, v) => Math.max(m, Math.abs(v)), 0);

async function openPipeline(fixture: FixtureName, variant: string | null) {
  const blobs = new BlobRegistry();
  const files = await localRepoFromDir(fixtureDir(fixture), { variant });
  const model = await openSdxlModel(files, blobs);
  return new SdxlPipeline(model, createOrtBackend(ort, 'wasm', blobs), { precision: 'fp32' });
}

const pipelines: SdxlPipeline[] = [];
afterAll(async () => {
  for (const p of pipelines) await p.release();
});

for (const fixture of FIXTURE_NAMES) {
  const cases = JSON.parse(readFileSync(join(fixtureDir(fixture), 'goldens/cases.json'), 'utf8')).pipeline as PipelineCase[];
  for (const variant of [null, 'fp16'] as const) {
    describe(`${fixture} pipeline goldens, ${variant ?? 'fp32'} weights`, () => {
      let pipe: SdxlPipeline | undefined;
      const get = async () => {
        if (!pipe) pipelines.push((pipe = await openPipeline(fixture, variant)));
        return pipe;
      };
      for (const c of cases) {
        it(c.name, async () => {
          const p = await get();
          const g = (t: string) => golden(fixture, c.file, t);
          const f = await goldenFile(fixture, c.file);
          const s = SCHEDULER[c.scheduler];
          if (!s) throw new Error(`unknown golden scheduler ${c.scheduler}`);
          const stepNoise: Float32Array[] = [];
          for (let i = 0; f.tensors.has(`step_noise.${String(i).padStart(2, '0')}`); i++) {
            stepNoise.push((await g(`step_noise.${String(i).padStart(2, '0')}`)).data);
          }
          const req: PipelineRequest = {
            prompts: [c.prompt],
            negativePrompts: c.negative_prompt === null ? undefined : [c.negative_prompt],
            numImagesPerPrompt: 1,
            steps: c.num_inference_steps,
            guidance: c.guidance_scale,
            scheduler: s.scheduler,
            timestepSpacing: s.spacing,
            width: c.width,
            height: c.height,
            seed: 0,
            latents: (await g('latents_init')).data,
            stepNoise: stepNoise.length ? stepNoise : undefined,
            dump: true,
          };
          const r = await p.generate(req);
          const d = r.dump!;
          const refEmbeds = (await g('prompt_embeds')).data;
          const gotEmbeds = c.guidance_scale > 1 ? Float32Array.from([...d['negative_prompt_embeds']!.data, ...d['prompt_embeds']!.data]) : d['prompt_embeds']!.data;
          const refLatents = (await g('latents_final')).data;
          const refImage = (await g('image')).data;
          const errs = {
            embeds: maxAbsDiff(gotEmbeds, refEmbeds),
            timeIds: maxAbsDiff(d['add_time_ids']!.data, (await g('add_time_ids')).data),
            latents: maxAbsDiff(d['latents']!.data, refLatents),
            image: maxAbsDiff(d['image']!.data, refImage),
          };
          const fp16 = variant === 'fp16';
          console.log(`${fixture} ${variant ?? 'fp32'} ${c.name}: max|ref latents| ${maxAbs(refLatents).toFixed(1)}`, JSON.stringify(errs));
          expect(errs.timeIds).toBe(0);
          if (!fp16) {
            expect(errs.embeds).toBeLessThanOrEqual(1e-4);
            expect(errs.latents).toBeLessThanOrEqual(Math.max(1e-3, 1e-5 * maxAbs(refLatents)));
            expect(errs.image).toBeLessThanOrEqual(1e-3);
          } else {
            // fp16-rounded weights, fp32 compute: reported, bounded loosely (the random U-Net amplifies)
            expect(errs.embeds).toBeLessThanOrEqual(2e-2);
            expect(errs.image).toBeLessThanOrEqual(0.05);
          }
          expect(r.images[0]!.rgba.length).toBe(c.width * c.height * 4);
          expect(r.readbacks).toBe(0); // wasm: every tensor is a CPU tensor
        });
      }
    });
  }
}
