/**
 * Inpainting against diffusers' StableDiffusionXLInpaintPipeline (0.30.3) through `npm run generate --
 * --init-image --mask --strength --latents NOISE --dump` (test/fixtures/img2img-goldens, made by
 * scripts/goldens/img2img.py; the VAE takes the latent mean):
 * - a 4-channel U-Net (both tiny fixtures), strength 0.6 and 1.0: the kept region is the image noised to
 *   each next step's level, blended in on the GPU after every step;
 * - a 9-channel inpainting U-Net (tiny-sdxl + a random 9-channel U-Net): mask and masked-image latents
 *   as extra input channels, strength 1.0 and 0.6.
 * Tolerances as for text to image: mask exact, latents inputs ≤ 1e-4, final latents ≤ 1e-3 or
 * 1e-5 × max|ref|, image ≤ 1e-3. Also: a mask of another size is resized (and said), a 9-channel model
 * without a mask is a clear error.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FIXTURE_NAMES, FIXTURES, fixtureDir } from '../workers/model/testing/fixtures.node';
import { maxAbsDiff } from '../workers/model/testing/run-wasm.node';

import { readPngText } from '../workers/pipeline/png';
import { maxAbs, readTensors as readAll, runGenerate as cli, writeTensor } from './golden-helpers.node';

const tmp = mkdtempSync(join(tmpdir(), 'inpaint-goldens-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
interface Case { file: string; prompt: string; negative_prompt: string; guidance_scale: number; strength: number; num_inference_steps: number; steps_run: number; height: number; width: number }

/** tiny-sdxl with the golden's random 9-channel U-Net in place of its own. */
function inpaintRepo(): string {
  const dir = join(tmp, 'tiny-sdxl-inpaint');
  cpSync(fixtureDir('tiny-sdxl'), dir, { recursive: true, filter: (p) => !p.includes('goldens') });
  rmSync(join(dir, 'unet'), { recursive: true });
  cpSync(join(FIXTURES, 'img2img-goldens', 'tiny-sdxl-inpaint-unet'), join(dir, 'unet'), { recursive: true });
  return dir;
}

async function check(fixture: string, model: string, name: string, c: Case, extra: string[] = []) {
  const dir = resolve(FIXTURES, 'img2img-goldens', fixture);
  const ref = await readAll(join(dir, c.file));
  const noise = join(tmp, `${fixture}-${name}-noise.safetensors`);
  writeTensor(noise, 'latents', ref['noise']!);
  const dump = join(tmp, `${fixture}-${name}.safetensors`);
  const png = join(tmp, `${fixture}-${name}.png`);
  const r = await cli([
    '--model', model, '--prompt-style', 'plain', '--prompt', c.prompt, '--negative-prompt', c.negative_prompt,
    '--guidance', String(c.guidance_scale), '--steps', String(c.num_inference_steps), '--scheduler', 'euler', '--seed', '1',
    '--init-image', join(dir, 'input.png'), '--mask', join(dir, 'mask.png'), '--strength', String(c.strength),
    '--latents', noise, '--dump', dump, '--out', png, ...extra,
  ]);
  expect(r.code, r.log).toBe(0);
  expect(r.log).toContain(`inpainting: strength ${c.strength}, ${c.steps_run} of ${c.num_inference_steps} steps run`);
  const d = await readAll(dump);
  const errs: Record<string, number> = {
    mask: maxAbsDiff(d['mask']!.data, ref['mask']!.data),
    image_latents: ref['image_latents'] ? maxAbsDiff(d['image_latents']!.data, ref['image_latents'].data) : 0,
    latents_start: maxAbsDiff(d['latents_start']!.data, ref['latents_start']!.data),
    latents: maxAbsDiff(d['latents']!.data, ref['latents_final']!.data),
    image: maxAbsDiff(d['image']!.data, ref['image']!.data),
  };
  if (d['masked_image_latents']) errs['masked_image_latents'] = maxAbsDiff(d['masked_image_latents'].data, ref['masked_image_latents']!.data);
  console.log(`[inpaint] ${fixture} ${name}: ${JSON.stringify(errs)}`);
  expect(errs['mask']).toBe(0);
  expect(errs['image_latents']).toBeLessThanOrEqual(1e-4);
  expect(errs['latents_start']).toBeLessThanOrEqual(1e-4);
  if (errs['masked_image_latents'] !== undefined) expect(errs['masked_image_latents']).toBeLessThanOrEqual(1e-4);
  expect(errs['latents']).toBeLessThanOrEqual(Math.max(1e-3, 1e-5 * maxAbs(ref['latents_final']!.data)));
  expect(errs['image']).toBeLessThanOrEqual(1e-3);
  const text = (await readPngText(new Uint8Array(readFileSync(png))))['parameters']!;
  expect(text).toContain('Mode: inpaint');
}

for (const fixture of FIXTURE_NAMES) {
  const meta = JSON.parse(readFileSync(resolve(FIXTURES, 'img2img-goldens', fixture, 'cases.json'), 'utf8')) as { pipelines: Record<string, Case> };
  describe(`inpainting, 4-channel U-Net, vs diffusers: ${fixture}`, () => {
    for (const name of ['inpaint', 'inpaint_s1']) {
      const c = meta.pipelines[name]!;
      it(`${name}: strength ${c.strength}, ${c.steps_run} of ${c.num_inference_steps} steps, the kept region blended back every step`, () => check(fixture, fixtureDir(fixture), name, c));
    }
    it('a mask of another size is resized to the image (and said so)', async () => {
      const dir = resolve(FIXTURES, 'img2img-goldens', fixture);
      const c = meta.pipelines['inpaint']!;
      const r = await cli(['--model', fixtureDir(fixture), '--prompt', 'x', '--steps', '2', '--init-image', join(dir, 'input.png'), '--mask', join(dir, 'mask_small.png'), '--out', join(tmp, 'small.png')]);
      expect(r.code, r.log).toBe(0);
      expect(r.log).toMatch(new RegExp(`mask: the \\d+×\\d+ mask was scaled to ${c.width}×${c.height}`));
    });
  });
}

describe('inpainting, 9-channel inpainting U-Net, vs diffusers: tiny-sdxl', () => {
  const meta = JSON.parse(readFileSync(resolve(FIXTURES, 'img2img-goldens', 'tiny-sdxl', 'cases.json'), 'utf8')) as { pipelines: Record<string, Case> };
  let repo = '';
  for (const name of ['inpaint9', 'inpaint9_s06']) {
    const c = meta.pipelines[name]!;
    it(`${name}: strength ${c.strength}, mask and masked image as U-Net input channels`, async () => {
      repo ||= inpaintRepo();
      await check('tiny-sdxl', repo, name, c);
    });
  }
  it('without a mask it says it needs one', async () => {
    repo ||= inpaintRepo();
    const r = await cli(['--model', repo, '--prompt', 'x', '--steps', '2', '--out', join(tmp, 'nomask.png')]);
    expect(r.code).toBe(2);
    expect(r.log).toMatch(/is an inpainting model \(a 9-channel U-Net\): it needs an input image and a mask/);
  });
});
