/**
 * `npm run test:fullsize` (opt-in; ~15–25 min on 2 cores): the CLI at full size against diffusers/transformers.
 *
 * For every golden folder under test/fixtures/fullsize-goldens/<model>-s<seed>/ (made by
 * scripts/fullsize/goldens.py with diffusers 0.30.3 + transformers on CPU, fp32), the seeded random-weight
 * checkpoint is regenerated when missing (scripts/fullsize/checkpoint.ts) in
 * ${KOALA_FULLSIZE_ROOT:-$TMPDIR}/koala-fullsize-<model>-s<seed> (~9.4 GiB for KOALA-700M), then:
 * - every component input (`<w>/<component>[_<size>].inputs.safetensors`) runs through `npm run component`'s
 *   code (runComponent) on the wasm backend and each output is held to max|err| / max|ref| ≤ 1e-3 for the fp32
 *   weights, ≤ 3e-2 for the fp16 weight files (both against diffusers run on the same weight file);
 * - the pipeline case runs through `npm run generate`'s code (runGenerate with --latents and --dump):
 *   embeddings and final latents ≤ 1e-3 relative (fp16 files: 3e-2), the [0,1] image ≤ 1e-2 absolute.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runComponent, type Component } from '../../scripts/component';
import { compareFiles } from '../../scripts/fullsize/compare';
import { FULLSIZE_MODELS, writeRandomCheckpoint, type FullsizeModel } from '../../scripts/fullsize/checkpoint';
import { runGenerate } from '../../scripts/generate';
import { parseGenerateArgs } from '../../scripts/generate-args';

const ROOT = resolve(import.meta.dirname, '../fixtures/fullsize-goldens');
const TOL = { fp32: 1e-3, fp16: 3e-2 } as const;
const IMAGE_TOL = 1e-2;

interface PipelineCase {
  name: string;
  prompt: string;
  negative_prompt: string;
  steps: number;
  guidance: number;
  width: number;
  height: number;
  latents: string;
  expected: string;
}

/** KOALA_FULLSIZE_SETS=koala-700m-s7,… picks golden sets (default: every one under ROOT). */
const picked = process.env.KOALA_FULLSIZE_SETS?.split(',').filter(Boolean);
const sets = (existsSync(ROOT) ? readdirSync(ROOT).filter((d) => /^[a-z0-9-]+-s\d+$/.test(d)) : []).filter(
  (d) => !picked || picked.includes(d),
);

describe.each(sets.map((s) => [s]))('full size vs diffusers: %s', (set) => {
  const m = /^(.*)-s(\d+)$/.exec(set)!;
  const model = m[1] as FullsizeModel;
  const seed = Number(m[2]);
  const goldens = join(ROOT, set);
  // one checkpoint folder per set, under $KOALA_FULLSIZE_ROOT (default the temp folder)
  const dir = join(process.env.KOALA_FULLSIZE_ROOT ?? tmpdir(), `koala-fullsize-${model}-s${seed}`);
  const out = mkdtempSync(join(tmpdir(), 'koala-fullsize-out-'));
  const cases = JSON.parse(readFileSync(join(goldens, 'cases.json'), 'utf8')) as { pipeline?: PipelineCase[] };

  beforeAll(() => {
    expect(FULLSIZE_MODELS).toContain(model);
    const info = writeRandomCheckpoint({ out: dir, model, seed, variants: ['fp32', 'fp16'], log: (l) => console.log(`[fullsize] ${l}`) });
    console.log(`[fullsize] checkpoint ${info.dir}: ${info.bytesWritten ? `written in ${info.seconds.toFixed(0)} s` : 'already there'}`);
  }, 1_800_000);

  for (const w of ['fp32', 'fp16'] as const) {
    const wdir = join(goldens, w);
    if (!existsSync(wdir)) continue;
    const inputs = readdirSync(wdir)
      .filter((f) => f.endsWith('.inputs.safetensors'))
      .sort();
    for (const file of inputs) {
      const name = file.replace('.inputs.safetensors', '');
      const component = name.replace(/_\d{2,}$/, '') as Component; // unet_256 → unet; text_encoder_2 stays
      it(`${w} weights: ${name} through npm run component, max|err|/max|ref| <= ${TOL[w]}`, { timeout: 1_800_000 }, async () => {
        const dest = join(out, `${w}-${name}.safetensors`);
        const t0 = performance.now();
        await runComponent({
          model: dir,
          component,
          variant: w === 'fp16' ? 'fp16' : undefined,
          precision: 'fp32',
          inputs: join(wdir, file),
          out: dest,
        });
        const secs = (performance.now() - t0) / 1000;
        for (const d of await compareFiles(dest, join(wdir, `${name}.expected.safetensors`))) {
          console.log(
            `[fullsize] ${set} ${w} ${name}.${d.name}: max|err| ${d.maxAbsErr.toExponential(3)}, max|ref| ${d.maxAbsRef.toExponential(3)}, rel ${d.rel.toExponential(3)} (${secs.toFixed(0)} s)`,
          );
          expect(d.rel).toBeLessThanOrEqual(TOL[w]);
        }
      });
    }
    for (const p of cases.pipeline ?? []) {
      if (!existsSync(join(wdir, p.expected))) continue;
      it(
        `${w} weights: ${p.name} through npm run generate (${p.steps} steps, ${p.width}×${p.height}): image <= ${IMAGE_TOL}`,
        { timeout: 3_600_000 },
        async () => {
          const dump = join(out, `${w}-${p.name}.safetensors`);
          const argv = [
            '--model',
            dir,
            ...(w === 'fp16' ? ['--variant', 'fp16'] : []),
            '--prompt-style',
            'plain',
            '--prompt',
            p.prompt,
            '--negative-prompt',
            p.negative_prompt,
            '--steps',
            String(p.steps),
            '--guidance',
            String(p.guidance),
            '--width',
            String(p.width),
            '--height',
            String(p.height),
            '--latents',
            join(wdir, p.latents),
            '--dump',
            dump,
            '--out',
            join(out, `${w}-${p.name}.png`),
            '--quiet',
          ];
          await runGenerate(parseGenerateArgs(argv), { log: () => undefined });
          for (const d of await compareFiles(dump, join(wdir, p.expected))) {
            console.log(
              `[fullsize] ${set} ${w} ${p.name}.${d.name}: max|err| ${d.maxAbsErr.toExponential(3)}, max|ref| ${d.maxAbsRef.toExponential(3)}, rel ${d.rel.toExponential(3)}`,
            );
            if (d.name === 'image') expect(d.maxAbsErr).toBeLessThanOrEqual(IMAGE_TOL);
            else expect(d.rel).toBeLessThanOrEqual(TOL[w]);
          }
        },
      );
    }
  }
});

if (!sets.length) {
  describe('full size vs diffusers', () => {
    it('has golden sets', () => expect(sets.length).toBeGreaterThan(0));
  });
}
