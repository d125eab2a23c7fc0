/**
 * Composite ops shared by the CLIP, U-Net and VAE builders. Each takes the builder and the
 * diffusers/transformers key prefix of its module and names its nodes under that scope.
 * All activations are in the builder's compute dtype unless said otherwise.
 */
import { GraphError, type AttrValue, type GraphBuilder, type Value } from './graph';
import { fusedAttention, fusedGelu, fusedSilu, fusedSkipLayerNorm } from './fused-ops';

export function shapeOf(v: Value): number[] {
  if (!v.shape) throw new GraphError(`value ${v.name}: static shape unknown`);
  return v.shape;
}

/** Reshape to a fully static target. */
export function reshape(g: GraphBuilder, x: Value, dims: number[]): Value {
  return g.op1('Reshape', [x, g.constI64(dims)]);
}

export function transpose(g: GraphBuilder, x: Value, perm: number[]): Value {
  return g.op1('Transpose', [x], { perm });
}

/**
 * torch Linear: y = x W^T (+ b), weight `${prefix}.weight` [out, in]. Written as Gemm(transB=1) on a
 * 2-D view of x, so the weight is used as stored (no Transpose to constant-fold at session start).
 * `scale` multiplies the result inside the Gemm (alpha = beta = scale: scale·(x W^T + b)), e.g. attention's
 * head_dim^-0.5 on the queries without a Mul kernel of its own.
 */
export function linear(g: GraphBuilder, x: Value, prefix: string, opts: { bias?: boolean; outFeatures?: number; scale?: number } = {}): Value {
  return g.scope(prefix, () => {
    const xs = shapeOf(x);
    const inF = xs[xs.length - 1];
    const wShape = g.weightShape(`${prefix}.weight`);
    if (!wShape && opts.outFeatures === undefined) g.weight(`${prefix}.weight`); // throws: missing tensor
    const outF = opts.outFeatures ?? wShape![0];
    const w = g.weight(`${prefix}.weight`, [outF, inF]);
    const b = opts.bias === false ? '' : g.weight(`${prefix}.bias`, [outF]);
    const rows = xs.slice(0, -1).reduce((p, q) => p * q, 1);
    const x2 = xs.length === 2 ? x : reshape(g, x, [rows, inF]);
    const attrs: Record<string, AttrValue> = { transB: 1 };
    if (opts.scale !== undefined && opts.scale !== 1) attrs['alpha'] = attrs['beta'] = { float: opts.scale };
    const y = g.op1('Gemm', b === '' ? [x2, w] : [x2, w, b], attrs);
    return xs.length === 2 ? y : reshape(g, y, [...xs.slice(0, -1), outF]);
  });
}

/** torch Conv2d with explicit kernel_shape/strides/dilations/pads (the JSEP build needs all four). */
export function conv2d(g: GraphBuilder, x: Value, prefix: string, opts: { stride?: number; padding?: number; bias?: boolean; /** [top, left, bottom, right] */ pads?: number[] } = {}): Value {
  return g.scope(prefix, () => {
    const cin = shapeOf(x)[1];
    const ws = g.weightShape(`${prefix}.weight`);
    if (!ws) g.weight(`${prefix}.weight`); // throws: missing tensor
    if (ws && ws.length !== 4) throw new GraphError(`${g.weights.describe()}: tensor "${prefix}.weight" has shape [${ws}], expected a 4-D conv kernel [out, ${cin}, kh, kw]`);
    const [cout, , kh, kw] = ws ?? [-1, cin, -1, -1];
    const w = g.weight(`${prefix}.weight`, [cout, cin, kh, kw]);
    const b = opts.bias === false ? '' : g.weight(`${prefix}.bias`, [cout]);
    const s = opts.stride ?? 1;
    const ph = opts.padding ?? (kh - 1) / 2, pw = opts.padding ?? (kw - 1) / 2;
    return g.op1('Conv', b === '' ? [x, w] : [x, w, b], {
      kernel_shape: [kh, kw], strides: [s, s], dilations: [1, 1], pads: opts.pads ?? [ph, pw, ph, pw], group: 1,
    });
  });
}

/**
 * GroupNorm over [B, C, ...]: Reshape [B, G, -1] -> InstanceNormalization(scale 1, bias 0) -> Reshape
 * -> * weight + bias (the WebGPU EP has no GroupNorm kernel). With fp16 compute the statistics run in
 * fp32 unless `fp32Stats: false` (fp16 normalisation over large spatial sizes has overflowed in ORT).
 */
