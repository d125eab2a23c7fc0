import { describe, expect, it } from 'vitest';
import { batchLatents, batchStepNoise, deriveSeed, detCosSin2Pi, detLog, philox4x32, randn, randomSeed, STREAM_LATENTS, stepNoiseStream } from './rng';

const hex = (a: Uint32Array) => Array.from(a, (v) => v.toString(16).padStart(8, '0'));

describe('Philox4x32-10', () => {
  it('matches the Random123 known-answer vectors', () => {
    expect(hex(philox4x32(0, 0, 0, 0, 0, 0))).toEqual(['6627e8d5', 'e169c58d', 'bc57ac4c', '9b00dbd8']);
    const f = 0xffffffff;
    expect(hex(philox4x32(f, f, f, f, f, f))).toEqual(['408f276d', '41c83b0e', 'a20bc7c6', '6d5451fd']);
    expect(hex(philox4x32(0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0))).toEqual([
      'd16cfe09', '94fdcceb', '5001e420', '24126ea1',
    ]);
  });
});

describe('deterministic math', () => {
  it('detLog agrees with Math.log to ~1 ulp', () => {
    for (const x of [1, 0.5, 2, 1e-300, 5e-324, 0.999999, 1.1e-16, 0.3, 0.7071, 0.70711, 1.4142, 123.456, 1e300]) {
      const want = Math.log(x);
      expect(Math.abs(detLog(x) - want)).toBeLessThanOrEqual(Math.max(4e-16 * Math.abs(want), 1e-300));
    }
    expect(detLog(1)).toBe(0);
    expect(detLog(0)).toBe(-Infinity);
  });

  it('detCosSin2Pi agrees with Math.cos/sin', () => {
    for (let i = 0; i < 2000; i++) {
      const u = (i * 0.61803398875) % 1;
      const [c, s] = detCosSin2Pi(u);
      expect(Math.abs(c - Math.cos(2 * Math.PI * u))).toBeLessThan(1e-15);
      expect(Math.abs(s - Math.sin(2 * Math.PI * u))).toBeLessThan(1e-15);
    }
    expect(detCosSin2Pi(0)).toEqual([1, 0]);
  });
});

describe('randn', () => {
  // Pinned: any change here changes every seeded image. The first pair was checked independently
  // (Python float64 Box–Muller on the Philox block of counter 0, key [0, 0]).
  it('pins the first values of seed 0 and seed 42 (any change breaks reproducibility)', () => {
    expect(Array.from(randn(0, 6))).toMatchInlineSnapshot(`
      [
        -0.12151763588190079,
        -1.3500319719314575,
        -0.08187475055456161,
        -0.22270934283733368,
        1.7764259576797485,
        2.17352032661438,
      ]
    `);
    expect(Array.from(randn(42, 4))).toMatchInlineSnapshot(`
      [
        0.8864968419075012,
        0.43935659527778625,
        -0.15660905838012695,
        -0.013718700036406517,
      ]
    `);
    expect(Array.from(randn(42, 2, stepNoiseStream(0)))).toMatchInlineSnapshot(`
      [
        -0.19137217104434967,
        1.0175482034683228,
      ]
    `);
  });

  it('pins a long stream (FNV-1a of the float32 bytes; Chromium 2026 gave the same hash)', () => {
    const bytes = new Uint8Array(randn(1234, 100000).buffer);
    let h = 2166136261;
    for (const b of bytes) h = Math.imul(h ^ b, 16777619) >>> 0;
    expect(h).toBe(911809077);
  });

  it('is a pure function of (seed, stream, index)', () => {
    const a = randn(1234, 1001);
    expect(randn(1234, 1001)).toEqual(a);
    expect(randn(1234, 500, STREAM_LATENTS, 501)).toEqual(a.subarray(501));
    expect(randn(1235, 10)).not.toEqual(a.subarray(0, 10));
    expect(randn(1234, 10, stepNoiseStream(3))).not.toEqual(a.subarray(0, 10));
  });

  it('looks standard normal', () => {
    const n = 200000;
    const z = randn(7, n);
    let mean = 0;
    let sq = 0;
    let within1 = 0;
    for (const v of z) {
      mean += v;
      sq += v * v;
      if (Math.abs(v) < 1) within1++;
    }
    mean /= n;
    const variance = sq / n - mean * mean;
    expect(Math.abs(mean)).toBeLessThan(0.01);
    expect(Math.abs(variance - 1)).toBeLessThan(0.01);
    expect(Math.abs(within1 / n - 0.6827)).toBeLessThan(0.005);
    expect(z.every((v) => Number.isFinite(v))).toBe(true);
  });

  it('validates the seed', () => {
    expect(() => randn(-1, 1)).toThrow(/seed must be an integer from 0 to 4294967295, got -1/);
    expect(() => randn(2 ** 32, 1)).toThrow(/got 4294967296/);
    expect(() => randn(1.5, 1)).toThrow(/got 1.5/);
    expect(randn(0xffffffff, 2)).toHaveLength(2);
  });
});

describe('seeds', () => {
  it('derives distinct per-image seeds (seed + k, wrapping at 2^32)', () => {
    expect(deriveSeed(100, 0)).toBe(100);
    expect(deriveSeed(100, 3)).toBe(103);
    expect(deriveSeed(0xffffffff, 1)).toBe(0);
    const seeds = new Set(Array.from({ length: 8 }, (_, k) => deriveSeed(123456, k)));
    expect(seeds.size).toBe(8);
  });

  it('randomSeed is a uint32', () => {
    for (let i = 0; i < 20; i++) {
      const s = randomSeed();
      expect(Number.isInteger(s) && s >= 0 && s <= 0xffffffff).toBe(true);
    }
  });
});

describe('batch helpers', () => {
  it('image k of a batch equals a single run with seed + k', () => {
    const b = batchLatents(500, 3, 4, 2, 3);
    expect(b).toHaveLength(3 * 24);
    for (let k = 0; k < 3; k++) expect(b.subarray(k * 24, (k + 1) * 24)).toEqual(batchLatents(500 + k, 1, 4, 2, 3));
    const n = batchStepNoise(500, 2, 2, 24);
    expect(n.subarray(24)).toEqual(randn(501, 24, stepNoiseStream(2)));
    expect(() => batchLatents(1, 1, 4, 0, 3)).toThrow(/latent shape must be positive integers/);
  });
});
