import { describe, expect, it } from 'vitest';
import { latentPreview } from './preview';

describe('latentPreview', () => {
  it('applies the SDXL factors per pixel (hand-computed)', () => {
    // [1, 4, 1, 2]: pixel 0 = zeros (bias only), pixel 1 = [1, 0, 0, 0]
    const lat = Float32Array.from([0, 1, 0, 0, 0, 0, 0, 0]);
    const px = latentPreview(lat, 1, 2);
    // pixel 0: bias (0.1084, -0.0175, -0.0011) → (1.1084/2·255, 0.9825/2·255, 0.9989/2·255) = (141.32, 125.27, 127.36)
    expect(Array.from(px.subarray(0, 4))).toEqual([141, 125, 127, 255]);
    // pixel 1: (0.3651+0.1084, 0.4232-0.0175, 0.4341-0.0011) = (0.4735, 0.4057, 0.4330)
    //   → (1.4735/2·255, 1.4057/2·255, 1.4330/2·255) = (187.87, 179.23, 182.71)
    expect(Array.from(px.subarray(4, 8))).toEqual([188, 179, 183, 255]);
  });

  it('uses all four channels and clamps', () => {
    // one pixel, channels [1, 2, -1, 0.5]
    // R = 0.3651 - 0.5066 - 0.1076 - 0.15825 + 0.1084 = -0.29845 → 0.350775·255 = 89.45 → 89
    // G = 0.4232 - 0.0084 - 0.1111 - 0.1246 - 0.0175 = 0.1616 → 0.5808·255 = 148.10 → 148
    // B = 0.4341 + 0.2136 + 0.0362 - 0.1094 - 0.0011 = 0.5734 → 0.7867·255 = 200.61 → 201
    expect(Array.from(latentPreview(Float32Array.from([1, 2, -1, 0.5]), 1, 1))).toEqual([89, 148, 201, 255]);
    expect(Array.from(latentPreview(Float32Array.from([100, 0, 0, 0]), 1, 1))).toEqual([255, 255, 255, 255]);
    expect(Array.from(latentPreview(Float32Array.from([-100, 0, 0, 0]), 1, 1))).toEqual([0, 0, 0, 255]);
  });

  it('picks image k of a batch and checks shapes', () => {
    const lat = new Float32Array(2 * 4 * 2 * 3);
    lat.fill(1, 24, 30); // image 1, channel 0
    expect(Array.from(latentPreview(lat, 2, 3, 1).subarray(0, 4))).toEqual([188, 179, 183, 255]);
    expect(Array.from(latentPreview(lat, 2, 3, 0).subarray(0, 4))).toEqual([141, 125, 127, 255]);
    expect(() => latentPreview(lat, 2, 3, 2)).toThrow(/image 2 of a batch of 2/);
    expect(() => latentPreview(new Float32Array(10), 2, 3)).toThrow(/not a whole number of \[4, 2, 3\] images/);
  });
});
