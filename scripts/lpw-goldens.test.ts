/**
 * Long prompts and A1111 weights against diffusers' community `lpw_stable_diffusion_xl` (v0.30.3) on both
 * tiny fixtures (test/fixtures/lpw-goldens, made by scripts/goldens/lpw.py), through the generate CLI
 * (`--prompt-style weighted`, wasm backend) and its --dump:
 * - 5 prompt pairs (weights, nesting, escapes, 3-chunk prompt, 2-chunk negative): the four embeddings,
 *   ≤ 1e-4 abs for the fp32 files and for the fp16 files (both computed in fp32; measured ≤ 6e-5);
 * - 2 whole 4-step runs from the stored latents (1 and 3 chunks): final latents ≤ 1e-3 abs or 1e-5 × max|ref|,
 *   image ≤ 1e-3 abs (the text-to-image tolerances of goldens/README.md).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FIXTURE_NAMES, FIXTURES, fixtureDir } from '../workers/model/testing/fixtures.node';
import { maxAbsDiff } from '../workers/model/testing/run-wasm.node';
import { maxAbs, readTensors, runGenerate, writeTensor } from './golden-helpers.node';

interface TextCase {
  index: number;
  prompt: string;
  negative: string;
  chunks: number;
  files: { fp32: string; fp16: string };
}
interface PipelineCase {
  index: number;
  file: string;
  prompt: string;
  negative: string;
  steps: number;
  guidance_scale: number;
  height: number;
  width: number;
}

const tmp = mkdtempSync(join(tmpdir(), 'lpw-goldens-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const EMBEDS = ['prompt_embeds', 'negative_prompt_embeds', 'pooled_prompt_embeds', 'negative_pooled_prompt_embeds'] as const;

/** The file's tensors as Float32Arrays. */
const readAll = async (path: string) => Object.fromEntries(Object.entries(await readTensors(path)).map(([k, t]) => [k, t.data]));

async function run(args: string[]): Promise<void> {
  const r = await runGenerate(args);
  if (r.code !== 0) throw new Error(`generate exited ${r.code}: ${r.log}`);
}

for (const fixture of FIXTURE_NAMES) {
  const dir = resolve(FIXTURES, 'lpw-goldens', fixture);
  const cases = JSON.parse(readFileSync(join(dir, 'cases.json'), 'utf8')) as { text: TextCase[]; pipeline: PipelineCase[] };

  describe(`lpw_stable_diffusion_xl goldens, ${fixture}: weighted embeddings`, () => {
    for (const c of cases.text) {
      for (const variant of ['fp32', 'fp16'] as const) {
        it(`text ${c.index} (${c.chunks} chunk${c.chunks > 1 ? 's' : ''}), ${variant} files: ${JSON.stringify(c.prompt.slice(0, 40))}`, async () => {
          const ref = await readAll(join(dir, c.files[variant]));
          const dump = join(tmp, `${fixture}-text${c.index}-${variant}.safetensors`);
          await run([
            '--model', fixtureDir(fixture), '--prompt-style', 'weighted', '--prompt', c.prompt, '--negative-prompt', c.negative,
            '--steps', '1', '--guidance', '5', '--width', '32', '--height', '32', '--seed', '1', '--dump', dump, '--out', join(tmp, 'x.png'), '--quiet',
            ...(variant === 'fp16' ? ['--variant', 'fp16'] : []),
          ]);
          const d = await readAll(dump);
          const errs = Object.fromEntries(EMBEDS.map((k) => [k, maxAbsDiff(d[k]!, ref[k]!)]));
          console.log(`[lpw] ${fixture} text ${c.index} ${variant}: ${JSON.stringify(errs)}`);
          for (const k of EMBEDS) expect(errs[k]).toBeLessThanOrEqual(1e-4);
          // and the sequence length is lpw's (chunks of bos + ≤75 + eos, the last one unpadded)
          expect(d['prompt_embeds']!.length).toBe(ref['prompt_embeds']!.length);
        });
      }
    }
  });

  describe(`lpw_stable_diffusion_xl goldens, ${fixture}: whole runs`, () => {
    for (const c of cases.pipeline) {
      it(`pipeline ${c.index}: ${c.steps} steps, guidance ${c.guidance_scale}, ${c.width}×${c.height}`, async () => {
        const ref = await readAll(join(dir, c.file));
        const latents = join(tmp, `${fixture}-p${c.index}-latents.safetensors`);
        writeTensor(latents, 'latents', { shape: [1, 4, c.height / 8, c.width / 8], data: ref['latents_init']! });
        const dump = join(tmp, `${fixture}-p${c.index}-dump.safetensors`);
        await run([
          '--model', fixtureDir(fixture), '--prompt-style', 'weighted', '--prompt', c.prompt, '--negative-prompt', c.negative,
          '--steps', String(c.steps), '--guidance', String(c.guidance_scale), '--width', String(c.width), '--height', String(c.height),
          '--scheduler', 'euler', '--seed', '1', '--latents', latents, '--dump', dump, '--out', join(tmp, `p${c.index}.png`), '--quiet',
        ]);
        const d = await readAll(dump);
        const errs: Record<string, number> = {
          ...Object.fromEntries(EMBEDS.map((k) => [k, maxAbsDiff(d[k]!, ref[k]!)])),
          latents: maxAbsDiff(d['latents']!, ref['latents_final']!),
          image: maxAbsDiff(d['image']!, ref['image']!),
        };
        console.log(`[lpw] ${fixture} pipeline ${c.index} (max|ref latents| ${maxAbs(ref['latents_final']!).toFixed(1)}): ${JSON.stringify(errs)}`);
        for (const k of EMBEDS) expect(errs[k]).toBeLessThanOrEqual(1e-4);
        expect(errs.latents).toBeLessThanOrEqual(Math.max(1e-3, 1e-5 * maxAbs(ref['latents_final']!)));
        expect(errs.image).toBeLessThanOrEqual(1e-3);
      });
    }
  });
}
