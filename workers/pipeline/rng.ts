/**
 * Deterministic Gaussian noise: the same seed gives bit-identical latents in Node and in every
 * browser.
 *
 * Generator: Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011),
 * a counter-based generator: the 128-bit output block for counter c under key k is a pure function
 * of (c, k), computed with 32-bit integer multiplies and xors only. Key = [seed, stream];
 * counter = [block index low 32 bits, high bits, 0, 0].
 *
 * Normal deviates: each block gives two 53-bit uniforms u1 ∈ (0, 1], u2 ∈ [0, 1) (21 + 32 bits
 * each), and Box–Muller turns them into the pair
 *   z[2b] = r·cos(2π·u2),  z[2b+1] = r·sin(2π·u2),  r = sqrt(-2·ln u1)
 * computed in float64 and rounded to float32 once. Element i of a tensor is z[i], so any element
 * can be computed independently (a GPU port is possible) and a tensor is a prefix of the stream.
 *
 * Cross-engine determinism: JS guarantees correctly rounded + - * / and Math.sqrt, but NOT
 * Math.log / Math.cos / Math.sin (engines use different libms). So ln, sin and cos here are our
 * own polynomial evaluations built from + - * / only, with exact range reduction: every engine
 * computes the same bits. Integer math uses Math.imul and 16-bit splits (no BigInt, no Math.random).
 *
 * Streams: {@link STREAM_LATENTS} for the initial latents; {@link stepNoiseStream}(i) for the noise
 * an ancestral sampler adds at step i. Image k of a batch uses seed {@link deriveSeed}(seed, k).
 */

const M0 = 0xd2511f53;
const M1 = 0xcd9e8d57;
const W0 = 0x9e3779b9;
const W1 = 0xbb67ae85;

/** High 32 bits of the 64-bit product of two uint32 values. */
function mulhi(a: number, b: number): number {
  const al = a & 0xffff;
  const ah = a >>> 16;
  const bl = b & 0xffff;
  const bh = b >>> 16;
  const ll = al * bl;
  const hl = ah * bl;
  const lh = al * bh;
  const hh = ah * bh;
  const cross = (ll >>> 16) + (hl & 0xffff) + lh; // < 2^33, exact in float64
  return (hh + (hl >>> 16) + Math.floor(cross / 65536)) >>> 0;
}

/** Philox4x32-10 block: counter [c0..c3], key [k0, k1] → 4 uint32 (written to out). */
export function philox4x32(
  c0: number,
  c1: number,
  c2: number,
  c3: number,
  k0: number,
  k1: number,
  out: Uint32Array = new Uint32Array(4),
): Uint32Array {
  let x0 = c0 >>> 0;
  let x1 = c1 >>> 0;
  let x2 = c2 >>> 0;
  let x3 = c3 >>> 0;
  let key0 = k0 >>> 0;
  let key1 = k1 >>> 0;
  for (let round = 0; round < 10; round++) {
    if (round > 0) {
      key0 = (key0 + W0) >>> 0;
      key1 = (key1 + W1) >>> 0;
    }
    const hi0 = mulhi(M0, x0);
    const lo0 = Math.imul(M0, x0) >>> 0;
    const hi1 = mulhi(M1, x2);
    const lo1 = Math.imul(M1, x2) >>> 0;
    const y0 = (hi1 ^ x1 ^ key0) >>> 0;
    const y2 = (hi0 ^ x3 ^ key1) >>> 0;
    x0 = y0;
    x1 = lo1;
    x2 = y2;
    x3 = lo0;
  }
  out[0] = x0;
  out[1] = x1;
  out[2] = x2;
  out[3] = x3;
  return out;
}

const TWO_POW_32 = 4294967296;
const TWO_POW_M53 = 1 / 9007199254740992;
const LN2_HI = 6.93147180369123816490e-1; // high bits of ln 2 (exact product with small integers)
const LN2_LO = 1.90821492927058770002e-10;
const SQRT_HALF = Math.SQRT1_2;

const f64 = new Float64Array(1);
const u32 = new Uint32Array(f64.buffer);
const LITTLE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const HI = LITTLE ? 1 : 0;

/**
 * Natural log for finite x > 0 with + - * / only: x = m·2^e (m ∈ [√½, √2)), ln m = 2·atanh(s),
 * s = (m - 1)/(m + 1), |s| ≤ 0.1716, series to s^29 (truncation < 1e-22).
 */
export function detLog(x: number): number {
  if (!(x > 0) || x === Infinity) return x === 0 ? -Infinity : NaN;
  let e = 0;
  let m = x;
  if (m < 2.2250738585072014e-308) {
    m *= 18014398509481984; // 2^54: subnormals
    e -= 54;
  }
  f64[0] = m;
  const hi = u32[HI]!;
  e += ((hi >>> 20) & 0x7ff) - 1023;
  u32[HI] = (hi & 0x000fffff) | 0x3ff00000; // mantissa in [1, 2)
  m = f64[0]!;
  if (m > Math.SQRT2) {
    m *= 0.5;
    e += 1;
  }
  if (m < SQRT_HALF) {
    m *= 2;
    e -= 1;
  }
  const s = (m - 1) / (m + 1);
  const s2 = s * s;
  let sum = 0;
  for (let k = 29; k >= 3; k -= 2) sum = (sum + 1 / k) * s2;
  const lnm = 2 * s + 2 * s * sum;
  return e * LN2_HI + (e * LN2_LO + lnm);
}

