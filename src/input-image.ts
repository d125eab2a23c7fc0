/**
 * Image to image and inpainting on the page side: the input image and the painted mask, kept in the browser's
 * IndexedDB (their own database, apart from the gallery and the LoRA list) so a reload keeps them, plus the
 * pure helpers (the fit note, the gallery's Blob-free copy of the parameters) that input-image.test.ts tests.
 *
 * The engine does the real work: it decodes whatever the browser decodes, scales the image to cover the
 * chosen size and centre-crops it, resizes and binarizes the mask (white = repaint), and reports problems
 * as `bad-input` errors. The page only shows the image, paints the mask, and sends both as Blobs.
 */
import { createStore, del, get, set, type UseStore } from 'idb-keyval';
import type { GenerateParams } from '../workers/protocol';
import { stripLoraBlobs, type SavedParams } from './lora-store';
import type { GenerationMode } from './settings';

export interface InputImage {
  blob: Blob;
  /** File name, or where it came from ("pasted image", "gallery image, seed 7"). */
  name: string;
  /** Pixel size as the browser decodes it; absent when the page could not decode it (the engine will say why). */
  width?: number;
  height?: number;
}

/**
 * What happens to an input of `w`×`h` for an output of `W`×`H` (the engine's fit: scale to cover, then
 * centre-crop): null when the sizes match.
 */
export function fitNote(w: number | undefined, h: number | undefined, W: number, H: number): string | null {
  if (!w || !h || (w === W && h === H)) return null;
  // Same aspect ratio: a plain scale; otherwise the longer side is cropped.
  if (w * H === h * W) return `Scaled to ${W}×${H}`;
  return `Scaled to cover ${W}×${H} and centre-cropped`;
}

/** The image's decoded size, or undefined when the browser cannot decode it. */
export async function imageSize(blob: Blob): Promise<{ width: number; height: number } | undefined> {
  try {
    const bmp = await createImageBitmap(blob);
    const out = { width: bmp.width, height: bmp.height };
    bmp.close();
    return out;
  } catch {
    return undefined;
  }
}

export async function describeInput(blob: Blob, name: string): Promise<InputImage> {
  return { blob, name, ...(await imageSize(blob)) };
}

/** The first image file in a paste or drop, if any. */
export function imageFileOf(data: DataTransfer | null, anyFile = false): File | undefined {
  if (!data) return undefined;
  const files = Array.from(data.files ?? []);
  const fromItems = Array.from(data.items ?? [])
    .filter((i) => i.kind === 'file')
    .map((i) => i.getAsFile())
    .filter((f): f is File => !!f);
  const all = files.length ? files : fromItems;
  return all.find((f) => f.type.startsWith('image/')) ?? (anyFile ? all[0] : undefined);
}

/**
 * The parameters as the gallery keeps them: no Blobs. The input image and mask are left out on purpose: every
 * image of a batch would keep its own copy of a possibly large photo, and "Use as input" on the result (or the
 * hash in the PNG's parameters) is how a chain of edits is followed. The mode is written in (the request does
 * not carry it; the engine derives it), so the card can say what the image was made from.
 */
export function toSavedParams(params: GenerateParams | SavedParams, mode: GenerationMode = 'txt2img'): SavedParams {
  const { initImage: _i, maskImage: _m, ...rest } = params as GenerateParams;
  void _i;
  void _m;
  const saved = stripLoraBlobs(rest as SavedParams);
  if (mode === 'txt2img') {
    const { strength: _s, mode: _mode, ...plain } = saved;
    void _s;
    void _mode;
    return plain;
  }
  return { ...saved, mode };
}

/** "Image → image · strength 0.5" for a gallery card, or null for text to image. */
export function modeLabel(p: Pick<SavedParams, 'mode' | 'strength'>): string | null {
  if (!p.mode) return null;
  const name = p.mode === 'inpaint' ? 'Inpaint' : 'Image → image';
  return p.strength !== undefined ? `${name} · strength ${Number(p.strength.toFixed(2))}` : name;
}

// ---- IndexedDB ------------------------------------------------------------------------------------

let store: UseStore | null = null;
function inputStore(): UseStore {
  store ??= createStore('koala-web-inputs', 'inputs');
  return store;
}

interface StoredInput {
  blob: Blob;
  name: string;
}

/** The input image and mask kept from the last visit (either may be absent). */
export async function loadInputs(): Promise<{ input: InputImage | null; mask: Blob | null }> {
  const [img, mask] = await Promise.all([get<StoredInput>('image', inputStore()), get<Blob>('mask', inputStore())]);
  const input = img && img.blob instanceof Blob ? await describeInput(img.blob, typeof img.name === 'string' ? img.name : 'input image') : null;
  return { input, mask: mask instanceof Blob ? mask : null };
}

export async function saveInputImage(input: InputImage | null): Promise<void> {
  if (input) await set('image', { blob: input.blob, name: input.name } satisfies StoredInput, inputStore());
  else await del('image', inputStore());
}

export async function saveMask(mask: Blob | null): Promise<void> {
  if (mask) await set('mask', mask, inputStore());
  else await del('mask', inputStore());
}
