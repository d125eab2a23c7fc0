import 'fake-indexeddb/auto';
import { describe, expect, it } from 'vitest';
import type { GenerateParams, LoraReport } from '../workers/protocol';
import { formatBytes } from './format';
import {
  activeLoraRefs,
  cannotAdd,
  clampScale,
  deleteLora,
  listLoras,
  loraTag,
  newLora,
  parseLoraText,
  reportSummary,
  saveLora,
  sourceText,
  stripLoraBlobs,
  uniqueName,
  type StoredLora,
} from './lora-store';

const MOCK = 'http://127.0.0.1:8123';
const local = (name: string, bytes: number[]) => ({ kind: 'local' as const, name, blob: new Blob([new Uint8Array(bytes)]) });

function report(p: Partial<LoraReport>): LoraReport {
  return {
    name: 'x',
    layout: 'kohya',
    modules: 24,
    matched: 24,
    perComponent: { unet: 16, text_encoder: 4, text_encoder_2: 4 },
    unmatched: [],
    unmatchedCount: 0,
    ...p,
  };
}

describe('parseLoraText', () => {
  it('takes owner/repo/file, owner/repo@rev/file and hub URLs; a bare ref gets the default hub', () => {
    expect(parseLoraText('nerijs/pixel-art-xl/pixel-art-xl.safetensors', MOCK)).toEqual({
      source: { kind: 'hub', repo: 'nerijs/pixel-art-xl', file: 'pixel-art-xl.safetensors', hubUrl: MOCK },
    });
    expect(parseLoraText(' a/b@v2/sub/dir/x.safetensors ')).toEqual({
      source: { kind: 'hub', repo: 'a/b', revision: 'v2', file: 'sub/dir/x.safetensors' },
    });
    expect(parseLoraText('https://huggingface.co/a/b/blob/main/x.safetensors', MOCK)).toEqual({
      source: { kind: 'hub', repo: 'a/b', revision: 'main', file: 'x.safetensors', hubUrl: 'https://huggingface.co' },
    });
  });

  it('explains what it cannot read', () => {
    expect(parseLoraText('   ')).toHaveProperty('error');
    expect((parseLoraText('pixel-art.safetensors') as { error: string }).error).toMatch(/not a hub file.*Add file/);
    expect((parseLoraText('hello world') as { error: string }).error).toMatch(/not a \.safetensors file of a hub repo/);
    expect((parseLoraText('https://huggingface.co/a/b') as { error: string }).error).toMatch(/not a hub file URL/);
    expect((parseLoraText('https://huggingface.co/a/b/resolve/main/x.bin') as { error: string }).error).toMatch(
      /x\.bin is not a \.safetensors/,
    );
  });
});

describe('list rules', () => {
  it('refuses duplicates and a ninth LoRA; names stay unique', () => {
    const a = newLora({ kind: 'hub', repo: 'a/b', file: 'x.safetensors' });
    expect(a.name).toBe('x');
    expect(a.scale).toBe(1);
    expect(cannotAdd([a], { kind: 'hub', repo: 'a/b', file: 'x.safetensors', revision: 'main' })).toMatch(/already in the list/);
    expect(cannotAdd([a], { kind: 'hub', repo: 'a/b', file: 'x.safetensors', revision: 'v2' })).toBeUndefined();
    const eight = Array.from({ length: 8 }, (_, i) => newLora(local(`f${i}.safetensors`, [i])));
    expect(cannotAdd(eight, local('z.safetensors', [1]))).toMatch(/At most 8/);
    expect(uniqueName([a], 'x')).toBe('x-2');
    expect(uniqueName([a], 'y')).toBe('y');
  });

  it('sends enabled LoRAs with scale > 0, in order, with allowPartial only when set', () => {
    const l = (name: string, scale: number, enabled?: boolean, allowPartial = false): StoredLora => ({
      ...newLora(local(`${name}.safetensors`, [1])),
      scale,
      enabled,
      allowPartial,
    });
    const refs = activeLoraRefs([l('a', 1), l('b', 0), l('c', 0.5, false), l('d', 2, true, true)]);
    expect(refs.map((r) => [r.name, r.scale, r.allowPartial])).toEqual([
      ['a', 1, undefined],
      ['d', 2, true],
    ]);
    expect(refs[0]!.source.kind).toBe('local');
  });

  it('clamps scales to 0..2 in steps of 0.01', () => {
    expect(clampScale(2.5)).toBe(2);
    expect(clampScale(-1)).toBe(0);
    expect(clampScale(0.333)).toBe(0.33);
    expect(clampScale(Number.NaN)).toBe(1);
  });
});

