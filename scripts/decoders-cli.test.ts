/**
 * `--vae DIR`: another VAE replaces the model's (its own VAE gives the same image; another one a different
 * image; a folder that is not an AutoencoderKL is refused).
 * `npm run generate -- --decoder taesd`: the same denoising as the full decoder (same final latents), the
 * image made by the tiny decoder (equal to running the TAESD graph on those latents), named in the PNG;
 * a folder that is not an AutoencoderTiny is refused.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { fileSource } from '../workers/model/safetensors.node.js';
import { buildTaesdDecoderGraph, type TaesdConfig } from '../workers/model/taesd';
import { FIXTURES, fixtureDir } from '../workers/model/testing/fixtures.node';
import { maxAbsDiff, runWasm } from '../workers/model/testing/run-wasm.node';
import { WeightIndex } from '../workers/model/weights';
import { readPngText } from '../workers/pipeline/png';
import { readTensors, runGenerate } from './golden-helpers.node';

const tmp = mkdtempSync(join(tmpdir(), 'taesd-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const taesdDir = join(FIXTURES, 'tiny-taesd');

async function dump(path: string) {
  const t = await readTensors(path);
  return { latents: t['latents']!.data, image: t['image']!.data, shape: t['latents']!.shape };
}

const run = (extra: string[], name: string) =>
  runGenerate(['--model', fixtureDir('tiny-sdxl'), '--prompt', 'a koala', '--steps', '3', '--seed', '5', '--out', join(tmp, `${name}.png`), '--dump', join(tmp, `${name}.safetensors`), ...extra]);

describe('generate --decoder taesd', () => {
  it('decodes the same latents with the tiny decoder', async () => {
    expect((await run([], 'full')).code).toBe(0);
    const r = await run(['--decoder', 'taesd', '--taesd', taesdDir], 'taesd');
    expect(r.code, r.log).toBe(0);
    const full = await dump(join(tmp, 'full.safetensors'));
    const tiny = await dump(join(tmp, 'taesd.safetensors'));
    expect(maxAbsDiff(tiny.latents, full.latents)).toBe(0);
    expect(maxAbsDiff(tiny.image, full.image)).toBeGreaterThan(0.05);
    const config = JSON.parse(readFileSync(join(taesdDir, 'config.json'), 'utf8')) as TaesdConfig;
    const weights = await WeightIndex.open([fileSource(join(taesdDir, 'diffusion_pytorch_model.safetensors'))]);
    const [b, , h, w] = tiny.shape;
    const ref = (await runWasm(buildTaesdDecoderGraph(config, weights, { batch: b!, height: h!, width: w! }), { latents_scaled: tiny.latents })).image.data;
    const H = h! * 8, W = w! * 8;
    let err = 0;
    for (let p = 0; p < H * W; p++) for (let c = 0; c < 3; c++) err = Math.max(err, Math.abs(tiny.image[p * 3 + c]! - Math.min(1, Math.max(0, ref[c * H * W + p]! / 2 + 0.5))));
    expect(err).toBeLessThanOrEqual(1e-6);
    expect((await readPngText(new Uint8Array(readFileSync(join(tmp, 'taesd.png')))))['parameters']).toContain('Decoder: TAESD');
  });

  it('refuses a folder that is not an AutoencoderTiny, and a bad --decoder', async () => {
    const r = await run(['--decoder', 'taesd', '--taesd', join(fixtureDir('tiny-sdxl'), 'vae')], 'bad');
    expect(r.code).toBe(2);
    expect(r.log).toMatch(/describes AutoencoderKL, not an AutoencoderTiny/);
    expect((await run(['--decoder', 'tiny'], 'bad2')).log).toContain('--decoder must be full or taesd, got "tiny"');
  });
});

describe('generate --vae', () => {
  it('decodes with the given VAE; a folder that is not an AutoencoderKL is refused', async () => {
    expect((await run([], 'base')).code).toBe(0);
    expect((await run(['--vae', join(fixtureDir('tiny-sdxl'), 'vae')], 'same')).code).toBe(0);
    const other = await run(['--vae', join(fixtureDir('tiny-koala'), 'vae')], 'other');
    expect(other.code, other.log).toBe(0);
    expect(other.log).toMatch(/VAE: vae \(fp32\)/);
    const base = await dump(join(tmp, 'base.safetensors'));
    expect(maxAbsDiff((await dump(join(tmp, 'same.safetensors'))).image, base.image)).toBe(0);
    const o = await dump(join(tmp, 'other.safetensors'));
    expect(maxAbsDiff(o.latents, base.latents)).toBe(0);
    expect(maxAbsDiff(o.image, base.image)).toBeGreaterThan(0.05);
    const bad = await run(['--vae', taesdDir], 'badvae');
    expect(bad.code).toBe(2);
    expect(bad.log).toMatch(/describes AutoencoderTiny, not an AutoencoderKL/);
  });
});
