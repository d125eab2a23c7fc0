import 'fake-indexeddb/auto';
import { describe, expect, it } from 'vitest';
import { deleteFromGallery, listGallery, newGalleryId, saveToGallery, type GalleryItem } from './gallery';
import { defaultSettings } from './settings';

function item(createdAt: number, seed: number): GalleryItem {
  const settings = { ...defaultSettings(), seed, seedLocked: true };
  return {
    id: newGalleryId(),
    createdAt,
    png: new Blob([new Uint8Array([137, 80, 78, 71, seed])], { type: 'image/png' }),
    width: 64,
    height: 64,
    seed,
    parameters: `a koala\nSteps: 4, Seed: ${seed}`,
    params: {
      model: { repo: 'demo/tiny-sdxl' },
      prompt: 'a koala',
      steps: 4,
      guidance: 5,
      scheduler: 'euler',
      width: 64,
      height: 64,
      seed,
      numImages: 1,
    },
    settings,
  };
}

describe('gallery', () => {
  it('stores, lists newest first, and deletes', async () => {
    const a = item(1000, 1);
    const b = item(2000, 2);
    await saveToGallery(a);
    await saveToGallery(b);
    const listed = await listGallery();
    expect(listed.map((x) => x.seed)).toEqual([2, 1]);
    expect(new Uint8Array(await listed[0]!.png.arrayBuffer())).toEqual(new Uint8Array([137, 80, 78, 71, 2]));
    expect(listed[1]!.settings.seed).toBe(1);
    await deleteFromGallery(b.id);
    expect((await listGallery()).map((x) => x.id)).toEqual([a.id]);
  });
});
