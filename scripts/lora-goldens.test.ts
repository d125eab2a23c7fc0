/**
 * LoRA against diffusers (`load_lora_weights` + `fuse_lora`, PEFT backend) on both tiny fixtures
 * (test/fixtures/lora-goldens, made by scripts/goldens/lora.py): PEFT layout, kohya with diffusers names
 * (per-module alphas, a 3×3 conv LoCon, text encoders), kohya with the original SDXL (SGM) U-Net names,
 * two LoRAs at once, and an fp16 LoRA into the fp16 weight files.
 * - weights: every tensor diffusers changed, and no other, fused by workers/model/lora.ts:
 *   ≤ 1e-5 abs into fp32 files; into fp16 files ≤ 1e-3 (we store the fused weight as fp16, diffusers keeps fp32);
 * - whole 4-step runs through `npm run generate -- --lora FILE:SCALE`: embeddings ≤ 1e-4, final latents
 *   ≤ 1e-3 or 1e-5 × max|ref|, image ≤ 1e-3 (fp16 files, whose fused weights we round to fp16: embeddings
 *   1e-2, latents 5e-2, image 5e-3; measured 3.7e-3 / 1.5e-2 / 1.1e-3), and each LoRA
 *   moves the image far more than that from the no-LoRA golden;
 * - refusals: a LoRA with modules this model lacks (diffusers applies the rest silently; we refuse unless
 *   --lora-allow-partial), and an SD 1.5 LoRA.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { fuseLoras, openLora, type LoraTargets } from '../workers/model/lora';
import { readTensorF32 } from '../workers/model/safetensors';
import { fileSource } from '../workers/model/safetensors.node.js';
import { FIXTURE_NAMES, FIXTURES, fixtureDir } from '../workers/model/testing/fixtures.node';
import { maxAbsDiff } from '../workers/model/testing/run-wasm.node';
import { WeightIndex } from '../workers/model/weights';
import { uniformLayersPerBlock } from '../workers/pipeline/sdxl-pipeline';
import { maxAbs, readTensors, runGenerate as cli, writeTensor } from './golden-helpers.node';

interface LoraCase {
  case: string;
  file: string;
  weights: 'fp32' | 'fp16';
  loras: { file: string; scale: number }[];
  changed_params: Record<string, number>;
}

const tmp = mkdtempSync(join(tmpdir(), 'lora-goldens-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const EMBEDS = ['prompt_embeds', 'negative_prompt_embeds', 'pooled_prompt_embeds', 'negative_pooled_prompt_embeds'] as const;

/** The file's tensors as Float32Arrays. */
const readAll = async (path: string) => Object.fromEntries(Object.entries(await readTensors(path)).map(([k, t]) => [k, t.data]));

async function targets(fixture: string, fp16: boolean): Promise<LoraTargets> {
  const dir = fixtureDir(fixture as (typeof FIXTURE_NAMES)[number]);
  const open = (p: string) => WeightIndex.open([fileSource(join(dir, p))]);
  const ext = fp16 ? '.fp16.safetensors' : '.safetensors';
  return {
    unet: await open(`unet/diffusion_pytorch_model${ext}`),
    text_encoder: await open(`text_encoder/model${ext}`),
    text_encoder_2: await open(`text_encoder_2/model${ext}`),
    layersPerBlock: uniformLayersPerBlock(JSON.parse(readFileSync(join(dir, 'unet/config.json'), 'utf8'))),
  };
}