export function groupNorm(g: GraphBuilder, x: Value, prefix: string, groups: number, eps: number, opts: { fp32Stats?: boolean } = {}): Value {
  return g.scope(prefix, () => {
    const xs = shapeOf(x);
    const [b, c] = xs;
    if (c % groups) throw new GraphError(`${prefix}: ${c} channels are not divisible into ${groups} groups`);
    const statsType = g.compute === 'float16' && opts.fp32Stats !== false ? 'float32' : x.dtype;
    const spatial = xs.slice(2).reduce((p, q) => p * q, 1);
    const xr = g.cast(reshape(g, x, [b, groups, (c / groups) * spatial]), statsType);
    const ones = g.constFloat(Array(groups).fill(1), [groups], statsType);
    const zeros = g.constFloat(Array(groups).fill(0), [groups], statsType);
    const n = g.op1('InstanceNormalization', [xr, ones, zeros], { epsilon: { float: eps } });
    const back = reshape(g, g.cast(n, x.dtype), xs);
    const aff = [c, ...xs.slice(2).map(() => 1)];
    const w = reshape(g, g.weight(`${prefix}.weight`, [c]), aff);
    const bias = reshape(g, g.weight(`${prefix}.bias`, [c]), aff);
    return g.op1('Add', [g.op1('Mul', [back, w]), bias]);
  });
}

/** LayerNorm over the last axis (ONNX LayerNormalization, opset 17). */
export function layerNorm(g: GraphBuilder, x: Value, prefix: string, eps: number): Value {
  return g.scope(prefix, () => {
    const c = shapeOf(x).at(-1)!;
    const w = g.weight(`${prefix}.weight`, [c]);
    const b = g.weight(`${prefix}.bias`, [c]);
    return g.op1('LayerNormalization', [x, w, b], { axis: -1, epsilon: { float: eps } });
  });
}

/** { sum: x + skip, norm: LayerNorm(sum) } (one SkipLayerNormalization kernel when allowed). */
export function addLayerNorm(g: GraphBuilder, x: Value, skip: Value, prefix: string, eps: number, addScope: string): { sum: Value; norm: Value } {
  const c = shapeOf(x).at(-1)!;
  const fused = g.scope(prefix, () => fusedSkipLayerNorm(g, x, skip, g.weight(`${prefix}.weight`, [c]), g.weight(`${prefix}.bias`, [c]), eps));
  if (fused) return fused;
  const sum = g.scope(addScope, () => g.op1('Add', [x, skip]));
  return { sum, norm: layerNorm(g, sum, prefix, eps) };
}

export function silu(g: GraphBuilder, x: Value): Value {
  const fused = fusedSilu(g, x);
  if (fused) return fused;
  return g.op1('Mul', [x, g.op1('Sigmoid', [x])]);
}

/** Exact (erf) GELU: 0.5 x (1 + erf(x / sqrt 2)). */
export function gelu(g: GraphBuilder, x: Value): Value {
  const fused = fusedGelu(g, x);
  if (fused) return fused;
  const e = g.op1('Erf', [g.op1('Mul', [x, g.scalar(Math.SQRT1_2)])]);
  return g.op1('Mul', [g.op1('Mul', [x, g.scalar(0.5)]), g.op1('Add', [e, g.scalar(1)])]);
}

/** CLIP's quick_gelu: x * sigmoid(1.702 x). */
export function quickGelu(g: GraphBuilder, x: Value): Value {
  return g.op1('Mul', [x, g.op1('Sigmoid', [g.op1('Mul', [x, g.scalar(1.702)])])]);
}

/** diffusers GEGLU: proj(x).chunk(2) -> value * gelu(gate) (one BiasSplitGelu kernel after the Gemm when allowed). */
export function geglu(g: GraphBuilder, x: Value, prefix: string): Value {
  if (g.fused.biasSplitGelu && shapeOf(x).length === 3) {
    const h = linear(g, x, `${prefix}.proj`, { bias: false, outFeatures: g.weightShape(`${prefix}.proj.weight`)?.[0] });
    const bias = g.weight(`${prefix}.proj.bias`, [shapeOf(h)[2]]);
    return g.scope(prefix, () => g.op1('BiasSplitGelu', [h, bias], {}, { domain: 'com.microsoft' }));
  }
  const h = linear(g, x, `${prefix}.proj`);
  const hs = shapeOf(h);
  const half = hs[hs.length - 1] / 2;
  return g.scope(prefix, () => {
    const [a, gate] = g.op('Split', [h, g.constI64([half, half])], { axis: -1 }, { outputs: 2 });
    return g.op1('Mul', [a, gelu(g, gate)]);
  });
}

export interface AttentionOptions {
  heads: number;
  /** Softmax scale; default head_dim^-0.5. */
  scale?: number;
  /** Additive mask broadcastable to [B, heads, Tq, Tk] (e.g. a causal [Tq, Tk] constant). */
  mask?: Value;
  /** Largest probabilities tensor [B, heads, Tq(chunk), Tk] in bytes; default 128 MiB. */
  maxBindingBytes?: number;
  /** q is already multiplied by the scale (e.g. by its projection: `attentionScale` + linear's `scale`). */
  qScaled?: boolean;
}