/** sin(x) for |x| ≤ π/4: Taylor series to x^21 (truncation < 1e-22), + - * / only. */
function sinSmall(x: number): number {
  const x2 = x * x;
  let term = x;
  let sum = x;
  for (let k = 1; k <= 10; k++) {
    term *= -x2 / (2 * k * (2 * k + 1));
    sum += term;
  }
  return sum;
}

/** cos(x) for |x| ≤ π/4: Taylor series to x^20. */
function cosSmall(x: number): number {
  const x2 = x * x;
  let term = 1;
  let sum = 1;
  for (let k = 1; k <= 10; k++) {
    term *= -x2 / ((2 * k - 1) * (2 * k));
    sum += term;
  }
  return sum;
}

/**
 * [cos(2πu), sin(2πu)] for u ∈ [0, 1), deterministic: the quadrant and octant come from exact
 * operations on u (multiplying by 8 is exact), only the remaining angle ≤ π/4 goes to the series.
 */
export function detCosSin2Pi(u: number): [number, number] {
  const v = u * 8; // exact
  const octant = Math.floor(v) & 7;
  const frac = v - Math.floor(v); // exact, in [0, 1)
  // angle within the octant: frac·π/4, mirrored in odd octants so the series argument is ≤ π/4
  const odd = octant & 1;
  const a = (odd ? 1 - frac : frac) * (Math.PI / 4);
  const s = sinSmall(a);
  const c = cosSmall(a);
  // base angle of the quadrant (q·π/2) and whether we measured from the quadrant's end
  const q = octant >> 1;
  // within a quadrant: angle θ = frac·π/4 (even octant) or π/2 - (1 - frac)·π/4 (odd octant)
  // even: cos θ = c, sin θ = s;  odd: θ = π/2 - a → cos θ = s, sin θ = c
  const ct = odd ? s : c;
  const st = odd ? c : s;
  switch (q) {
    case 0:
      return [ct, st];
    case 1:
      return [-st, ct];
    case 2:
      return [-ct, -st];
    default:
      return [st, -ct];
  }
}

/** Stream id of the initial latents. */
export const STREAM_LATENTS = 0;
/** Stream id of the noise an ancestral sampler adds at step i (0-based). */
export function stepNoiseStream(step: number): number {
  return (1 + step) >>> 0;
}

function checkSeed(seed: number): void {
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
    throw new RangeError(`seed must be an integer from 0 to 4294967295, got ${seed}`);
  }
}

/**
 * `count` standard-normal float32 values of stream `stream` under `seed`, starting at element `offset`
 * (element i of the stream is the same whatever the offset/count split).
 */
export function randn(seed: number, count: number, stream = STREAM_LATENTS, offset = 0): Float32Array {
  checkSeed(seed);
  if (!Number.isInteger(count) || count < 0) throw new RangeError(`count must be a non-negative integer, got ${count}`);
  const out = new Float32Array(count);
  const block = new Uint32Array(4);
  let lastBlock = -1;
  let z0 = 0;
  let z1 = 0;
  for (let i = 0; i < count; i++) {
    const idx = offset + i;
    const b = Math.floor(idx / 2);
    if (b !== lastBlock) {
      philox4x32(b % TWO_POW_32, Math.floor(b / TWO_POW_32), 0, 0, seed, stream, block);
      const u1 = (((block[0]! >>> 11) * TWO_POW_32 + block[1]!) + 1) * TWO_POW_M53; // (0, 1]
      const u2 = ((block[2]! >>> 11) * TWO_POW_32 + block[3]!) * TWO_POW_M53; // [0, 1)
      const r = Math.sqrt(-2 * detLog(u1));
      const [c, s] = detCosSin2Pi(u2);
      z0 = r * c;
      z1 = r * s;
      lastBlock = b;
    }
    out[i] = idx % 2 === 0 ? z0 : z1;
  }
  return out;
}

/** Seed of image k of a batch: seed + k (mod 2^32), as AUTOMATIC1111 does, so image k can be redone alone. */
export function deriveSeed(seed: number, k: number): number {
  checkSeed(seed);
  if (!Number.isInteger(k) || k < 0) throw new RangeError(`image index must be a non-negative integer, got ${k}`);
  return (seed + k) % TWO_POW_32;
}

/** A fresh random seed in 0..2^32-1 for the UI (crypto.getRandomValues). */
export function randomSeed(): number {
  const a = new Uint32Array(1);
  globalThis.crypto.getRandomValues(a);
  return a[0]!;
}

/**
 * Initial latents of a batch, NCHW [numImages, channels, height, width] (latent size), unit variance
 * (multiply by the scheduler's initNoiseSigma). Image k is `randn(deriveSeed(seed, k), …)`, so a
 * batch image can be regenerated alone from its own seed.
 */
export function batchLatents(seed: number, numImages: number, channels: number, height: number, width: number): Float32Array {
  const per = channels * height * width;
  if (!Number.isInteger(per) || per < 1) throw new RangeError(`latent shape must be positive integers, got [${channels}, ${height}, ${width}]`);
  const out = new Float32Array(numImages * per);
  for (let k = 0; k < numImages; k++) out.set(randn(deriveSeed(seed, k), per, STREAM_LATENTS), k * per);
  return out;
}

/** Ancestral-sampler noise for step `step` of a batch (same layout and per-image seeds as batchLatents). */
export function batchStepNoise(seed: number, step: number, numImages: number, perImage: number): Float32Array {
  const out = new Float32Array(numImages * perImage);
  for (let k = 0; k < numImages; k++) out.set(randn(deriveSeed(seed, k), perImage, stepNoiseStream(step)), k * perImage);
  return out;
}
