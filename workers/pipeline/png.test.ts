import { decode } from 'fast-png';
import { describe, expect, it } from 'vitest';
import type { GenerateParams } from '../protocol';
import { formatParameters, parametersToSettings, parseParameters } from './a1111';
import { crc32, encodePng, readPngText, textChunk, zlibStored } from './png';

function pattern(w: number, h: number): Uint8ClampedArray {
  const px = new Uint8ClampedArray(w * h * 4);
  let s = 12345;
  for (let i = 0; i < px.length; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    px[i] = i % 4 === 3 ? (i % 3 === 0 ? 255 : s >>> 24) : (s >>> 16) & 0xff;
  }
  return px;
}

const base: GenerateParams = {
  model: { repo: 'etri-vilab/koala-700m-llava-cap', variant: 'fp16' },
  prompt: 'a photo of a cat',
  negativePrompt: 'blurry, low quality',
  steps: 25,
  guidance: 7.5,
  scheduler: 'euler',
  width: 1024,
  height: 768,
  seed: 123,
  numImages: 1,
};

describe('PNG encoder', () => {
  it('crc32 matches the standard check value', () => {
    expect(crc32(new TextEncoder().encode('123456789'))).toBe(0xcbf43926);
  });

  for (const compress of [true, false]) {
    it(`round-trips pixels byte-exactly through fast-png (compress=${compress})`, async () => {
      for (const [w, h] of [[1, 1], [3, 2], [64, 48], [300, 257]] as const) {
        const px = pattern(w, h);
        const png = await encodePng(px, w, h, { text: { parameters: 'hello' }, compress });
        const img = decode(png);
        expect([img.width, img.height, img.channels, img.depth]).toEqual([w, h, 4, 8]);
        expect(Buffer.from(img.data as Uint8Array).equals(Buffer.from(px))).toBe(true);
        expect(await readPngText(png)).toEqual({ parameters: 'hello' });
      }
    });
  }

  it('compresses and is deterministic', async () => {
    const px = new Uint8ClampedArray(256 * 256 * 4).fill(200);
    const a = await encodePng(px, 256, 256);
    const b = await encodePng(px, 256, 256);
    expect(a).toEqual(b);
    expect(a.length).toBeLessThan(px.length / 20);
  });

  it('stored zlib spans several 64 KiB blocks', async () => {
    const data = Uint8Array.from({ length: 140000 }, (_, i) => i & 0xff);
    const z = zlibStored(data);
    const back = new Uint8Array(await new Response(new Blob([z as Uint8Array<ArrayBuffer>]).stream().pipeThrough(new DecompressionStream('deflate'))).arrayBuffer());
    expect(back).toEqual(data);
  });

  it('writes tEXt for Latin-1 and iTXt for other text', () => {
    const t = textChunk('parameters', 'café');
    expect(String.fromCharCode(...t.subarray(4, 8))).toBe('tEXt');
    const i = textChunk('parameters', '猫 🐱');
    expect(String.fromCharCode(...i.subarray(4, 8))).toBe('iTXt');
    expect(() => textChunk('', 'x')).toThrow(/keyword "" is invalid/);
  });

  it('rejects wrong sizes and non-PNG input', async () => {
    await expect(encodePng(new Uint8Array(15), 2, 2)).rejects.toThrow(/expected 2x2x4 = 16 bytes, got 15/);
    await expect(encodePng(new Uint8Array(0), 0, 2)).rejects.toThrow(/positive integers/);
    await expect(readPngText(new Uint8Array(20))).rejects.toThrow(/not a PNG file/);
    const png = await encodePng(pattern(2, 2), 2, 2, { text: { parameters: 'x' } });
    png[40] ^= 0xff;
    await expect(readPngText(png)).rejects.toThrow(/CRC mismatch/);
  });
});

