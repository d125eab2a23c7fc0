import { describe, expect, it } from 'vitest';
import type { GenerateParams } from '../workers/protocol';
import { fitNote, modeLabel, toSavedParams } from './input-image';
import { defaultSettings, loadStoredSettings, mergeSettings, storeSettings } from './settings';

const params: GenerateParams = {
  model: { repo: 'test/tiny-sdxl' },
  prompt: 'a koala',
  steps: 4,
  guidance: 5,
  scheduler: 'euler',
  width: 64,
  height: 64,
  seed: 1,
  numImages: 1,
};

describe('input image helpers', () => {
  it('says how the engine fits the input to the chosen size', () => {
    expect(fitNote(64, 64, 64, 64)).toBeNull();
    expect(fitNote(undefined, undefined, 64, 64)).toBeNull();
    expect(fitNote(128, 128, 64, 64)).toBe('Scaled to 64×64');
    expect(fitNote(1200, 800, 1024, 1024)).toBe('Scaled to cover 1024×1024 and centre-cropped');
  });

  it('keeps no Blob in the gallery copy of the parameters, and writes the mode in', () => {
    const img = new Blob([new Uint8Array(10)], { type: 'image/png' });
    const withInputs: GenerateParams = {
      ...params,
      initImage: img,
      maskImage: img,
      strength: 0.5,
      loras: [{ name: 'x', scale: 1, source: { kind: 'local', name: 'x.safetensors', blob: img } }],
    };
    const saved = toSavedParams(withInputs, 'inpaint');
    expect('initImage' in saved).toBe(false);
    expect('maskImage' in saved).toBe(false);
    expect(saved.mode).toBe('inpaint');
    expect(saved.strength).toBe(0.5);
    expect(saved.loras![0]!.source).toEqual({ kind: 'local', name: 'x.safetensors' });
    expect(modeLabel(saved)).toBe('Inpaint · strength 0.5');
    const plain = toSavedParams({ ...params, strength: 0.3 });
    expect(plain.mode).toBeUndefined();
    expect(plain.strength).toBeUndefined();
    expect(modeLabel(plain)).toBeNull();
    expect(modeLabel({ mode: 'img2img', strength: 0.8 })).toBe('Image → image · strength 0.8');
  });

  it('persists mode, strength and the decoder settings, rejecting garbage', () => {
    const store = new Map<string, string>();
    const storage = { getItem: (k: string) => store.get(k) ?? null, setItem: (k: string, v: string) => void store.set(k, v) };
    const s = { ...defaultSettings(), mode: 'inpaint' as const, strength: 0.35, fastDecode: true, previewer: 'taesd' as const, taesdRepo: 'test/tiny-taesd' };
    storeSettings(storage, s);
    expect(loadStoredSettings(storage)).toEqual(s);
    const d = defaultSettings();
    expect(d).toMatchObject({ mode: 'txt2img', strength: 0.8, fastDecode: false, previewer: 'linear', taesdRepo: '' });
    const bad = mergeSettings(d, { mode: 'sketch', strength: 7, fastDecode: 'yes', previewer: 'vae', taesdRepo: 'not a repo' });
    expect(bad).toMatchObject({ mode: 'txt2img', strength: 1, fastDecode: false, previewer: 'linear', taesdRepo: '' });
  });
});
