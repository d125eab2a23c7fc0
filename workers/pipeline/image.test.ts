import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readSafetensorsHeader, readTensorF32 } from '../model/safetensors';
import { fileSource } from '../model/safetensors.node';
import { unitToRgba, vaeOutputToUnit } from './image';

describe('VAE output → image', () => {
  it('maps, clamps and rounds like diffusers (half to even)', () => {
    // [1, 3, 1, 2]: R = [-1, 1], G = [0, 3], B = [-3, 0.00392156862745098 * 2 - 1]
    const unit = vaeOutputToUnit(Float32Array.from([-1, 1, 0, 3, -3, 1 / 255 - 1]), 1, 1, 2);
    expect(Array.from(unit.subarray(0, 3))).toEqual([0, 0.5, 0]);
    expect(unit[3]).toBe(1);
    expect(unit[4]).toBe(1);
    const px = unitToRgba(Float32Array.from([0.5 / 255, 1.5 / 255, 2.5 / 255, 1, 0, 0.5]), 1, 2);
    // 0.5 → 0, 1.5 → 2, 2.5 → 2 (numpy rounds half to even); 0.5·255 = 127.5 → 128
    expect(Array.from(px)).toEqual([0, 2, 2, 255, 255, 0, 128, 255]);
    expect(() => vaeOutputToUnit(new Float32Array(5), 1, 1, 2)).toThrow(/expected \[1, 3, 1, 2\] = 6 values, got 5/);
  });

  for (const fixture of ['tiny-sdxl', 'tiny-koala']) {
    it(`reproduces every pipeline golden's image from image_decoded bit-exactly (${fixture})`, async () => {
      const dir = join(__dirname, '../../test/fixtures', fixture, 'goldens');
      const files = readdirSync(dir).filter((f) => f.startsWith('pipeline_'));
      expect(files.length).toBeGreaterThan(2);
      for (const name of files) {
        const f = await readSafetensorsHeader(fileSource(join(dir, name)));
        const shape = f.tensors.get('image_decoded')!.shape as [number, number, number, number];
        const unit = vaeOutputToUnit(await readTensorF32(f, 'image_decoded'), shape[0], shape[2], shape[3]);
        expect(unit).toEqual(await readTensorF32(f, 'image'));
      }
    });
  }
});
