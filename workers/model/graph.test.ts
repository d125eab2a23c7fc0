import { describe, expect, it } from 'vitest';
import { GraphBuilder } from './graph';
import { WeightIndex } from './weights';
import { bytesSource, encodeSafetensors, floatToHalf, halfToFloat } from './safetensors';
import { attention, causalMask, conv2d, gelu, groupNorm, layerNorm, linear, upsampleNearest } from './ops';
import { maxAbsDiff, runWasm } from './testing/run-wasm.node.js';

/** Deterministic pseudo-random values in [-1, 1). */
function rand(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 31 - 1;
  });
}
const f16 = (a: Float32Array) => Uint16Array.from(a, floatToHalf);
const roundF16 = (a: Float32Array) => Float32Array.from(a, (v) => halfToFloat(floatToHalf(v)));

function refAttention(q: Float32Array, k: Float32Array, v: Float32Array, b: number, tq: number, tk: number, c: number, h: number, causal: boolean) {
  const d = c / h, out = new Float32Array(b * tq * c);
  for (let bi = 0; bi < b; bi++) for (let hi = 0; hi < h; hi++) for (let i = 0; i < tq; i++) {
    const s = new Float64Array(tk);
    let mx = -Infinity;
    for (let j = 0; j < tk; j++) {
      let acc = 0;
      for (let e = 0; e < d; e++) acc += q[(bi * tq + i) * c + hi * d + e] * k[(bi * tk + j) * c + hi * d + e];
      s[j] = causal && j > i ? -Infinity : acc / Math.sqrt(d);
      mx = Math.max(mx, s[j]);
    }
    let sum = 0;
    for (let j = 0; j < tk; j++) { s[j] = Math.exp(s[j] - mx); sum += s[j]; }
    for (let e = 0; e < d; e++) {
      let acc = 0;
      for (let j = 0; j < tk; j++) acc += (s[j] / sum) * v[(bi * tk + j) * c + hi * d + e];
      out[(bi * tq + i) * c + hi * d + e] = acc;
    }
  }
  return out;
}

