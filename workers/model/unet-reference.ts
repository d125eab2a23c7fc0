/**
 * Float64 reference forward of UNet2DConditionModel (tests only; plain loops, tiny sizes).
 * Used to show that the graph computes exactly what the weights it is given imply, e.g. for fp16
 * weight files whose rounding alone moves the output away from the fp32-weight goldens.
 */
import { planUnet, type UnetConfig } from './unet-config';
import { sinusoidFrequencies } from './unet-embeddings';

export type RefWeights = (name: string) => Float32Array;

interface T { d: Float64Array; s: number[] }

const size = (s: number[]) => s.reduce((a, b) => a * b, 1);
const zeros = (s: number[]): T => ({ d: new Float64Array(size(s)), s });

function erf(x: number): number {
  // Abramowitz-Stegun 7.1.26 is too coarse; use the series for |x| < 4 (error < 1e-14 in float64 there).
  const t = Math.abs(x);
  if (t >= 4) return Math.sign(x) * (1 - 1.5e-8);
  let sum = t, term = t;
  for (let n = 1; n < 80; n++) { term *= (-t * t) / n; sum += term / (2 * n + 1); }
  return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * sum;
}

function conv(x: T, w: Float32Array, b: Float32Array, cout: number, k: number, stride: number, pad: number): T {
  const [B, C, H, W] = x.s;
  const oh = Math.floor((H + 2 * pad - k) / stride) + 1, ow = Math.floor((W + 2 * pad - k) / stride) + 1;
  const y = zeros([B, cout, oh, ow]);
  for (let n = 0; n < B; n++) for (let o = 0; o < cout; o++) for (let i = 0; i < oh; i++) for (let j = 0; j < ow; j++) {
    let acc = b[o];
    for (let c = 0; c < C; c++) for (let u = 0; u < k; u++) {
      const yy = i * stride - pad + u;
      if (yy < 0 || yy >= H) continue;
      for (let v = 0; v < k; v++) {
        const xx = j * stride - pad + v;
        if (xx < 0 || xx >= W) continue;
        acc += x.d[((n * C + c) * H + yy) * W + xx] * w[((o * C + c) * k + u) * k + v];
      }
    }
    y.d[((n * cout + o) * oh + i) * ow + j] = acc;
  }
  return y;
}

function groupNorm(x: T, G: number, eps: number, g: Float32Array, b: Float32Array): T {
  const [B, C] = x.s;
  const sp = size(x.s.slice(2)), per = (C / G) * sp;
  const y = zeros(x.s);
  for (let n = 0; n < B; n++) for (let gi = 0; gi < G; gi++) {
    const off = (n * C + gi * (C / G)) * sp;
    let m = 0, v = 0;
    for (let i = 0; i < per; i++) m += x.d[off + i] / per;
    for (let i = 0; i < per; i++) v += (x.d[off + i] - m) ** 2 / per;
    const r = 1 / Math.sqrt(v + eps);
    for (let i = 0; i < per; i++) {
      const c = gi * (C / G) + Math.floor(i / sp);
      y.d[off + i] = (x.d[off + i] - m) * r * g[c] + b[c];
    }
  }
  return y;
}

function layerNorm(x: T, eps: number, g: Float32Array, b: Float32Array): T {
  const C = x.s[x.s.length - 1], rows = x.d.length / C;
  const y = zeros(x.s);
  for (let r = 0; r < rows; r++) {
    let m = 0, v = 0;
    for (let i = 0; i < C; i++) m += x.d[r * C + i] / C;
    for (let i = 0; i < C; i++) v += (x.d[r * C + i] - m) ** 2 / C;
    for (let i = 0; i < C; i++) y.d[r * C + i] = ((x.d[r * C + i] - m) / Math.sqrt(v + eps)) * g[i] + b[i];
  }
  return y;
}

function linear(x: T, w: Float32Array, b: Float32Array | null, out: number): T {
  const C = x.s[x.s.length - 1], rows = x.d.length / C;
  const y = zeros([...x.s.slice(0, -1), out]);
  for (let r = 0; r < rows; r++) for (let o = 0; o < out; o++) {
    let acc = b ? b[o] : 0;
    for (let i = 0; i < C; i++) acc += x.d[r * C + i] * w[o * C + i];
    y.d[r * out + o] = acc;
  }
  return y;
}

const map = (x: T, f: (v: number) => number): T => ({ d: x.d.map(f), s: x.s });
const add = (a: T, b: T): T => ({ d: a.d.map((v, i) => v + b.d[i]), s: a.s });
const silu = (x: T) => map(x, (v) => v / (1 + Math.exp(-v)));

/** [B,C,H,W] -> [B,HW,C] and back */
function toTokens(x: T): T {
  const [B, C, H, W] = x.s;
  const y = zeros([B, H * W, C]);
  for (let n = 0; n < B; n++) for (let c = 0; c < C; c++) for (let p = 0; p < H * W; p++) y.d[(n * H * W + p) * C + c] = x.d[(n * C + c) * H * W + p];
  return y;
}
function fromTokens(x: T, H: number, W: number): T {
  const [B, , C] = x.s;
  const y = zeros([B, C, H, W]);
  for (let n = 0; n < B; n++) for (let c = 0; c < C; c++) for (let p = 0; p < H * W; p++) y.d[(n * C + c) * H * W + p] = x.d[(n * H * W + p) * C + c];
  return y;
}

