/**
 * VAE output → image values, exactly as diffusers' `VaeImageProcessor.postprocess` + `numpy_to_pil`:
 *   unit = clamp(x / 2 + 0.5, 0, 1)          (float32, NCHW → NHWC)
 *   byte = round_half_even(unit · 255)       (float32 multiply, numpy's rounding)
 */

import { roundHalfEven } from './scheduler-math';

const f32 = Math.fround;

/** [B, 3, H, W] decoded image (≈ [-1, 1]) → [B, H, W, 3] in [0, 1] (diffusers' output_type='np'). */
export function vaeOutputToUnit(decoded: Float32Array, batch: number, height: number, width: number): Float32Array {
  const plane = height * width;
  if (decoded.length !== batch * 3 * plane) {
    throw new Error(`VAE output: expected [${batch}, 3, ${height}, ${width}] = ${batch * 3 * plane} values, got ${decoded.length}`);
  }
  const out = new Float32Array(decoded.length);
  for (let b = 0; b < batch; b++) {
    for (let c = 0; c < 3; c++) {
      const src = (b * 3 + c) * plane;
      for (let p = 0; p < plane; p++) {
        const v = f32(f32(decoded[src + p]! / 2) + 0.5);
        out[(b * plane + p) * 3 + c] = v < 0 ? 0 : v > 1 ? 1 : v; // NaN stays NaN → byte 0
      }
    }
  }
  return out;
}

/** Image `index` of [B, H, W, 3] unit values → RGBA bytes (alpha 255). */
export function unitToRgba(unit: Float32Array, height: number, width: number, index = 0): Uint8ClampedArray {
  const plane = height * width;
  if (unit.length % (plane * 3) !== 0 || index < 0 || (index + 1) * plane * 3 > unit.length) {
    throw new Error(`image: ${unit.length} values hold no image ${index} of size ${height}x${width}x3`);
  }
  const out = new Uint8ClampedArray(plane * 4);
  const o = index * plane * 3;
  for (let p = 0; p < plane; p++) {
    for (let c = 0; c < 3; c++) {
      const v = unit[o + p * 3 + c]!;
      out[p * 4 + c] = Number.isNaN(v) ? 0 : roundHalfEven(f32(v * 255));
    }
    out[p * 4 + 3] = 255;
  }
  return out;
}
