/**
 * Image to image against diffusers' StableDiffusionXLImg2ImgPipeline (0.30.3) on both tiny fixtures
 * (test/fixtures/img2img-goldens, scripts/goldens/img2img.py), through `npm run generate -- --init-image
 * FILE --strength S --latents NOISE --dump`: strength 0.6 of 5 steps (3 run) and 1.0 of 4. The VAE encoder
 * takes the latent mean (diffusers' sample_mode="argmax"), the noise is the golden's. Tolerances as for
 * text to image: image latents and start latents ≤ 1e-4, final latents ≤ 1e-3 or 1e-5 × max|ref|,
 * image ≤ 1e-3. Also: strength 0 returns the input, bad strengths and files are clear errors.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { decode } from 'fast-png';
import { afterAll, describe, expect, it } from 'vitest';
import { FIXTURE_NAMES, FIXTURES, fixtureDir } from '../workers/model/testing/fixtures.node';
import { maxAbsDiff } from '../workers/model/testing/run-wasm.node';

import { readPngText } from '../workers/pipeline/png';
import { maxAbs, readTensors as readAll, runGenerate as cli, writeTensor } from './golden-helpers.node';

const tmp = mkdtempSync(join(tmpdir(), 'img2img-goldens-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
interface Case { file: string; prompt: string; negative_prompt: string; guidance_scale: number; strength: number; num_inference_steps: number; steps_run: number; height: number; width: number }

for (const fixture of FIXTURE_NAMES) {
  const dir = resolve(FIXTURES, 'img2img-goldens', fixture);
  const meta = JSON.parse(readFileSync(join(dir, 'cases.json'), 'utf8')) as { pipelines: Record<string, Case> };

  describe(`image to image vs diffusers, ${fixture}`, () => {
    for (const name of ['img2img', 'img2img_s1']) {
      const c = meta.pipelines[name]!;
      it(`${name}: strength ${c.strength}, ${c.steps_run} of ${c.num_inference_steps} steps`, async () => {
        const ref = await readAll(join(dir, c.file));
        const noise = join(tmp, `${fixture}-${name}-noise.safetensors`);
        writeTensor(noise, 'latents', ref['noise']!);
        const dump = join(tmp, `${fixture}-${name}.safetensors`);
        const png = join(tmp, `${fixture}-${name}.png`);
        const r = await cli([
          '--model', fixtureDir(fixture), '--prompt-style', 'plain', '--prompt', c.prompt, '--negative-prompt', c.negative_prompt,
          '--guidance', String(c.guidance_scale), '--steps', String(c.num_inference_steps), '--scheduler', 'euler',
          '--init-image', join(dir, 'input.png'), '--strength', String(c.strength), '--latents', noise, '--dump', dump, '--out', png, '--seed', '1',
        ]);
        expect(r.code, r.log).toBe(0);
        expect(r.log).toContain(`${c.steps_run} of ${c.num_inference_steps} steps run`);
        const d = await readAll(dump);
        const errs = {
          image_latents: maxAbsDiff(d['image_latents']!.data, ref['image_latents']!.data),
          latents_start: maxAbsDiff(d['latents_start']!.data, ref['latents_start']!.data),
          prompt_embeds: maxAbsDiff(d['prompt_embeds']!.data, ref['prompt_embeds']!.data),
          latents: maxAbsDiff(d['latents']!.data, ref['latents_final']!.data),
          image: maxAbsDiff(d['image']!.data, ref['image']!.data),
        };
        console.log(`[img2img] ${fixture} ${name}: ${JSON.stringify(errs)}`);
        expect(errs.image_latents).toBeLessThanOrEqual(1e-4);
        expect(errs.latents_start).toBeLessThanOrEqual(1e-4);
        expect(errs.prompt_embeds).toBeLessThanOrEqual(1e-4);
        expect(errs.latents).toBeLessThanOrEqual(Math.max(1e-3, 1e-5 * maxAbs(ref['latents_final']!.data)));
        expect(errs.image).toBeLessThanOrEqual(1e-3);
        const text = (await readPngText(new Uint8Array(readFileSync(png))))['parameters']!;
        expect(text).toContain(`Denoising strength: ${c.strength}`);
        expect(text).toMatch(/Init image hash: [0-9a-f]{16}/);
      });
    }

    it('strength 0 returns the input unchanged (and says so); bad strengths and files are usage errors', async () => {
      const c = meta.pipelines['img2img']!;
      const out = join(tmp, `${fixture}-s0.png`);
      const base = ['--model', fixtureDir(fixture), '--prompt', 'x', '--steps', '5', '--init-image', join(dir, 'input.png'), '--out', out];
      const r = await cli([...base, '--strength', '0']);
      expect(r.code, r.log).toBe(0);
      expect(r.log).toContain('the input image is returned unchanged');
      const a = decode(readFileSync(join(dir, 'input.png')));
      const b = decode(readFileSync(out));
      expect([b.width, b.height]).toEqual([c.width, c.height]);
      let diff = 0;
      for (let p = 0; p < a.width * a.height; p++) for (let k = 0; k < 3; k++) diff = Math.max(diff, Math.abs(a.data[p * a.channels + k]! - b.data[p * b.channels + k]!));
      expect(diff).toBe(0);
      expect((await cli([...base, '--strength', '1.5'])).log).toContain('--strength must be a number from 0 to 1, got "1.5"');
      expect((await cli(['--model', fixtureDir(fixture), '--prompt', 'x', '--strength', '0.5'])).log).toContain('--strength needs --init-image');
      const notPng = join(tmp, 'not.png');
      writeFileSync(notPng, 'hello');
      const bad = await cli([...base.slice(0, -4), '--init-image', notPng, '--out', out]);
      expect(bad.code).toBe(2);
      expect(bad.log).toMatch(/not a PNG file the CLI can read/);
    });

    it('an input of another size is scaled to cover the output size and centre-cropped (said on stderr)', async () => {
      const big = readFileSync(join(dir, 'cases.json'), 'utf8').match(/input_(\d+)x(\d+)\.png/)!;
      const c = meta.pipelines['img2img']!;
      const r = await cli(['--model', fixtureDir(fixture), '--prompt', 'x', '--steps', '2', '--strength', '0.5', '--width', String(c.width), '--height', String(c.height),
        '--init-image', join(dir, big[0]!), '--out', join(tmp, `${fixture}-crop.png`)]);
      expect(r.code, r.log).toBe(0);
      expect(r.log).toMatch(new RegExp(`init image: the ${big[1]}×${big[2]} input was scaled to \\d+×\\d+ and its centre cropped to ${c.width}×${c.height}`));
    });
  });
}