describe('gallery copy and wording', () => {
  it('strips local Blobs from the parameters; hub sources stay whole', () => {
    const params: GenerateParams = {
      model: { repo: 'test/tiny-sdxl' },
      prompt: 'p',
      steps: 2,
      guidance: 5,
      scheduler: 'euler',
      width: 64,
      height: 64,
      seed: 1,
      numImages: 1,
      loras: [
        { name: 'mine', source: local('mine.safetensors', [1, 2, 3]), scale: 0.75 },
        { name: 'hubby', source: { kind: 'hub', repo: 'a/b', file: 'hubby.safetensors', hubUrl: MOCK }, scale: 1, allowPartial: true },
      ],
    };
    const saved = stripLoraBlobs(params);
    expect(saved.loras).toEqual([
      { name: 'mine', source: { kind: 'local', name: 'mine.safetensors' }, scale: 0.75 },
      { name: 'hubby', source: { kind: 'hub', repo: 'a/b', file: 'hubby.safetensors', hubUrl: MOCK }, scale: 1, allowPartial: true },
    ]);
    expect(JSON.stringify(saved)).not.toContain('blob');
    expect(params.loras![0]!.source).toHaveProperty('blob'); // the request itself is untouched
    const none = { ...params, loras: undefined };
    expect(stripLoraBlobs(none)).toBe(none);
    expect(loraTag({ name: 'a', scale: 1 })).toBe('a:1');
    expect(loraTag({ name: 'a', scale: 0.55 })).toBe('a:0.55');
  });

  it('describes sources and match reports', () => {
    expect(sourceText(local('x.safetensors', new Array(1500).fill(0)), formatBytes)).toBe('local file, 1.50 kB');
    expect(sourceText({ kind: 'local', name: 'x.safetensors' }, formatBytes)).toBe('local file');
    expect(sourceText({ kind: 'hub', repo: 'a/b', file: 'x.safetensors', hubUrl: 'https://huggingface.co' }, formatBytes)).toBe(
      'a/b/x.safetensors',
    );
    expect(sourceText({ kind: 'hub', repo: 'a/b', revision: 'v2', file: 'x.safetensors', hubUrl: MOCK }, formatBytes)).toBe(
      'a/b@v2/x.safetensors on 127.0.0.1:8123',
    );
    expect(reportSummary(report({}))).toEqual({
      full: true,
      text: 'Matches 24 of 24 modules (U-Net 16 · text encoder 4 · text encoder 2 4)',
    });
    expect(reportSummary(report({ modules: 8, matched: 8, perComponent: { unet: 8, text_encoder: 0, text_encoder_2: 0 } })).text).toBe(
      'Matches 8 of 8 modules (U-Net 8)',
    );
    const partial = reportSummary(report({ matched: 20, unmatched: ['m1', 'm2', 'm3', 'm4'], unmatchedCount: 4 }));
    expect(partial).toEqual({ full: false, text: 'Matches 20 of 24 — 4 not in this model (e.g. m1, m2, m3, …)' });
  });
});

describe('IndexedDB', () => {
  it('keeps entries in order with their files; scale changes do not need the file; delete removes both', async () => {
    const a = { ...newLora(local('a.safetensors', [1, 2, 3, 4]), 1000), scale: 0.5 };
    const b = newLora({ kind: 'hub', repo: 'o/r', file: 'b.safetensors', hubUrl: MOCK }, 2000);
    await saveLora(b);
    await saveLora(a, true);
    let listed = await listLoras();
    expect(listed.map((l) => l.name)).toEqual(['a', 'b']);
    const src = listed[0]!.source;
    expect(src.kind).toBe('local');
    expect(new Uint8Array(await (src as { blob: Blob }).blob.arrayBuffer())).toEqual(new Uint8Array([1, 2, 3, 4]));
    expect(listed[1]!.source).toEqual(b.source);

    await saveLora({ ...listed[0]!, scale: 1.25, enabled: false });
    listed = await listLoras();
    expect(listed[0]!.scale).toBe(1.25);
    expect(listed[0]!.enabled).toBe(false);
    expect((listed[0]!.source as { blob: Blob }).blob.size).toBe(4);

    await deleteLora(a.id);
    expect((await listLoras()).map((l) => l.name)).toEqual(['b']);
    await deleteLora(b.id);
    expect(await listLoras()).toEqual([]);
  });
});
