/**
 * The input image of image-to-image: RGBA pixels of any size → the model's size → [1, 3, H, W] in [-1, 1]
 * (diffusers' `image_processor.preprocess`: x / 127.5 − 1).
 *
 * Sizing: an image of another size is scaled to COVER the target (aspect kept) and the overflow cut
 * equally from both sides (centre crop), so nothing is stretched; the page and the CLI say so. Scaling
 * is separable linear interpolation whose kernel widens with the shrink factor (an area-weighted
 * "triangle" filter, as PIL's BILINEAR resize does), so downscaled photos do not alias.
 */

export interface RgbaImage {
  /** width × height × 4 bytes. */
  data: Uint8Array | Uint8ClampedArray;
  width: number;
  height: number;
}

export interface FitReport {
  /** Source rectangle used (after the centre crop), in source pixels. */
  crop: { x: number; y: number; width: number; height: number };
  resized: boolean;
  /** One line for the user, e.g. "the 1200×800 input was scaled to 1536×1024 and cropped to 1024×1024 (centre)". */
  message?: string;
}

/** Resamples one channel-interleaved row set along one axis with a triangle filter (support grows when shrinking). */
function resampleAxis(src: Float32Array, srcLen: number, dstLen: number, offset: number, span: number, stride: number, lines: number, lineStride: number, channels: number): Float32Array {
  const scale = span / dstLen; // source pixels per destination pixel
  const support = Math.max(1, scale);
  const out = new Float32Array(dstLen * lines * channels);
  const weights: { first: number; w: Float32Array }[] = [];
  for (let d = 0; d < dstLen; d++) {
    const center = offset + (d + 0.5) * scale;
    const first = Math.max(0, Math.floor(center - support));
    const last = Math.min(srcLen - 1, Math.ceil(center + support));
    const w = new Float32Array(last - first + 1);
    let sum = 0;
    for (let s = first; s <= last; s++) {
      const x = Math.abs(s + 0.5 - center) / support;
      const v = x < 1 ? 1 - x : 0;
      w[s - first] = v;
      sum += v;
    }
    if (sum === 0) {
      const nearest = Math.min(srcLen - 1, Math.max(0, Math.floor(center)));
      weights.push({ first: nearest, w: Float32Array.of(1) });
    } else {
      for (let k = 0; k < w.length; k++) w[k]! /= sum;
      weights.push({ first, w });
    }
  }
  for (let l = 0; l < lines; l++) {
    for (let d = 0; d < dstLen; d++) {
      const { first, w } = weights[d]!;
      for (let c = 0; c < channels; c++) {
        let acc = 0;
        for (let k = 0; k < w.length; k++) acc += w[k]! * src[l * lineStride + (first + k) * stride + c]!;
        out[(l * dstLen + d) * channels + c] = acc;
      }
    }
  }
  return out;
}

/**
 * `img` as the model's input: [1, 3, height, width] in [-1, 1] (alpha ignored), scaled to cover and
 * centre-cropped when its size differs.
 */
export function fitInitImage(img: RgbaImage, width: number, height: number): { tensor: Float32Array; report: FitReport } {
  const { width: sw, height: sh } = img;
  if (!(sw > 0 && sh > 0) || img.data.length !== sw * sh * 4) throw new Error(`input image: ${sw}×${sh} pixels need ${sw * sh * 4} RGBA bytes, got ${img.data.length}`);
  const plane = width * height;
  const tensor = new Float32Array(3 * plane);
  if (sw === width && sh === height) {
    for (let p = 0; p < plane; p++) for (let c = 0; c < 3; c++) tensor[c * plane + p] = img.data[p * 4 + c]! / 127.5 - 1;
    return { tensor, report: { crop: { x: 0, y: 0, width: sw, height: sh }, resized: false } };
  }
  // cover: the larger scale factor; crop the overflow of the other axis evenly
  const scale = Math.max(width / sw, height / sh);
  const cw = width / scale;
  const ch = height / scale;
  const cx = (sw - cw) / 2;
  const cy = (sh - ch) / 2;
  const rgb = new Float32Array(sw * sh * 3);
  for (let p = 0; p < sw * sh; p++) for (let c = 0; c < 3; c++) rgb[p * 3 + c] = img.data[p * 4 + c]!;
  // horizontal: sh lines of sw pixels → width; then vertical: width columns of sh pixels → height
  const h1 = resampleAxis(rgb, sw, width, cx, cw, 3, sh, sw * 3, 3);
  const v = resampleAxis(transpose(h1, sh, width), sh, height, cy, ch, 3, width, sh * 3, 3);
  const out = transpose(v, width, height); // back to rows
  for (let p = 0; p < plane; p++) for (let c = 0; c < 3; c++) tensor[c * plane + p] = Math.min(255, Math.max(0, Math.round(out[p * 3 + c]!))) / 127.5 - 1;
  const crop = { x: Math.round(cx), y: Math.round(cy), width: Math.round(cw), height: Math.round(ch) };
  const cropped = crop.width !== sw || crop.height !== sh;
  const message = `the ${sw}×${sh} input was scaled to ${Math.round(sw * scale)}×${Math.round(sh * scale)}${cropped ? ` and its centre cropped to ${width}×${height}` : ''}`;
  return { tensor, report: { crop, resized: true, message } };
}

/** [lines, len, 3] → [len, lines, 3]. */
function transpose(a: Float32Array, lines: number, len: number): Float32Array {
  const out = new Float32Array(a.length);
  for (let l = 0; l < lines; l++) for (let p = 0; p < len; p++) for (let c = 0; c < 3; c++) out[(p * lines + l) * 3 + c] = a[(l * len + p) * 3 + c]!;
  return out;
}

/** The default model size for an input image: its own size rounded down to `multiple`, within [min, max] by scaling down. */
export function defaultSizeFor(img: { width: number; height: number }, multiple: number, max: number): { width: number; height: number } {
  const s = Math.min(1, max / Math.max(img.width, img.height));
  const r = (v: number) => Math.max(multiple, Math.floor((v * s) / multiple) * multiple);
  return { width: r(img.width), height: r(img.height) };
}

/**
 * An inpainting mask from RGBA pixels (white = repaint): grey level as PIL's "L" (299/587/114), sized like
 * the input image (cover + centre crop), then binarized at 0.5 as diffusers' mask processor does.
 * Returns [height × width] of 0/1.
 */
export function fitMask(img: RgbaImage, width: number, height: number): { mask: Float32Array; report: FitReport } {
  const grey = new Uint8Array(img.width * img.height * 4);
  for (let p = 0; p < img.width * img.height; p++) {
    const l = Math.floor((img.data[p * 4]! * 299 + img.data[p * 4 + 1]! * 587 + img.data[p * 4 + 2]! * 114) / 1000);
    grey[p * 4] = grey[p * 4 + 1] = grey[p * 4 + 2] = l;
    grey[p * 4 + 3] = 255;
  }
  const { tensor, report } = fitInitImage({ data: grey, width: img.width, height: img.height }, width, height);
  const plane = width * height;
  const mask = new Float32Array(plane);
  for (let p = 0; p < plane; p++) mask[p] = (tensor[p]! + 1) / 2 >= 0.5 ? 1 : 0;
  return { mask, report: report.message ? { ...report, message: report.message.replace('input', 'mask') } : report };
}