function attention(q: T, k: T, v: T, heads: number): T {
  const [B, Tq, C] = q.s, Tk = k.s[1], D = C / heads, scale = 1 / Math.sqrt(D);
  const o = zeros(q.s);
  const p = new Float64Array(Tk);
  for (let n = 0; n < B; n++) for (let h = 0; h < heads; h++) for (let i = 0; i < Tq; i++) {
    let mx = -Infinity;
    for (let j = 0; j < Tk; j++) {
      let s = 0;
      for (let d = 0; d < D; d++) s += q.d[(n * Tq + i) * C + h * D + d] * k.d[(n * Tk + j) * C + h * D + d];
      p[j] = s * scale;
      mx = Math.max(mx, p[j]);
    }
    let z = 0;
    for (let j = 0; j < Tk; j++) z += (p[j] = Math.exp(p[j] - mx));
    for (let d = 0; d < D; d++) {
      let acc = 0;
      for (let j = 0; j < Tk; j++) acc += p[j] * v.d[(n * Tk + j) * C + h * D + d];
      o.d[(n * Tq + i) * C + h * D + d] = acc / z;
    }
  }
  return o;
}

function nearest(x: T, oh: number, ow: number): T {
  const [B, C, H, W] = x.s;
  const y = zeros([B, C, oh, ow]);
  for (let n = 0; n < B * C; n++) for (let i = 0; i < oh; i++) for (let j = 0; j < ow; j++) {
    const si = Math.min(H - 1, Math.floor((i * H) / oh)), sj = Math.min(W - 1, Math.floor((j * W) / ow));
    y.d[(n * oh + i) * ow + j] = x.d[(n * H + si) * W + sj];
  }
  return y;
}

function concatChannels(a: T, b: T): T {
  const [B, Ca, H, W] = a.s, Cb = b.s[1], sp = H * W;
  const y = zeros([B, Ca + Cb, H, W]);
  for (let n = 0; n < B; n++) {
    y.d.set(a.d.subarray(n * Ca * sp, (n + 1) * Ca * sp), n * (Ca + Cb) * sp);
    y.d.set(b.d.subarray(n * Cb * sp, (n + 1) * Cb * sp), (n * (Ca + Cb) + Ca) * sp);
  }
  return y;
}

function sinusoid(t: number[], dim: number, flip: boolean, shift: number): number[][] {
  const f = sinusoidFrequencies(dim, shift);
  return t.map((tv) => {
    const a = [...f].map((fr) => tv * fr);
    const s = a.map(Math.sin), c = a.map(Math.cos);
    const row = flip ? [...c, ...s] : [...s, ...c];
    if (dim % 2) row.push(0);
    return row;
  });
}

export interface RefInputs {
  sample: Float32Array; sampleShape: number[];
  timestep: Float32Array; encoderHiddenStates: Float32Array; ehsShape: number[];
  textEmbeds: Float32Array; timeIds: Float32Array;
}

