import { describe, expect, it } from 'vitest';
import { resolve } from 'node:path';
import {
  bytesSource, blobSource, encodeSafetensors, floatToHalf, halfToFloat, readSafetensorsHeader, readTensorF32,
} from './safetensors';
import { fileSource } from './safetensors.node.js';

const FIX = resolve(__dirname, '../../test/fixtures');

function rawFile(header: unknown, dataBytes: number, headerLenOverride?: number): Uint8Array {
  const hb = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + hb.length + dataBytes);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLenOverride ?? hb.length), true);
  out.set(hb, 8);
  return out;
}

describe('safetensors', () => {
  it('round-trips F32, F16, BF16 and I64 tensors with absolute offsets', async () => {
    const bytes = encodeSafetensors({
      b: { dtype: 'F16', shape: [3], data: Uint16Array.from([1, -2, 0.5], floatToHalf) },
      a: { dtype: 'F32', shape: [2, 2], data: Float32Array.from([1, 2, 3, 4]) },
      c: { dtype: 'BF16', shape: [2], data: Uint16Array.from([0x3f80, 0xc000]) },
      position_ids: { dtype: 'I64', shape: [1, 3], data: BigInt64Array.from([0n, 1n, 2n]) },
    }, { format: 'pt' });
    const f = await readSafetensorsHeader(bytesSource(bytes, 'x.safetensors'));
    expect(f.headerLength % 8).toBe(0);
    expect(f.metadata).toEqual({ format: 'pt' });
    expect([...f.tensors.keys()]).toEqual(['a', 'b', 'c', 'position_ids']);
    const a = f.tensors.get('a')!;
    expect(a).toEqual({ name: 'a', dtype: 'F32', shape: [2, 2], begin: f.dataStart, end: f.dataStart + 16 });
    expect([...await readTensorF32(f, 'a')]).toEqual([1, 2, 3, 4]);
    expect([...await readTensorF32(f, 'b')]).toEqual([1, -2, 0.5]);
    expect([...await readTensorF32(f, 'c')]).toEqual([1, -2]);
    expect([...await readTensorF32(f, 'position_ids')]).toEqual([0, 1, 2]);
    const viaBlob = await readSafetensorsHeader(blobSource(new Blob([bytes]), 'x.safetensors'));
    expect(viaBlob.tensors.get('c')).toEqual(f.tensors.get('c'));
  });

  it('fp16 conversion rounds to nearest even and handles subnormals/overflow', () => {
    expect(floatToHalf(1)).toBe(0x3c00);
    expect(floatToHalf(65504)).toBe(0x7bff);
    expect(floatToHalf(1e6)).toBe(0x7c00);
    expect(floatToHalf(-0)).toBe(0x8000);
    expect(halfToFloat(floatToHalf(2 ** -24))).toBe(2 ** -24);
    expect(halfToFloat(floatToHalf(1 + 2 ** -11))).toBe(1); // tie -> even
    expect(halfToFloat(floatToHalf(1 + 3 * 2 ** -11))).toBe(1 + 2 ** -9);
    for (const v of [0.1, -3.14159, 1234.5, 6e-5]) expect(Math.abs(halfToFloat(floatToHalf(v)) - v)).toBeLessThan(Math.abs(v) * 1e-3);
  });

  it('parses the fixture weight files from a path, reading only the header', async () => {
    const src = fileSource(resolve(FIX, 'tiny-sdxl/text_encoder/model.fp16.safetensors'));
    let read = 0;
    const counting = { ...src, read: (o: number, l: number) => { read += l; return src.read(o, l); } };
    const f = await readSafetensorsHeader(counting);
    expect(f.tensors.get('text_model.embeddings.token_embedding.weight')).toMatchObject({ dtype: 'F16', shape: [49408, 4] });
    expect(read).toBe(8 + f.headerLength);
  });

  const bad: [string, Uint8Array, RegExp][] = [
    ['shorter than 8 bytes', new Uint8Array(5), /bad\.safetensors: truncated.*5 bytes/],
    ['header length past the end', rawFile({}, 0, 1000), /bad\.safetensors: truncated.*header of 1000 bytes/],
    ['header not JSON', rawFile('{"a": [', 0), /bad\.safetensors: malformed safetensors header/],
    ['header an array', rawFile('[1,2]', 0), /not a JSON object/],
    ['unknown dtype', rawFile({ w: { dtype: 'F17', shape: [1], data_offsets: [0, 4] } }, 4), /tensor "w": unknown dtype "F17"/],
    ['bad shape', rawFile({ w: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, 4), /tensor "w": shape \[-1\]/],
    ['size mismatch', rawFile({ w: { dtype: 'F32', shape: [2, 3], data_offsets: [0, 20] } }, 24), /tensor "w": F32\[2,3\] needs 24 bytes, data_offsets give 20/],
    ['data past the end (truncated)', rawFile({ w: { dtype: 'F16', shape: [4], data_offsets: [0, 8] } }, 6), /truncated safetensors file: tensor "w" ends at data offset 8 but the data area has 6 bytes/],
    ['reversed offsets', rawFile({ w: { dtype: 'U8', shape: [0], data_offsets: [4, 2] } }, 8), /data_offsets \[4,2\]/],
    ['overlap', rawFile({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, 12), /"a" and "b" overlap/],
  ];
  for (const [what, bytes, msg] of bad) {
    it(`rejects a malformed file: ${what}`, async () => {
      await expect(readSafetensorsHeader(bytesSource(bytes, 'bad.safetensors'))).rejects.toThrow(msg);
    });
  }

  it('rejects a real fixture file cut short', async () => {
    const full = await readSafetensorsHeader(fileSource(resolve(FIX, 'tiny-koala/vae/diffusion_pytorch_model.safetensors')));
    const { readFileSync } = await import('node:fs');
    const bytes = readFileSync(resolve(FIX, 'tiny-koala/vae/diffusion_pytorch_model.safetensors'));
    const cut = new Uint8Array(bytes.buffer, bytes.byteOffset, full.dataStart + 100);
    await expect(readSafetensorsHeader(bytesSource(cut, 'vae.safetensors'))).rejects.toThrow(/vae\.safetensors: truncated safetensors file: tensor/);
  });
});

describe('floatsToHalves', () => {
  it('rounds exactly like floatToHalf over normals, subnormals, ties, overflow, NaN and ±0', async () => {
    const { floatsToHalves, floatToHalf } = await import('./safetensors');
    const vals: number[] = [0, -0, 1, -1, 65504, 65520, 70000, -70000, 1e-8, -1e-8, 6e-8, 5.960464477539063e-8, 2.98e-8, NaN, Infinity, -Infinity, 1 + 2 ** -11, 1 + 3 * 2 ** -11, 0.1, 3.14159];
    let s = 7;
    for (let i = 0; i < 20000; i++) {
      s = (Math.imul(s, 1103515245) + 12345) >>> 0;
      vals.push((s / 2 ** 32 - 0.5) * 2 ** ((s % 40) - 20));
    }
    const src = Float32Array.from(vals);
    const dst = new Uint16Array(src.length);
    floatsToHalves(src, dst);
    for (let i = 0; i < src.length; i++) expect(dst[i], `value ${src[i]}`).toBe(floatToHalf(src[i]!));
  });
});
