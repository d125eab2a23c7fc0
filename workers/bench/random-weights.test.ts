/**
 * The in-memory random checkpoint is byte-identical to the one `npm run fullsize:checkpoint` wrote for the
 * committed full-size goldens (test/fixtures/fullsize-goldens/koala-700m-s1/cases.json lists each file's
 * sha256): the CLIP-L text encoder (fp16, 246 MB) and the VAE (fp16) hashed from `randomSafetensors` reads of
 * 32 MiB ranges that start anywhere, not only at tensor boundaries.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FIXTURES } from '../model/testing/fixtures.node.js';
import { randomSafetensors } from './random-weights';

const cases = JSON.parse(readFileSync(join(FIXTURES, 'fullsize-goldens/koala-700m-s1/cases.json'), 'utf8')) as { model_files: { file: string; bytes: number; sha256: string }[] };
const keys = (name: string) => (JSON.parse(readFileSync(join(FIXTURES, 'koala-configs', `${name}.keys.json`), 'utf8')) as { tensors: Record<string, number[]> }).tensors;

describe('seeded random weights (bench checkpoint)', () => {
  it.each([
    ['text_encoder/model.fp16.safetensors', 'clip-vit-l-text-encoder'],
    ['vae/diffusion_pytorch_model.fp16.safetensors', 'sdxl-vae'],
  ])('%s equals the golden checkpoint byte for byte', { timeout: 120_000 }, async (file, config) => {
    const want = cases.model_files.find((f) => f.file === file)!;
    const src = randomSafetensors(file, keys(config), 'F16', 1);
    expect(src.size).toBe(want.bytes);
    const hash = createHash('sha256');
    const step = 32 * 2 ** 20 + 777; // ranges that cut through tensors
    for (let at = 0; at < src.size; at += step) hash.update(await src.read(at, Math.min(step, src.size - at)));
    expect(hash.digest('hex')).toBe(want.sha256);
  });
});