for (const fixture of FIXTURE_NAMES) {
  const dir = resolve(FIXTURES, 'lora-goldens', fixture);
  const meta = JSON.parse(readFileSync(join(dir, 'cases.json'), 'utf8')) as {
    cases: LoraCase[];
    pipeline: { prompt: string; negative_prompt: string; steps: number; guidance_scale: number; height: number; width: number };
  };
  const p = meta.pipeline;
  const baseline = (fp16: boolean) => readAll(join(dir, fp16 ? 'lora_none.fp16.safetensors' : 'lora_none.safetensors'));

  describe(`LoRA vs diffusers, ${fixture}`, () => {
    for (const c of meta.cases.filter((x) => x.loras.length)) {
      const fp16 = c.weights === 'fp16';
      const what = c.loras.map((l) => `${l.file.replace('loras/', '')}@${l.scale}`).join(' + ');

      it(`${c.case}: fused weights = diffusers' fuse_lora (${what}, ${c.weights} files)`, async () => {
        const t = await targets(fixture, fp16);
        const uses = [];
        for (const l of c.loras) uses.push({ lora: await openLora(fileSource(join(dir, l.file)), t, l.file), scale: l.scale });
        const fused = await fuseLoras(t, uses);
        const ref = await readAll(join(dir, c.file));
        const refNames = Object.keys(ref).filter((k) => k.startsWith('fused.'));
        const ours: string[] = [];
        for (const comp of ['unet', 'text_encoder', 'text_encoder_2'] as const) {
          for (const name of fused[comp].names()) if (fused[comp].get(name)!.file !== t[comp].get(name)!.file) ours.push(`fused.${comp}.${name}`);
        }
        // the same set of changed tensors
        expect(ours.sort()).toEqual(refNames.sort());
        expect(ours.length).toBe(Object.values(c.changed_params).reduce((a, b) => a + b, 0));
        let worst = 0;
        for (const n of refNames) {
          const [, comp, ...rest] = n.split('.');
          const e = fused[comp as 'unet'].get(rest.join('.'))!;
          worst = Math.max(worst, maxAbsDiff(await readTensorF32(e.file, e.info.name), ref[n]!));
        }
        console.log(`[lora] ${fixture} ${c.case}: ${ours.length} fused tensors, max abs err ${worst.toExponential(2)}`);
        expect(worst).toBeLessThanOrEqual(fp16 ? 1e-3 : 1e-5);
      });

      it(`${c.case}: whole run through generate --lora (${what})`, async () => {
        const ref = await readAll(join(dir, c.file));
        const latents = join(tmp, `${fixture}-${c.case}-latents.safetensors`);
        writeTensor(latents, 'latents', { shape: [1, 4, p.height / 8, p.width / 8], data: ref['latents_init']! });
        const dump = join(tmp, `${fixture}-${c.case}.safetensors`);
        const r = await cli([
          '--model', fixtureDir(fixture), '--prompt-style', 'plain', '--prompt', p.prompt, '--negative-prompt', p.negative_prompt,
          '--steps', String(p.steps), '--guidance', String(p.guidance_scale), '--width', String(p.width), '--height', String(p.height),
          '--scheduler', 'euler', '--seed', '1', '--latents', latents, '--dump', dump, '--out', join(tmp, `${fixture}-${c.case}.png`),
          ...(fp16 ? ['--variant', 'fp16'] : []),
          ...c.loras.flatMap((l) => ['--lora', `${join(dir, l.file)}:${l.scale}`]),
        ]);
        expect(r.code, r.log).toBe(0);
        expect(r.log).toMatch(/LoRA .*: \d+ of \d+ modules applied/);
        const d = await readAll(dump);
        const errs: Record<string, number> = {
          ...Object.fromEntries(EMBEDS.map((k) => [k, maxAbsDiff(d[k]!, ref[k]!)])),
          latents: maxAbsDiff(d['latents']!, ref['latents_final']!),
          image: maxAbsDiff(d['image']!, ref['image']!),
        };
        const base = await baseline(fp16);
        const moved = maxAbsDiff(ref['image']!, base['image']!);
        console.log(`[lora] ${fixture} ${c.case} run: ${JSON.stringify(errs)}; the LoRA moves the image by ${moved.toFixed(3)}`);
        const tol = fp16 ? { embeds: 1e-2, latents: 5e-2, image: 5e-3 } : { embeds: 1e-4, latents: Math.max(1e-3, 1e-5 * maxAbs(ref['latents_final']!)), image: 1e-3 };
        for (const k of EMBEDS) expect(errs[k]).toBeLessThanOrEqual(tol.embeds);
        expect(errs.latents).toBeLessThanOrEqual(tol.latents);
        expect(errs.image).toBeLessThanOrEqual(tol.image);
        expect(moved).toBeGreaterThan(20 * tol.image);
        // the PNG names it, A1111 style
        const png = readFileSync(join(tmp, `${fixture}-${c.case}.png`));
        for (const l of c.loras) expect(png.toString('latin1')).toContain(`<lora:${l.file.replace('loras/', '').replace('.safetensors', '')}:${l.scale}>`);
      });
    }

    it('a LoRA with modules this model lacks is refused (naming them), applied only with --lora-allow-partial', async () => {
      const base = ['--model', fixtureDir(fixture), '--prompt', 'x', '--steps', '1', '--width', '32', '--height', '32', '--out', join(tmp, 'partial.png'), '--lora', join(dir, 'loras/unmatched.safetensors')];
      const refused = await cli(base);
      expect(refused.code).toBe(2);
      expect(refused.log).toMatch(/LoRA unmatched: only \d+ of \d+ modules match this model \(\d+ unmatched, e\.g\. lora_\w+, .*--lora-allow-partial/);
      const ok = await cli([...base, '--lora-allow-partial']);
      expect(ok.code, ok.log).toBe(0);
      expect(ok.log).toMatch(/LoRA unmatched \(kohya\): \d+ of \d+ modules applied .* not in this model/);
    });

    it('an SD 1.5 LoRA is refused before any work', async () => {
      const r = await cli(['--model', fixtureDir(fixture), '--prompt', 'x', '--steps', '1', '--width', '32', '--height', '32', '--out', join(tmp, 'sd15.png'), '--lora', join(dir, 'loras/sd15.safetensors')]);
      expect(r.code).toBe(2);
      expect(r.log).toMatch(/Stable Diffusion 1.x\/2.x/);
    });
  });
}
