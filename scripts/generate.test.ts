/**
 * Every pipeline golden of both tiny fixtures reproduced through the generate CLI (in-process `main`,
 * wasm backend) with the goldens' initial latents (--latents) and Euler-a step noise (--step-noise),
 * compared tensor by tensor through --dump. Tolerances (goldens/README.md): embeddings 1e-4 abs,
 * final latents 1e-3 abs or 1e-5 × max|ref|, image in [0,1] 1e-3 abs. The fp16 weight files
 * (upcast to fp32 compute) are run too and their errors printed; they are bounded loosely.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FIXTURE_NAMES, fixtureDir, golden, goldenFile } from '../workers/model/testing/fixtures.node';
import { maxAbsDiff } from '../workers/model/testing/run-wasm.node';
import { bytesSource, encodeSafetensors, readSafetensorsHeader, readTensorF32 } from '../workers/model/safetensors';
import { readPngText } from '../workers/pipeline/png';
import { main } from './generate';

const SCHEDULER: Record<string, string[]> = {
  euler: ['--scheduler', 'euler'],
  euler_trailing: ['--scheduler', 'euler', '--timestep-spacing', 'trailing'],
  euler_ancestral: ['--scheduler', 'euler-a'],
  dpmpp_2m: ['--scheduler', 'dpmpp-2m'],
  dpmpp_2m_karras: ['--scheduler', 'dpmpp-2m-karras'],
};

interface PipelineCase {
  name: string;
  file: string;
  scheduler: string;
  prompt: string;
  negative_prompt: string | null;
  guidance_scale: number;
  num_inference_steps: number;
  height_arg: number | null;
  width_arg: number | null;
}

const tmp = mkdtempSync(join(tmpdir(), 'generate-test-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const maxAbs = (a: ArrayLike<number>) => Array.from(a).reduce((m, v) => Math.max(m, Math.abs(v)), 0);

async function readDump(path: string): Promise<Record<string, Float32Array>> {
  const f = await readSafetensorsHeader(bytesSource(new Uint8Array(readFileSync(path)), path));
  const out: Record<string, Float32Array> = {};
  for (const name of f.tensors.keys()) out[name] = await readTensorF32(f, name);
  return out;
}

for (const fixture of FIXTURE_NAMES) {
  const cases = JSON.parse(readFileSync(join(fixtureDir(fixture), 'goldens/cases.json'), 'utf8')).pipeline as PipelineCase[];
  for (const variant of [undefined, 'fp16'] as const) {
    describe(`npm run generate reproduces ${fixture} pipeline goldens (${variant ?? 'fp32'} weights)`, () => {
      for (const c of cases) {
        it(c.name, async () => {
          const g = async (t: string) => (await golden(fixture, c.file, t)).data;
          const gf = await goldenFile(fixture, c.file);
          const base = join(tmp, `${fixture}-${variant ?? 'fp32'}-${c.name}`);
          const latents = await golden(fixture, c.file, 'latents_init');
          writeFileSync(`${base}-latents.safetensors`, encodeSafetensors({ latents: { dtype: 'F32', shape: latents.shape, data: latents.data } }));
          const args = ['--model', fixtureDir(fixture), '--prompt-style', 'plain', '--prompt', c.prompt, '--steps', String(c.num_inference_steps), '--guidance', String(c.guidance_scale),
            ...SCHEDULER[c.scheduler]!, '--seed', '7', '--latents', `${base}-latents.safetensors`, '--dump', `${base}-dump.safetensors`, '--out', `${base}.png`];
          if (c.negative_prompt !== null) args.push('--negative-prompt', c.negative_prompt);
          if (c.width_arg) args.push('--width', String(c.width_arg));
          if (c.height_arg) args.push('--height', String(c.height_arg));
          if (variant) args.push('--variant', variant);
          const noiseNames = [...gf.tensors.keys()].filter((k) => k.startsWith('step_noise.'));
          if (noiseNames.length) {
            const t: Record<string, { dtype: 'F32'; shape: number[]; data: Float32Array }> = {};
            for (const n of noiseNames) t[n] = { dtype: 'F32', shape: gf.tensors.get(n)!.shape, data: await g(n) };
            writeFileSync(`${base}-noise.safetensors`, encodeSafetensors(t));
            args.push('--step-noise', `${base}-noise.safetensors`);
          }
          const log: string[] = [];
          expect(await main(args, { log: (l) => log.push(l) })).toBe(0);
          const d = await readDump(`${base}-dump.safetensors`);
          const cfg = c.guidance_scale > 1;
          const embeds = cfg ? Float32Array.from([...d['negative_prompt_embeds']!, ...d['prompt_embeds']!]) : d['prompt_embeds']!;
          const pooled = cfg ? Float32Array.from([...d['negative_pooled_prompt_embeds']!, ...d['pooled_prompt_embeds']!]) : d['pooled_prompt_embeds']!;
          const refLatents = await g('latents_final');
          const errs = {
            embeds: maxAbsDiff(embeds, await g('prompt_embeds')),
            pooled: maxAbsDiff(pooled, await g('add_text_embeds')),
            timeIds: maxAbsDiff(d['add_time_ids']!, await g('add_time_ids')),
            latents: maxAbsDiff(d['latents']!, refLatents),
            image: maxAbsDiff(d['image']!, await g('image')),
          };
          console.log(`${fixture} ${variant ?? 'fp32'} ${c.name} (max|ref latents| ${maxAbs(refLatents).toFixed(1)}): ${JSON.stringify(errs)}`);
          expect(errs.timeIds).toBe(0);
          if (!variant) {
            expect(errs.embeds).toBeLessThanOrEqual(1e-4);
            expect(errs.pooled).toBeLessThanOrEqual(1e-4);
            expect(errs.latents).toBeLessThanOrEqual(Math.max(1e-3, 1e-5 * maxAbs(refLatents)));
            expect(errs.image).toBeLessThanOrEqual(1e-3);
          } else {
            expect(errs.embeds).toBeLessThanOrEqual(2e-2);
            expect(errs.image).toBeLessThanOrEqual(5e-2);
          }
          const text = await readPngText(new Uint8Array(readFileSync(`${base}.png`)));
          expect(text['parameters']).toContain(`Steps: ${c.num_inference_steps}`);
          expect(text['parameters']!.startsWith(c.prompt)).toBe(true);
        });
      }
    });
  }
}
