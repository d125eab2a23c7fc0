import { describe, expect, it } from 'vitest';
import { MODELS, findModel, parseSizeKey } from './models';
import {
  STORAGE_KEY,
  applyModelDefaults,
  defaultSettings,
  loadStoredSettings,
  mergeSettings,
  settingsFromUrl,
  settingsToUrl,
  storeSettings,
} from './settings';

describe('model catalogue', () => {
  it('has the KOALA, Lightning and SDXL defaults from the model cards', () => {
    const koala = findModel('etri-vilab/koala-700m-llava-cap');
    expect(koala.defaults).toEqual({ steps: 25, guidance: 7.5, scheduler: 'euler', spacing: 'leading' });
    expect(findModel('etri-vilab/koala-lightning-1b').defaults).toEqual({
      steps: 10,
      guidance: 3.5,
      scheduler: 'euler',
      spacing: 'trailing',
    });
    expect(findModel('stabilityai/stable-diffusion-xl-base-1.0').defaults).toMatchObject({ steps: 50, guidance: 5 });
    expect(MODELS.map((m) => m.repo)).toContain('etri-vilab/koala-700m');
    expect(MODELS.map((m) => m.repo)).toContain('etri-vilab/koala-1b-llava-cap');
    // fp16 KOALA-700M: 246 MB + 1389 MB text encoders, 1570 MB U-Net, 335 MB fp32 VAE, tokenizers.
    expect(koala.download!.fp16).toBe(3_544_000_000);
    expect(koala.download!.fp32).toBeGreaterThan(koala.download!.fp16 * 1.8);
  });

  it('accepts only offered sizes', () => {
    expect(parseSizeKey('1216x832')).toEqual([1216, 832]);
    expect(parseSizeKey('1000x1000')).toBeNull();
    expect(parseSizeKey('64x64<script>')).toBeNull();
  });

  it('makes up an entry for an unknown repo', () => {
    expect(findModel('test/tiny-sdxl')).toMatchObject({ repo: 'test/tiny-sdxl', family: 'custom', download: null });
  });
});

describe('settings', () => {
  it('applies a model’s defaults, keeping the prompt and seed', () => {
    const s = { ...defaultSettings(), prompt: 'p', seed: 7 };
    const l = applyModelDefaults(s, 'etri-vilab/koala-lightning-700m');
    expect(l).toMatchObject({
      prompt: 'p',
      seed: 7,
      steps: 10,
      guidance: 3.5,
      spacing: 'trailing',
      model: 'etri-vilab/koala-lightning-700m',
    });
    const d = applyModelDefaults(s, 'demo/tiny-sdxl');
    expect([d.width, d.height]).toEqual([64, 64]);
  });

  it('validates untrusted values field by field', () => {
    const base = defaultSettings();
    const s = mergeSettings(base, {
      steps: '500',
      guidance: 'NaN',
      seed: -3,
      model: '../../etc',
      hub: 'javascript:alert(1)',
      scheduler: 'bogus',
      width: 1000,
      height: 1000,
      numImages: 9,
    });
    expect(s.steps).toBe(100);
    expect(s.guidance).toBe(base.guidance);
    expect(s.seed).toBe(0);
    expect(s.model).toBe(base.model);
    expect(s.hub).toBe('');
    expect(s.scheduler).toBe('euler');
    expect([s.width, s.height]).toEqual([1024, 1024]);
    expect(s.numImages).toBe(4);
  });

  it('round-trips through localStorage and survives garbage', () => {
    const store = new Map<string, string>();
    const storage = { getItem: (k: string) => store.get(k) ?? null, setItem: (k: string, v: string) => void store.set(k, v) };
    const s = { ...defaultSettings(), prompt: 'a red fox', steps: 30, seedLocked: true, seed: 1234 };
    storeSettings(storage, s);
    expect(loadStoredSettings(storage)).toEqual(s);
    store.set(STORAGE_KEY, '{not json');
    expect(loadStoredSettings(storage)).toEqual(defaultSettings());
  });

  it('reads the shareable URL: model defaults first, then explicit values; hub and revision', () => {
    const base = defaultSettings();
    const { settings, fromUrl } = settingsFromUrl(
      base,
      '?model=test/tiny-sdxl&hub=http://127.0.0.1:8123/&revision=v1&prompt=a%20cat&steps=3&size=64x64&seed=9',
    );
    expect(fromUrl).toBe(true);
    expect(settings).toMatchObject({
      model: 'test/tiny-sdxl',
      hub: 'http://127.0.0.1:8123',
      revision: 'v1',
      prompt: 'a cat',
      steps: 3,
      width: 64,
      height: 64,
      seed: 9,
      seedLocked: true,
      guidance: 7.5,
    });
    const lightning = settingsFromUrl(base, '?model=etri-vilab/koala-lightning-700m').settings;
    expect(lightning).toMatchObject({ steps: 10, guidance: 3.5, spacing: 'trailing' });
    expect(settingsFromUrl(base, '').fromUrl).toBe(false);
  });

  it('writes a URL that reads back to the same settings', () => {
    const s = {
      ...defaultSettings(),
      prompt: 'a & b ? c',
      negativePrompt: 'blurry',
      hub: 'http://localhost:8123',
      revision: 'refs/pr/1',
      seed: 77,
      seedLocked: true,
      numImages: 2,
    };
    const url = settingsToUrl(s, 'https://example.org/app/?old=1#x');
    expect(url.startsWith('https://example.org/app/?prompt=a+%26+b')).toBe(true);
    expect(settingsFromUrl(defaultSettings(), new URL(url).search).settings).toEqual(s);
  });
});
