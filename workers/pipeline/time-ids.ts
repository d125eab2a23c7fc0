/**
 * SDXL micro-conditioning: `add_time_ids = original_size + crops_coords_top_left + target_size`
 * = [orig_h, orig_w, crop_top, crop_left, target_h, target_w], with diffusers' defaults
 * original_size = target_size = (height, width) and crop (0, 0). The negative (unconditional)
 * time ids equal the positive ones (diffusers' default when no negative_* sizes are passed).
 */

export interface TimeIdParams {
  width: number;
  height: number;
  /** [h, w]; default [height, width]. */
  originalSize?: [number, number];
  /** [top, left]; default [0, 0]. */
  cropTopLeft?: [number, number];
  /** [h, w]; default [height, width]. */
  targetSize?: [number, number];
}

/** The six time ids of one image. */
export function addTimeIds(p: TimeIdParams): Float32Array {
  const [oh, ow] = p.originalSize ?? [p.height, p.width];
  const [ct, cl] = p.cropTopLeft ?? [0, 0];
  const [th, tw] = p.targetSize ?? [p.height, p.width];
  const ids = [oh, ow, ct, cl, th, tw];
  for (const v of ids) {
    if (!Number.isFinite(v)) throw new Error(`add_time_ids: every size and crop value must be a finite number, got [${ids.join(', ')}]`);
  }
  return Float32Array.from(ids);
}

/**
 * add_time_ids for a U-Net batch: [batch, 6], or [2·batch, 6] with classifier-free guidance
 * (negative rows first, then positive, as the pipeline's `torch.cat([negative, positive])`).
 */
export function addTimeIdsBatch(p: TimeIdParams, batch: number, cfg: boolean): Float32Array {
  if (!Number.isInteger(batch) || batch < 1) throw new Error(`add_time_ids: batch must be a positive integer, got ${batch}`);
  const ids = addTimeIds(p);
  const rows = cfg ? 2 * batch : batch;
  const out = new Float32Array(rows * 6);
  for (let r = 0; r < rows; r++) out.set(ids, r * 6);
  return out;
}