describe('GraphBuilder + ops on the wasm backend', () => {
  it('linear reads an F16 weight and an F32 bias as external data from one file (Cast to fp32)', async () => {
    const file = encodeSafetensors({
      'l.weight': { dtype: 'F16', shape: [2, 3], data: Uint16Array.from([1, 2, 3, 4, 5, 6], floatToHalf) },
      'l.bias': { dtype: 'F32', shape: [2], data: Float32Array.from([10, 20]) },
      unused: { dtype: 'I64', shape: [2], data: BigInt64Array.from([1n, 2n]) },
    });
    const g = new GraphBuilder({ name: 't', weights: await WeightIndex.open([bytesSource(file, 'a.safetensors')]), compute: 'float32' });
    g.output(linear(g, g.input('x', 'float32', [1, 2, 3]), 'l'), 'y');
    const built = g.build();
    expect(built.stats.params).toBe(8);
    expect(built.stats.opCounts.Cast).toBe(1);
    expect(built.externalData).toHaveLength(1);
    const r = await runWasm(built, { x: [1, 0, 0, 0, 1, 1] });
    expect(r.y.dims).toEqual([1, 2, 2]);
    expect([...r.y.data]).toEqual([11, 24, 15, 31]);
  });

  it('sharded weights and byte-range parts: each location a range of one file', async () => {
    const w1 = rand(64 * 64, 1), w2 = rand(64 * 64, 2), x = rand(64, 3);
    const a = encodeSafetensors({ 'p.weight': { dtype: 'F32', shape: [64, 64], data: w1 }, 'p.bias': { dtype: 'F32', shape: [64], data: rand(64, 4) } });
    const b = encodeSafetensors({ 'q.weight': { dtype: 'F32', shape: [64, 64], data: w2 }, 'q.bias': { dtype: 'F32', shape: [64], data: new Float32Array(64) } });
    const weights = await WeightIndex.open([bytesSource(a, 'model-00001-of-00002.safetensors'), bytesSource(b, 'model-00002-of-00002.safetensors')]);
    const g = new GraphBuilder({ name: 't', weights, compute: 'float32', maxPartBytes: 64 * 64 * 4 });
    g.output(linear(g, linear(g, g.input('x', 'float32', [1, 64]), 'p'), 'q'), 'y');
    const built = g.build();
    // file a: bias + weight do not fit one 16 KiB part -> 2 parts; file b: 2 parts.
    expect(built.externalData.map((r) => r.file)).toEqual([
      'model-00001-of-00002.safetensors', 'model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors', 'model-00002-of-00002.safetensors']);
    for (const r of built.externalData) expect(r.end - r.begin).toBeLessThanOrEqual(64 * 64 * 4);
    const y = (await runWasm(built, { x })).y.data;
    const bias = rand(64, 4);
    const h = Float32Array.from({ length: 64 }, (_, o) => bias[o] + x.reduce((s, xv, i) => s + xv * w1[o * 64 + i], 0));
    const ref = Float32Array.from({ length: 64 }, (_, o) => h.reduce((s, hv, i) => s + hv * w2[o * 64 + i], 0));
    expect(maxAbsDiff(y, ref)).toBeLessThan(1e-4);
  });

  for (const [label, maxBindingBytes] of [['unchunked', undefined], ['chunked into 3 query blocks', 2 * 3 * 20 * 4 * 7]] as const) {
    it(`attention with causal mask, ${label}, matches a float64 reference`, async () => {
      const [b, t, c, h] = [2, 20, 6, 3];
      const q = rand(b * t * c, 5), k = rand(b * t * c, 6), v = rand(b * t * c, 7);
      const g = new GraphBuilder({ name: 't', weights: new WeightIndex([]), compute: 'float32' });
      const [iq, ik, iv] = ['q', 'k', 'v'].map((n) => g.input(n, 'float32', [b, t, c]));
      g.output(attention(g, iq, ik, iv, { heads: h, mask: causalMask(g, t), maxBindingBytes }), 'o');
      const built = g.build();
      expect(built.stats.opCounts.Split ?? 0).toBe(maxBindingBytes ? 1 : 0);
      if (maxBindingBytes) expect(built.stats.opCounts.Softmax).toBe(3);
      const o = (await runWasm(built, { q, k, v })).o.data;
      expect(maxAbsDiff(o, refAttention(q, k, v, b, t, t, c, h, true))).toBeLessThan(1e-6);
    });
  }

  it('groupNorm, layerNorm, conv2d, gelu and nearest upsample match references; fp16 compute stays within fp16 rounding', async () => {
    const [B, C, H, W, G] = [1, 4, 3, 5, 2];
    const gw = rand(C, 8), gb = rand(C, 9), cw = rand(C * C * 9, 10), cb = rand(C, 11), lw = rand(W, 12), lb = rand(W, 13);
    const file = encodeSafetensors({
      'gn.weight': { dtype: 'F16', shape: [C], data: f16(gw) }, 'gn.bias': { dtype: 'F16', shape: [C], data: f16(gb) },
      'conv.weight': { dtype: 'F32', shape: [C, C, 3, 3], data: cw }, 'conv.bias': { dtype: 'F32', shape: [C], data: cb },
      'ln.weight': { dtype: 'F32', shape: [W], data: lw }, 'ln.bias': { dtype: 'F32', shape: [W], data: lb },
    });
    const x = rand(B * C * H * W, 14).map((v) => v * 3);
    // float64 references
    const gn = new Float32Array(x.length);
    const per = (C / G) * H * W;
    for (let gi = 0; gi < G; gi++) {
      const sl = x.subarray(gi * per, (gi + 1) * per);
      const mean = sl.reduce((s, v) => s + v, 0) / per;
      const vr = sl.reduce((s, v) => s + (v - mean) ** 2, 0) / per;
      for (let i = 0; i < per; i++) {
        const ch = Math.floor((gi * per + i) / (H * W));
        gn[gi * per + i] = ((sl[i] - mean) / Math.sqrt(vr + 1e-6)) * roundF16(gw)[ch] + roundF16(gb)[ch];
      }
    }
    const conv = new Float32Array(x.length);
    for (let o = 0; o < C; o++) for (let y = 0; y < H; y++) for (let xx = 0; xx < W; xx++) {
      let acc = cb[o];
      for (let i = 0; i < C; i++) for (let ky = 0; ky < 3; ky++) for (let kx = 0; kx < 3; kx++) {
        const yy = y + ky - 1, xs = xx + kx - 1;
        if (yy >= 0 && yy < H && xs >= 0 && xs < W) acc += gn[(i * H + yy) * W + xs] * cw[((o * C + i) * 3 + ky) * 3 + kx];
      }
      conv[(o * H + y) * W + xx] = acc;
    }
    const ln = new Float32Array(x.length);
    for (let r = 0; r < C * H; r++) {
      const row = conv.subarray(r * W, r * W + W);
      const m = row.reduce((s, v) => s + v, 0) / W;
      const vr = row.reduce((s, v) => s + (v - m) ** 2, 0) / W;
      for (let i = 0; i < W; i++) ln[r * W + i] = ((row[i] - m) / Math.sqrt(vr + 1e-5)) * lw[i] + lb[i];
    }
    const ge = ln.map((v) => { const t = v / Math.SQRT2; return 0.5 * v * (1 + erf(t)); });
    const up = new Float32Array(C * (H * 2) * (W * 2));
    for (let c = 0; c < C; c++) for (let y = 0; y < H * 2; y++) for (let xx = 0; xx < W * 2; xx++) up[(c * H * 2 + y) * W * 2 + xx] = ge[(c * H + (y >> 1)) * W + (xx >> 1)];

    for (const compute of ['float32', 'float16'] as const) {
      const g = new GraphBuilder({ name: 't', weights: await WeightIndex.open([bytesSource(file, 'n.safetensors')]), compute });
      const xi = g.toCompute(g.input('x', 'float32', [B, C, H, W]));
      const o1 = groupNorm(g, xi, 'gn', G, 1e-6);
      const o2 = conv2d(g, o1, 'conv');
      const o3 = gelu(g, layerNorm(g, o2, 'ln', 1e-5));
      g.output(o1, 'gn');
      g.output(o3, 'act');
      g.output(upsampleNearest(g, o3, H * 2, W * 2), 'up');
      const built = g.build();
      expect(built.outputs.map((o) => [o.name, o.dtype, o.shape])).toEqual([
        ['gn', 'float32', [B, C, H, W]], ['act', 'float32', [B, C, H, W]], ['up', 'float32', [B, C, 2 * H, 2 * W]]]);
      const r = await runWasm(built, { x });
      const tol = compute === 'float32' ? 1e-5 : 2e-2;
      expect(maxAbsDiff(r.gn.data, gn)).toBeLessThan(tol);
      expect(maxAbsDiff(r.act.data, ge)).toBeLessThan(compute === 'float32' ? 1e-5 : 5e-2);
      expect(maxAbsDiff(r.up.data, up)).toBeLessThan(compute === 'float32' ? 1e-5 : 5e-2);
    }
  });

  it('errors name the file, tensor, expected and found', async () => {
    const file = encodeSafetensors({ 'l.weight': { dtype: 'F32', shape: [2, 3], data: new Float32Array(6) }, ids: { dtype: 'F8_E4M3', shape: [1], data: new Uint8Array(1) } });
    const g = new GraphBuilder({ name: 't', weights: await WeightIndex.open([bytesSource(file, 'w.safetensors')]), compute: 'float32' });
    expect(() => g.weight('l.weight', [3, 2])).toThrow('w.safetensors: tensor "l.weight" has shape [2,3], expected [3,2]');
    expect(() => g.weight('nope', [4])).toThrow('w.safetensors: missing tensor "nope" (expected shape [4])');
    expect(() => g.weight('ids')).toThrow('w.safetensors: tensor "ids" has dtype F8_E4M3');
    expect(() => linear(g, g.input('x', 'float32', [1, 4]), 'l')).toThrow('tensor "l.weight" has shape [2,3], expected [2,4]');
  });
});