describe('A1111 parameters', () => {
  it('formats like AUTOMATIC1111', () => {
    expect(formatParameters(base)).toBe(
      'a photo of a cat\nNegative prompt: blurry, low quality\n' +
        'Steps: 25, Sampler: Euler, Schedule type: Automatic, CFG scale: 7.5, Seed: 123, Size: 1024x768, ' +
        'Model: etri-vilab/koala-700m-llava-cap, Variant: fp16, Version: koala-web 0.1.0',
    );
    const k = formatParameters({ ...base, scheduler: 'dpmpp-2m-karras', negativePrompt: undefined, guidance: 5, timestepSpacing: 'trailing' }, 124);
    expect(k).toBe(
      'a photo of a cat\nSteps: 25, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 5, Seed: 124, Size: 1024x768, ' +
        'Model: etri-vilab/koala-700m-llava-cap, Variant: fp16, Timestep spacing: trailing, Version: koala-web 0.1.0',
    );
  });

  it('parses A1111 text written by A1111 (old combined sampler names too)', () => {
    const text =
      'masterpiece, 1girl\nNegative prompt: lowres, bad anatomy\nSteps: 20, Sampler: DPM++ 2M Karras, CFG scale: 7, Seed: 3912, Size: 512x768, Model hash: 6ce0161689, Model: v1-5, Lora hashes: "a: 1, b: 2", Version: v1.6.0';
    const p = parseParameters(text);
    expect(p.prompt).toBe('masterpiece, 1girl');
    expect(p.negativePrompt).toBe('lowres, bad anatomy');
    expect(p.fields['Lora hashes']).toBe('a: 1, b: 2');
    expect(parametersToSettings(p)).toMatchObject({ steps: 20, guidance: 7, seed: 3912, width: 512, height: 768, scheduler: 'dpmpp-2m-karras' });
  });

  it('writes applied LoRAs as A1111 <lora:name:scale> tags after the prompt and parses them back out', () => {
    const local = { kind: 'local' as const, name: 'b.safetensors', blob: new Blob([]) };
    const loras = [
      { name: 'koala-style', source: { kind: 'hub' as const, repo: 'o/r', file: 'koala-style.safetensors' }, scale: 0.8 },
      { name: 'off', source: local, scale: 0 },
      { name: 'detail_v2', source: local, scale: 1.25 },
    ];
    const text = formatParameters({ ...base, loras });
    expect(text.split('\n')[0]).toBe('a photo of a cat <lora:koala-style:0.8> <lora:detail_v2:1.25>');
    const p = parseParameters(text);
    expect(p.prompt).toBe('a photo of a cat');
    expect(p.loras).toEqual([
      { name: 'koala-style', scale: 0.8 },
      { name: 'detail_v2', scale: 1.25 },
    ]);
    expect(parseParameters('x <lora:plain>\nSteps: 2, Seed: 1, Size: 8x8').loras).toEqual([{ name: 'plain', scale: 1 }]);
    expect(formatParameters({ ...base, prompt: '', loras: [loras[0]!] }).split('\n')[0]).toBe('<lora:koala-style:0.8>');
  });

  const tricky: Array<[string, Partial<GenerateParams>]> = [
    ['unicode and newlines', { prompt: '猫 on a sofa,\nvery cute: 🐱\n“quoted” ÀÉ', negativePrompt: 'ugly\nblurry, extra: limbs' }],
    ['empty prompt, no negative', { prompt: '', negativePrompt: undefined }],
    ['empty negative given', { prompt: 'x', negativePrompt: '' }],
    ['micro-conditioning', { originalSize: [512, 768], cropTopLeft: [16, 32], targetSize: [1024, 1536], timestepSpacing: 'linspace', scheduler: 'euler-a' }],
    ['ddim', { scheduler: 'ddim', guidance: 0 }],
    ['dpm++ 2m', { scheduler: 'dpmpp-2m', guidance: 1.25 }],
  ];

  it.each(tricky)('round-trips through a PNG: %s', async (_name, change) => {
    const params: GenerateParams = { ...base, ...change };
    const text = formatParameters(params, 4000000000);
    const png = await encodePng(pattern(8, 8), 8, 8, { text: { parameters: text } });
    const read = await readPngText(png);
    expect(read.parameters).toBe(text);
    const back = parametersToSettings(parseParameters(read.parameters!));
    expect(back.prompt).toBe(params.prompt);
    expect(back.negativePrompt).toBe(params.negativePrompt);
    expect('negativePrompt' in back).toBe(params.negativePrompt !== undefined);
    expect(back).toMatchObject({
      steps: params.steps,
      guidance: params.guidance,
      scheduler: params.scheduler,
      width: params.width,
      height: params.height,
      seed: 4000000000,
      model: params.model,
    });
    expect(back.originalSize).toEqual(params.originalSize);
    expect(back.cropTopLeft).toEqual(params.cropTopLeft);
    expect(back.targetSize).toEqual(params.targetSize);
    expect(back.timestepSpacing).toBe(params.timestepSpacing);
  });
});
