import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EngineError, type GenerateParams } from '../protocol';
import { assertValidParams, LIMITS, validateParams } from './params';
import { addTimeIds, addTimeIdsBatch } from './time-ids';
import { readSafetensorsHeader, readTensorF32 } from '../model/safetensors';
import { fileSource } from '../model/safetensors.node';

const ok: GenerateParams = {
  model: { repo: 'etri-vilab/koala-700m-llava-cap' },
  prompt: '',
  steps: 25,
  guidance: 7.5,
  scheduler: 'euler',
  width: 1024,
  height: 1024,
  seed: 0,
  numImages: 1,
};

describe('validateParams', () => {
  it('accepts valid parameters (empty prompt allowed, edges included)', () => {
    expect(validateParams(ok)).toEqual([]);
    expect(validateParams({ ...ok, width: 48, height: 2048, steps: 1000, guidance: 0, seed: 2 ** 32 - 1, numImages: 8, negativePrompt: '' })).toEqual([]);
    expect(validateParams({ ...ok, width: 32, steps: 1, originalSize: [512, 512], cropTopLeft: [0, 0], targetSize: [1024, 1024], previewEvery: 0 })).toEqual([]);
  });

  it.each([
    [{ width: 1023 }, 'width must be a multiple of 8, got 1023 (nearest: 1024)'],
    [{ height: 24 }, 'height must be from 32 to 2048 pixels, got 24'],
    [{ height: 2056 }, 'height must be from 32 to 2048 pixels, got 2056'],
    [{ width: '512' }, 'width must be an integer number of pixels, got "512"'],
    [{ steps: 0 }, 'steps must be an integer from 1 to 1000, got 0'],
    [{ steps: 1001 }, 'steps must be an integer from 1 to 1000, got 1001'],
    [{ steps: 2.5 }, 'steps must be an integer from 1 to 1000, got 2.5'],
    [{ guidance: NaN }, 'guidance must be a finite number ≥ 0, got NaN'],
    [{ guidance: Infinity }, 'guidance must be a finite number ≥ 0, got Infinity'],
    [{ guidance: -1 }, 'guidance must be a finite number ≥ 0, got -1'],
    [{ numImages: 0 }, 'numImages must be an integer from 1 to 8, got 0'],
    [{ numImages: 9 }, 'numImages must be an integer from 1 to 8, got 9'],
    [{ seed: -1 }, 'seed must be an integer from 0 to 4294967295, got -1'],
    [{ seed: 2 ** 32 }, 'seed must be an integer from 0 to 4294967295, got 4294967296'],
    [{ scheduler: 'heun' }, 'scheduler must be one of euler, euler-a, dpmpp-2m, dpmpp-2m-karras, ddim, got "heun"'],
    [{ prompt: 3 }, 'prompt must be a string, got 3'],
    [{ negativePrompt: null }, 'negativePrompt must be a string or absent, got null'],
    [{ timestepSpacing: 'odd' }, 'timestepSpacing must be leading, trailing or linspace, got "odd"'],
    [{ cropTopLeft: [-1, 0] }, 'cropTopLeft [top, left] must be two integers from 0 to 16384, got [-1,0]'],
    [{ originalSize: [0, 5] }, 'originalSize [height, width] must be two integers from 1 to 16384, got [0,5]'],
    [{ precision: 'fp8' }, 'precision must be fp32 or fp16, got "fp8"'],
    [{ previewEvery: -2 }, 'previewEvery must be an integer ≥ 0 (0 = no previews), got -2'],
    [{ model: { repo: ' ' } }, 'model.repo must name a model (e.g. "etri-vilab/koala-700m-llava-cap")'],
  ] as Array<[Record<string, unknown>, string]>)('rejects %j', (change, message) => {
    expect(validateParams({ ...ok, ...change })).toEqual([message]);
  });

  it('honours a model-specific size multiple', () => {
    expect(validateParams({ ...ok, width: 1000 }, { sizeMultiple: 16 })).toEqual(['width must be a multiple of 16, got 1000 (nearest: 1008)']);
    expect(LIMITS.maxSize).toBe(2048);
  });

  it('throws one bad-input EngineError listing every problem', () => {
    try {
      assertValidParams({ ...ok, steps: 0, width: 7 });
      throw new Error('no throw');
    } catch (e) {
      expect(e).toBeInstanceOf(EngineError);
      expect((e as EngineError).code).toBe('bad-input');
      expect((e as Error).message).toBe(
        'Invalid generation parameters: width must be a multiple of 8, got 7 (nearest: 8); steps must be an integer from 1 to 1000, got 0.',
      );
    }
    expect(() => assertValidParams(ok)).not.toThrow();
    expect(validateParams(null)).toEqual(['parameters must be an object']);
  });
});

describe('add_time_ids', () => {
  it('uses diffusers defaults and explicit values', () => {
    expect(Array.from(addTimeIds({ width: 1024, height: 768 }))).toEqual([768, 1024, 0, 0, 768, 1024]);
    expect(Array.from(addTimeIds({ width: 1024, height: 768, originalSize: [512, 256], cropTopLeft: [16, 8], targetSize: [1024, 1024] }))).toEqual([
      512, 256, 16, 8, 1024, 1024,
    ]);
    expect(Array.from(addTimeIdsBatch({ width: 64, height: 48 }, 2, true))).toEqual(Array(4).fill([48, 64, 0, 0, 48, 64]).flat());
    expect(addTimeIdsBatch({ width: 64, height: 48 }, 1, false)).toHaveLength(6);
    expect(() => addTimeIdsBatch({ width: 64, height: 48 }, 0, false)).toThrow(/batch must be a positive integer/);
  });

  for (const fixture of ['tiny-sdxl', 'tiny-koala']) {
    it(`matches every pipeline golden's add_time_ids (${fixture})`, async () => {
      const dir = join(__dirname, '../../test/fixtures', fixture, 'goldens');
      const cases = (JSON.parse(readFileSync(join(dir, 'cases.json'), 'utf8')) as {
        pipeline: Array<{ file: string; width: number; height: number; do_classifier_free_guidance: boolean; batch: number }>;
      }).pipeline;
      expect(cases.length).toBeGreaterThan(2);
      for (const c of cases) {
        const f = await readSafetensorsHeader(fileSource(join(dir, c.file)));
        const golden = await readTensorF32(f, 'add_time_ids');
        expect(addTimeIdsBatch({ width: c.width, height: c.height }, c.batch, c.do_classifier_free_guidance)).toEqual(golden);
      }
    });
  }
});