function erf(x: number): number {
  // Abramowitz-Stegun 7.1.26 is too coarse; use a series/continued-fraction accurate to ~1e-12.
  const t = Math.abs(x);
  let r: number;
  if (t < 3) {
    let sum = t, term = t;
    for (let n = 1; n < 100; n++) { term *= -t * t / n; sum += term / (2 * n + 1); }
    r = (2 / Math.sqrt(Math.PI)) * sum;
  } else {
    r = 1;
  }
  return x < 0 ? -r : r;
}

describe('ops error messages', () => {
  it('a missing linear/conv weight is named without a made-up shape', async () => {
    const file = encodeSafetensors({ 'c.weight': { dtype: 'F32', shape: [2, 2, 3], data: new Float32Array(12) } });
    const g = new GraphBuilder({ name: 't', weights: await WeightIndex.open([bytesSource(file, 'w.safetensors')]), compute: 'float32' });
    const x = g.input('x', 'float32', [1, 2, 4, 4]);
    expect(() => linear(g, x, 'nope')).toThrow(/^w\.safetensors: missing tensor "nope\.weight"$/);
    expect(() => conv2d(g, x, 'nope')).toThrow(/^w\.safetensors: missing tensor "nope\.weight"$/);
    expect(() => conv2d(g, x, 'c')).toThrow('w.safetensors: tensor "c.weight" has shape [2,2,3], expected a 4-D conv kernel [out, 2, kh, kw]');
  });
});
