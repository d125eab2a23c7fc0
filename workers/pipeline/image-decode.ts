/**
 * Decoding an image file the user gave (PNG, JPEG, WebP, … whatever the browser decodes) to RGBA in the
 * worker: createImageBitmap + OffscreenCanvas. Browser-only (Node's CLI reads PNG with fast-png).
 */
import { EngineError } from '../protocol';
import type { RgbaImage } from './init-image';

export async function decodeImageBlob(blob: Blob, what: string): Promise<RgbaImage> {
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(blob, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
  } catch (e) {
    throw new EngineError('bad-input', `The ${what} could not be decoded (${(e as Error).message || 'unsupported format'}); use a PNG, JPEG or WebP file.`);
  }
  try {
    const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
    const ctx = canvas.getContext('2d');
    if (!ctx) throw new EngineError('internal', 'No 2D canvas in this browser worker');
    ctx.drawImage(bitmap, 0, 0);
    const { data, width, height } = ctx.getImageData(0, 0, bitmap.width, bitmap.height);
    return { data, width, height };
  } finally {
    bitmap.close();
  }
}
