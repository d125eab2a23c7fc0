/**
 * Past results, kept in the browser's IndexedDB (its own database, apart from the engine's model cache),
 * so they survive reloads and worker restarts. Each entry keeps the PNG and the settings that made it.
 */
import { createStore, del, entries, set, type UseStore } from 'idb-keyval';
import type { SavedParams } from './lora-store';
import type { Settings } from './settings';

export interface GalleryItem {
  id: string;
  createdAt: number;
  png: Blob;
  width: number;
  height: number;
  seed: number;
  /** A1111 `parameters` text, as embedded in the PNG. */
  parameters: string;
  /** The request's parameters; local LoRA files by name only (the bytes stay in the LoRA list). */
  params: SavedParams;
  /** Page settings that reproduce this image (seed locked to `seed`). */
  settings: Settings;
  /** Seconds the whole generation took, when known. */
  seconds?: number;
}

let store: UseStore | null = null;
function galleryStore(): UseStore {
  store ??= createStore('koala-web-gallery', 'images');
  return store;
}

export async function listGallery(): Promise<GalleryItem[]> {
  const all = await entries<string, GalleryItem>(galleryStore());
  return all
    .map(([, v]) => v)
    .filter((v) => v && v.png instanceof Blob)
    .sort((a, b) => b.createdAt - a.createdAt);
}

export async function saveToGallery(item: GalleryItem): Promise<void> {
  await set(item.id, item, galleryStore());
}

export async function deleteFromGallery(id: string): Promise<void> {
  await del(id, galleryStore());
}

export function newGalleryId(): string {
  return `${Date.now().toString(36)}-${crypto.getRandomValues(new Uint32Array(1))[0]!.toString(36)}`;
}