/** The U-Net forward in float64 with weights `w` (e.g. an fp16 file's values) -> out [B, C, h, w]. */
export function unetReference(cfg: UnetConfig, w: RefWeights, inp: RefInputs): T {
  const p = planUnet(cfg);
  const [B] = inp.sampleShape;
  const lin = (x: T, pre: string, out: number, bias = true) => linear(x, w(`${pre}.weight`), bias ? w(`${pre}.bias`) : null, out);
  const cv = (x: T, pre: string, k: number, stride = 1, pad = (k - 1) / 2) => {
    const cout = w(`${pre}.bias`).length;
    return conv(x, w(`${pre}.weight`), w(`${pre}.bias`), cout, k, stride, pad);
  };
  const gn = (x: T, pre: string, eps: number) => groupNorm(x, p.groups, eps, w(`${pre}.weight`), w(`${pre}.bias`));

  // embeddings
  const ts = [...inp.timestep];
  const tB = ts.length === 1 ? Array(B).fill(ts[0]) : ts;
  const tSin: T = { d: Float64Array.from(sinusoid(tB, p.timeProjDim, p.flipSinToCos, p.freqShift).flat()), s: [B, p.timeProjDim] };
  const mlp = (x: T, pre: string) => lin(silu(lin(x, `${pre}.linear_1`, p.timeEmbedDim)), `${pre}.linear_2`, p.timeEmbedDim);
  const tEmb = mlp(tSin, 'time_embedding');
  const ids = sinusoid([...inp.timeIds], p.additionTimeEmbedDim, p.flipSinToCos, p.freqShift);
  const addIn = zeros([B, p.projectionClassEmbeddingsInputDim]);
  for (let n = 0; n < B; n++) {
    const row = [...inp.textEmbeds.subarray(n * p.textEmbedsDim, (n + 1) * p.textEmbedsDim), ...ids.slice(n * 6, n * 6 + 6).flat()];
    addIn.d.set(row, n * row.length);
  }
  const emb = add(tEmb, mlp(addIn, 'add_embedding'));
  const embAct = silu(emb);
  const ehs: T = { d: Float64Array.from(inp.encoderHiddenStates), s: inp.ehsShape };

  const resnet = (x: T, pre: string, outC: number, scale: number): T => {
    let h = cv(silu(gn(x, `${pre}.norm1`, p.normEps)), `${pre}.conv1`, 3);
    const t = lin(embAct, `${pre}.time_emb_proj`, outC);
    const sp = h.s[2] * h.s[3];
    h = { d: h.d.map((v, i) => v + t.d[Math.floor(i / sp)]), s: h.s };
    h = cv(silu(gn(h, `${pre}.norm2`, p.normEps)), `${pre}.conv2`, 3);
    const skip = x.s[1] !== outC ? cv(x, `${pre}.conv_shortcut`, 1) : x;
    return map(add(skip, h), (v) => v / scale);
  };
  const attn = (x: T, ctx: T, pre: string, heads: number): T => {
    const C = x.s[2];
    const o = attention(lin(x, `${pre}.to_q`, C, false), lin(ctx, `${pre}.to_k`, C, false), lin(ctx, `${pre}.to_v`, C, false), heads);
    return lin(o, `${pre}.to_out.0`, C);
  };
  const transformer = (x: T, pre: string, heads: number, depth: number): T => {
    const [, C, H, W] = x.s;
    const n = gn(x, `${pre}.norm`, p.transformerNormEps);
    let t = p.useLinearProjection ? lin(toTokens(n), `${pre}.proj_in`, C) : toTokens(cv(n, `${pre}.proj_in`, 1));
    for (let i = 0; i < depth; i++) {
      const b = `${pre}.transformer_blocks.${i}`;
      const ln = (y: T, k: string) => layerNorm(y, 1e-5, w(`${b}.${k}.weight`), w(`${b}.${k}.bias`));
      const n1 = ln(t, 'norm1');
      t = add(attn(n1, n1, `${b}.attn1`, heads), t);
      t = add(attn(ln(t, 'norm2'), ehs, `${b}.attn2`, heads), t);
      const inner = w(`${b}.ff.net.0.proj.bias`).length / 2;
      const pr = lin(ln(t, 'norm3'), `${b}.ff.net.0.proj`, 2 * inner);
      const rows = pr.d.length / (2 * inner);
      const gg = zeros([...t.s.slice(0, -1), inner]);
      for (let r = 0; r < rows; r++) for (let i2 = 0; i2 < inner; i2++) {
        const a = pr.d[r * 2 * inner + i2], gate = pr.d[r * 2 * inner + inner + i2];
        gg.d[r * inner + i2] = a * 0.5 * gate * (1 + erf(gate / Math.SQRT2));
      }
      t = add(lin(gg, `${b}.ff.net.2`, C), t);
    }
    const y = p.useLinearProjection ? fromTokens(lin(t, `${pre}.proj_out`, C), H, W) : cv(fromTokens(t, H, W), `${pre}.proj_out`, 1);
    return add(y, x);
  };

  let h = cv({ d: Float64Array.from(inp.sample), s: inp.sampleShape }, 'conv_in', p.convInKernel);
  const skips: T[] = [h];
  p.down.forEach((blk, i) => {
    for (let j = 0; j < blk.resnets; j++) {
      h = resnet(h, `down_blocks.${i}.resnets.${j}`, blk.channels, p.resnetOutScale);
      if (blk.transformerDepths.length) h = transformer(h, `down_blocks.${i}.attentions.${j}`, blk.heads, blk.transformerDepths[j]);
      skips.push(h);
    }
    if (blk.resample) skips.push((h = cv(h, `down_blocks.${i}.downsamplers.0.conv`, 3, 2, p.downsamplePadding)));
  });
  if (p.mid) {
    h = resnet(h, 'mid_block.resnets.0', p.mid.channels, p.midBlockScale);
    p.mid.transformerDepths.forEach((d, j) => {
      h = transformer(h, `mid_block.attentions.${j}`, p.mid!.heads, d);
      h = resnet(h, `mid_block.resnets.${j + 1}`, p.mid!.channels, p.midBlockScale);
    });
  }
  p.up.forEach((blk, i) => {
    for (let j = 0; j < blk.resnets; j++) {
      h = resnet(concatChannels(h, skips.pop()!), `up_blocks.${i}.resnets.${j}`, blk.channels, p.resnetOutScale);
      if (blk.transformerDepths.length) h = transformer(h, `up_blocks.${i}.attentions.${j}`, blk.heads, blk.transformerDepths[j]);
    }
    if (blk.resample) {
      const s = skips[skips.length - 1].s;
      h = cv(nearest(h, s[2], s[3]), `up_blocks.${i}.upsamplers.0.conv`, 3);
    }
  });
  h = silu(gn(h, 'conv_norm_out', p.normEps));
  return cv(h, 'conv_out', p.convOutKernel);
}
