/**
 * Fast preview: SDXL latents → RGB with a per-pixel linear map (ComfyUI's SDXL factors, see
 * REFERENCE.md "Fast previews"), applied to the predicted x0 of a step (not to the noisy sample).
 * Output is RGBA at latent resolution (H/8 × W/8); the page scales it up.
 */

/** rows = latent channels 0..3, columns = R, G, B. */
export const SDXL_LATENT_RGB_FACTORS: ReadonlyArray<readonly [number, number, number]> = [
  [0.3651, 0.4232, 0.4341],
  [-0.2533, -0.0042, 0.1068],
  [0.1076, 0.1111, -0.0362],
  [-0.3165, -0.2492, -0.2188],
];
export const SDXL_LATENT_RGB_BIAS: readonly [number, number, number] = [0.1084, -0.0175, -0.0011];

/**
 * RGBA preview of image `index` of NCHW float latents [B, 4, height, width] (unscaled latents, i.e.
 * before dividing by the VAE scaling factor). Each channel value v ∈ [-1, 1] maps to
 * round((v + 1) / 2 · 255), clamped; alpha is 255.
 */
export function latentPreview(latents: Float32Array, height: number, width: number, index = 0): Uint8ClampedArray {
  const plane = height * width;
  if (!Number.isInteger(height) || !Number.isInteger(width) || height < 1 || width < 1) {
    throw new Error(`preview: latent size must be positive integers, got ${height}x${width}`);
  }
  if (latents.length % (4 * plane) !== 0) {
    throw new Error(`preview: ${latents.length} latent values are not a whole number of [4, ${height}, ${width}] images`);
  }
  const batch = latents.length / (4 * plane);
  if (!Number.isInteger(index) || index < 0 || index >= batch) throw new RangeError(`preview: image ${index} of a batch of ${batch}`);
  const out = new Uint8ClampedArray(plane * 4);
  const o = index * 4 * plane;
  const F = SDXL_LATENT_RGB_FACTORS;
  const B = SDXL_LATENT_RGB_BIAS;
  for (let p = 0; p < plane; p++) {
    const l0 = latents[o + p]!;
    const l1 = latents[o + plane + p]!;
    const l2 = latents[o + 2 * plane + p]!;
    const l3 = latents[o + 3 * plane + p]!;
    for (let c = 0; c < 3; c++) {
      const v = l0 * F[0]![c]! + l1 * F[1]![c]! + l2 * F[2]![c]! + l3 * F[3]![c]! + B[c]!;
      out[p * 4 + c] = Math.round(((v + 1) / 2) * 255); // Uint8ClampedArray clamps to 0..255
    }
    out[p * 4 + 3] = 255;
  }
  return out;
}