/** The softmax scale of attention with this many channels and heads: head_dim^-0.5. */
export function attentionScale(channels: number, heads: number): number {
  return 1 / Math.sqrt(channels / heads);
}

/**
 * Scaled dot-product attention, decomposed: Reshape/Transpose to heads, MatMul, scale, Softmax,
 * MatMul (exact on both WebGPU builds, unlike com.microsoft.MultiHeadAttention on the native EP).
 * q [B, Tq, C], k and v [B, Tk, C] -> [B, Tq, C]. The scale is applied to q before the first MatMul
 * (by the q projection's Gemm when the caller says `qScaled`; else by a Mul)
 * (Tq*D multiplies instead of Tq*Tk; keeps fp16 scores smaller). When B*heads*Tq*Tk*bytes exceeds
 * maxBindingBytes the queries are split into chunks (Split + Concat) that each fit.
 */
export function attention(g: GraphBuilder, q: Value, k: Value, v: Value, opts: AttentionOptions): Value {
  const [b, tq, c] = shapeOf(q);
  const tk = shapeOf(k)[1];
  const h = opts.heads;
  if (c % h) throw new GraphError(`attention: ${c} channels are not divisible into ${h} heads`);
  const d = c / h;
  const scale = opts.scale ?? 1 / Math.sqrt(d);
  const maxBytes = opts.maxBindingBytes ?? 128 * 2 ** 20;
  // one fused kernel when allowed, for attention without a mask that needs no query chunks
  if (!opts.mask && b * h * tq * tk * g.computeBytes <= maxBytes) {
    const fused = g.scope('attn', () => fusedAttention(g, q, k, v, h, opts.qScaled ? 1 : scale));
    if (fused) return fused;
  }
  return g.scope('attn', () => {
    const qs0 = opts.qScaled ? q : g.op1('Mul', [q, g.scalar(scale)]);
    const q4 = transpose(g, reshape(g, qs0, [b, tq, h, d]), [0, 2, 1, 3]);
    const kT = transpose(g, reshape(g, k, [b, tk, h, d]), [0, 2, 3, 1]);
    const v4 = transpose(g, reshape(g, v, [b, tk, h, d]), [0, 2, 1, 3]);
    const rowBytes = b * h * tk * g.computeBytes;
    const rows = Math.max(1, Math.min(tq, Math.floor(maxBytes / rowBytes)));
    const nChunks = Math.ceil(tq / rows);
    const sizes = Array.from({ length: nChunks }, (_, i) => Math.min(rows, tq - i * rows));
    const qs = nChunks === 1 ? [q4] : g.op('Split', [q4, g.constI64(sizes)], { axis: 2 }, { outputs: nChunks });
    let start = 0;
    const outs = qs.map((qc, i) => {
      let s = g.op1('MatMul', [qc, kT]);
      if (opts.mask) {
        const m = nChunks === 1 ? opts.mask : sliceRows(g, opts.mask, start, start + sizes[i]);
        s = g.op1('Add', [s, m]);
      }
      start += sizes[i];
      return g.op1('MatMul', [g.op1('Softmax', [s], { axis: -1 }), v4]);
    });
    const o = outs.length === 1 ? outs[0] : g.op1('Concat', outs, { axis: 2 });
    return reshape(g, transpose(g, o, [0, 2, 1, 3]), [b, tq, c]);
  });
}

function sliceRows(g: GraphBuilder, mask: Value, from: number, to: number): Value {
  const r = shapeOf(mask).length;
  return g.op1('Slice', [mask, g.constI64([from]), g.constI64([to]), g.constI64([r - 2])]);
}

/**
 * Additive causal mask [T, T] in the compute dtype: 0 on/below the diagonal, a large FINITE negative
 * above (WGSL lets shader compilers assume no infinities, so -inf is avoided): -1e9 in fp32,
 * -3e4 in fp16 (stays finite after adding fp16 scores). exp() of it underflows to exactly 0.
 */
export function causalMask(g: GraphBuilder, t: number): Value {
  const neg = g.compute === 'float16' ? -3e4 : -1e9;
  const m = new Float32Array(t * t);
  for (let i = 0; i < t; i++) for (let j = i + 1; j < t; j++) m[i * t + j] = neg;
  return g.constFloat(m, [t, t]);
}

/** Nearest-neighbour resize of [B, C, H, W] to an exact size (torch F.interpolate mode="nearest"). */
export function upsampleNearest(g: GraphBuilder, x: Value, outH: number, outW: number): Value {
  const [b, c] = shapeOf(x);
  return g.op1('Resize', [x, '', '', g.constI64([b, c, outH, outW])], {
    mode: 'nearest', coordinate_transformation_mode: 'asymmetric', nearest_mode: 'floor',
  });
}
