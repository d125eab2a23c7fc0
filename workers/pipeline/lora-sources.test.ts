import { describe, expect, it } from 'vitest';
import { loraNameOf, parseHubLora, splitLoraScale, validateLoras } from './lora-sources';

describe('LoRA references', () => {
  it('reads hub files as owner/repo[@rev]/path and hub URLs (resolve and blob links)', () => {
    expect(parseHubLora('ostris/ikea-instructions-lora-sdxl/ikea_instructions_xl_v1_5.safetensors')).toEqual({
      kind: 'hub', repo: 'ostris/ikea-instructions-lora-sdxl', file: 'ikea_instructions_xl_v1_5.safetensors', revision: undefined,
    });
    expect(parseHubLora('a/b@v1.0/sub/dir/x.safetensors')).toEqual({ kind: 'hub', repo: 'a/b', revision: 'v1.0', file: 'sub/dir/x.safetensors' });
    expect(parseHubLora('https://huggingface.co/a/b/resolve/main/x%20y.safetensors?download=true')).toEqual({
      kind: 'hub', hubUrl: 'https://huggingface.co', repo: 'a/b', revision: 'main', file: 'x y.safetensors',
    });
    expect(parseHubLora('http://127.0.0.1:4000/a/b/blob/0123abc/l.safetensors')).toMatchObject({ hubUrl: 'http://127.0.0.1:4000', revision: '0123abc', file: 'l.safetensors' });
    expect(parseHubLora('my_lora.safetensors')).toBeUndefined();
    expect(parseHubLora('a/b')).toBeUndefined();
    expect(() => parseHubLora('https://huggingface.co/a/b')).toThrow(/not a hub file URL/);
  });

  it('splits the CLI scale suffix, names LoRAs after their file', () => {
    expect(splitLoraScale('x.safetensors:0.8')).toEqual({ location: 'x.safetensors', scale: 0.8 });
    expect(splitLoraScale('x.safetensors')).toEqual({ location: 'x.safetensors', scale: 1 });
    expect(splitLoraScale('https://h/a/b/resolve/main/x.safetensors')).toEqual({ location: 'https://h/a/b/resolve/main/x.safetensors', scale: 1 });
    expect(splitLoraScale('https://h/a/b/resolve/main/x.safetensors:1.5')).toEqual({ location: 'https://h/a/b/resolve/main/x.safetensors', scale: 1.5 });
    expect(loraNameOf('dir/sub/Koala Style.safetensors')).toBe('Koala Style');
    expect(loraNameOf('C:\\loras\\detail.SAFETENSORS')).toBe('detail');
  });

  it('validates a request’s LoRA list with one message per problem', () => {
    const hub = { kind: 'hub' as const, repo: 'a/b', file: 'x.safetensors' };
    expect(validateLoras(undefined)).toEqual([]);
    expect(validateLoras([{ name: 'x', source: hub, scale: 1 }])).toEqual([]);
    expect(validateLoras([{ name: 'x', source: hub, scale: 2.5 }])).toEqual(['LoRA 1 (x): scale must be a number from 0 to 2, got 2.5']);
    expect(validateLoras([{ name: '', source: { kind: 'hub', repo: 'nope', file: '' }, scale: 1 }])).toEqual([
      'LoRA 1 (): name must be a non-empty string',
      'LoRA 1 (): a hub LoRA needs repo "owner/name" and a file path',
    ]);
    expect(validateLoras([{ name: 'y', source: { kind: 'local', name: 'y.safetensors' }, scale: 1 }])).toEqual(['LoRA 1 (y): the dropped file is not available; add it again']);
    expect(validateLoras(Array.from({ length: 9 }, () => ({ name: 'x', source: hub, scale: 1 })))[0]).toBe('at most 8 LoRAs can be used at once, got 9');
    expect(validateLoras('x')).toEqual(['loras must be a list']);
  });
});
