/**
 * The U-Net's building blocks, as diffusers defines them: ResnetBlock2D, Transformer2DModel with its
 * BasicTransformerBlocks (self-attention, cross-attention, GEGLU feed-forward), Downsample2D and
 * Upsample2D. Each takes the diffusers module path as its weight-key prefix. Node names: ops.* name
 * their nodes after their own full key prefix, so the blocks scope only the nodes they add themselves
 * (nesting full prefixes would repeat every path).
 */
import { GraphError, type GraphBuilder, type Value } from './graph';
import { addLayerNorm, attention, attentionScale, conv2d, geglu, groupNorm, layerNorm, linear, reshape, shapeOf, silu, transpose, upsampleNearest } from './ops';

/** Channel multiple below which onnxruntime-web's native WebGPU Conv can be wrong (see conv()). */
const CONV_CHANNEL_ALIGN = 4;

/**
 * torch Conv2d `prefix` with a square kernel k, checked against the checkpoint (the error names the
 * tensor, expected and found shape) before the graph uses it.
 *
 * Workaround: onnxruntime-web 1.30's native WebGPU EP (`onnxruntime-web/webgpu`) computes a k > 1 Conv
 * wrong when the input channel count is not a multiple of 4 and the output count is (measured in Node
 * over Dawn/lavapipe: Cin 6 -> Cout 8/12/16 and 18 -> 12 off by 0.2-7; the JSEP build and wasm are exact).
 * Such convs get their input and kernel zero-padded on the channel axis to a multiple of 4 (Pad of an
 * initializer is constant-folded at session creation; the zeros add nothing to the sums). SDXL-family
 * channel counts are multiples of 4 everywhere, so real checkpoints never take this path; tiny test
 * models (and e.g. a 9-channel inpainting conv_in) do.
 */
export function conv(g: GraphBuilder, x: Value, prefix: string, cout: number, k: number, opts: { stride?: number; padding?: number } = {}): Value {
  const [b, cin, h, w] = shapeOf(x);
  g.weight(`${prefix}.weight`, [cout, cin, k, k]);
  g.weight(`${prefix}.bias`, [cout]);
  const extra = (CONV_CHANNEL_ALIGN - (cin % CONV_CHANNEL_ALIGN)) % CONV_CHANNEL_ALIGN;
  const padding = opts.padding ?? (k - 1) / 2;
  const stride = opts.stride ?? 1;
  if (k === 1 || extra === 0) return conv2d(g, x, prefix, { stride, padding });
  return g.scope(prefix, () => {
    const pads = g.constI64([0, 0, 0, 0, 0, extra, 0, 0]);
    // Pad has no static shape inference in the builder: the padded shapes are set here
    const xp: Value = { ...g.op1('Pad', [x, pads], { mode: 'constant' }, { name: 'pad_channels' }), shape: [b, cin + extra, h, w] };
    const wp: Value = { ...g.op1('Pad', [g.weight(`${prefix}.weight`), pads], { mode: 'constant' }, { name: 'pad_kernel' }), shape: [cout, cin + extra, k, k] };
    return g.op1('Conv', [xp, wp, g.weight(`${prefix}.bias`)], {
      kernel_shape: [k, k], strides: [stride, stride], dilations: [1, 1], pads: [padding, padding, padding, padding], group: 1,
    });
  });
}

export interface ResnetParams {
  groups: number;
  eps: number;
  /** output_scale_factor: (x + h) / scale */
  outScale: number;
}

/**
 * ResnetBlock2D (time_embedding_norm "default"):
 * h = conv1(silu(norm1(x))) + time_emb_proj(silu(emb)); h = conv2(silu(norm2(h)));
 * out = (shortcut(x) + h) / scale, shortcut a 1x1 conv when the channel count changes.
 * `embAct` is silu(emb) [B or 1, E], computed once for all resnets.
 */
export function resnet(g: GraphBuilder, x: Value, embAct: Value, prefix: string, outC: number, p: ResnetParams): Value {
  const cin = shapeOf(x)[1];
  const at = <R>(sub: string, fn: () => R) => g.scope(`${prefix}.${sub}`, fn);
  let y = groupNorm(g, x, `${prefix}.norm1`, p.groups, p.eps);
  y = at('act1', () => silu(g, y));
  y = conv(g, y, `${prefix}.conv1`, outC, 3);
  const t = linear(g, embAct, `${prefix}.time_emb_proj`, { outFeatures: outC });
  y = at('time_emb_proj', () => g.op1('Add', [y, reshape(g, t, [shapeOf(t)[0], outC, 1, 1])]));
  y = groupNorm(g, y, `${prefix}.norm2`, p.groups, p.eps);
  y = at('act2', () => silu(g, y));
  y = conv(g, y, `${prefix}.conv2`, outC, 3);
  let skip = x;
  if (cin !== outC) {
    skip = conv(g, x, `${prefix}.conv_shortcut`, outC, 1);
  } else if (g.hasWeight(`${prefix}.conv_shortcut.weight`)) {
    throw new GraphError(`${g.weights.describe()}: unexpected tensor "${prefix}.conv_shortcut.weight" (resnet ${prefix} keeps ${cin} channels, so diffusers has no shortcut conv)`);
  }
  return at('out', () => {
    const out = g.op1('Add', [skip, y]);
    return p.outScale === 1 ? out : g.op1('Div', [out, g.scalar(p.outScale)]);
  });
}

export interface TransformerParams {
  heads: number;
  depth: number;
  groups: number;
  /** Transformer2DModel GroupNorm eps (1e-6 in diffusers) */
  normEps: number;
  useLinearProjection: boolean;
  maxBindingBytes: number;
}

/**
 * Transformer2DModel (continuous input): GroupNorm -> proj_in (Linear on [B, HW, C], or 1x1 conv
 * before flattening when use_linear_projection is false) -> BasicTransformerBlocks -> proj_out -> + x.
 */
export function transformer2d(g: GraphBuilder, x: Value, ehs: Value, prefix: string, p: TransformerParams): Value {
  const [b, c, h, w] = shapeOf(x);
  const at = <R>(sub: string, fn: () => R) => g.scope(`${prefix}.${sub}`, fn);
  const n = groupNorm(g, x, `${prefix}.norm`, p.groups, p.normEps);
  const toTokens = (v: Value) => at('to_tokens', () => reshape(g, transpose(g, v, [0, 2, 3, 1]), [b, h * w, c]));
  const fromTokens = (v: Value) => at('from_tokens', () => transpose(g, reshape(g, v, [b, h, w, c]), [0, 3, 1, 2]));
  let t: Value;
  if (p.useLinearProjection) {
    t = linear(g, toTokens(n), `${prefix}.proj_in`, { outFeatures: c });
  } else {
    t = toTokens(conv(g, n, `${prefix}.proj_in`, c, 1));
  }
  for (let i = 0; i < p.depth; i++) t = basicTransformerBlock(g, t, ehs, `${prefix}.transformer_blocks.${i}`, p);
  let y: Value;
  if (p.useLinearProjection) {
    y = fromTokens(linear(g, t, `${prefix}.proj_out`, { outFeatures: c }));
  } else {
    y = conv(g, fromTokens(t), `${prefix}.proj_out`, c, 1);
  }
  return at('residual', () => g.op1('Add', [y, x]));
}

/** BasicTransformerBlock: x += attn1(norm1 x); x += attn2(norm2 x, ehs); x += ff(norm3 x). LayerNorm eps 1e-5. */
function basicTransformerBlock(g: GraphBuilder, x: Value, ehs: Value, prefix: string, p: TransformerParams): Value {
  const n1 = layerNorm(g, x, `${prefix}.norm1`, 1e-5);
  // each residual Add and the LayerNorm after it: one SkipLayerNormalization when fused kernels are allowed
  const a = addLayerNorm(g, attentionModule(g, n1, n1, `${prefix}.attn1`, p), x, `${prefix}.norm2`, 1e-5, `${prefix}.attn1`);
  const b = addLayerNorm(g, attentionModule(g, a.norm, ehs, `${prefix}.attn2`, p), a.sum, `${prefix}.norm3`, 1e-5, `${prefix}.attn2`);
  return g.scope(`${prefix}.ff`, () => g.op1('Add', [feedForward(g, b.norm, `${prefix}.ff`, p.maxBindingBytes), b.sum]));
}

/** diffusers Attention: to_q/to_k/to_v without bias, SDPA (scale head_dim^-0.5), to_out.0 with bias. */
function attentionModule(g: GraphBuilder, x: Value, ctx: Value, prefix: string, p: TransformerParams): Value {
  const c = shapeOf(x)[2];
  // the softmax scale rides on the q projection's Gemm (alpha): one kernel fewer per attention
  const q = linear(g, x, `${prefix}.to_q`, { bias: false, outFeatures: c, scale: attentionScale(c, p.heads) });
  const k = linear(g, ctx, `${prefix}.to_k`, { bias: false, outFeatures: c });
  const v = linear(g, ctx, `${prefix}.to_v`, { bias: false, outFeatures: c });
  const o = g.scope(prefix, () => attention(g, q, k, v, { heads: p.heads, maxBindingBytes: p.maxBindingBytes, qScaled: true }));
  return linear(g, o, `${prefix}.to_out.0`, { outFeatures: c });
}

/**
 * FeedForward with GEGLU: ff.net.0 (GEGLU proj to 2*inner) -> ff.net.2 (Linear inner -> C).
 * When the [B*T, 2*inner] projection would exceed maxBindingBytes, the tokens are processed in
 * chunks (the op is row-wise, so the result is identical).
 */
function feedForward(g: GraphBuilder, x: Value, prefix: string, maxBindingBytes: number): Value {
  const [b, t, c] = shapeOf(x);
  const projShape = g.weightShape(`${prefix}.net.0.proj.weight`);
  if (!projShape || projShape.length !== 2 || projShape[1] !== c || projShape[0] % 2) {
    throw new GraphError(`${g.weights.describe()}: tensor "${prefix}.net.0.proj.weight" has shape ${projShape ? `[${projShape}]` : '(missing)'}, expected [2*inner, ${c}] (GEGLU)`);
  }
  const inner = projShape[0] / 2;
  g.weight(`${prefix}.net.2.weight`, [c, inner]);
  const one = (xc: Value) => linear(g, geglu(g, xc, `${prefix}.net.0`), `${prefix}.net.2`, { outFeatures: c });
  const rowBytes = b * 2 * inner * g.computeBytes;
  const rows = Math.max(1, Math.min(t, Math.floor(maxBindingBytes / rowBytes)));
  if (rows >= t) return one(x);
  // as few chunks as fit, of near-equal size
  const n = Math.ceil(t / rows);
  const sizes = Array.from({ length: n }, (_, i) => Math.floor(t / n) + (i < t % n ? 1 : 0));
  const parts = g.scope(`${prefix}.chunks`, () => g.op('Split', [x, g.constI64(sizes)], { axis: 1 }, { outputs: n }));
  const outs = parts.map(one);
  return g.scope(`${prefix}.chunks`, () => g.op1('Concat', outs, { axis: 1 }));
}

/** Downsample2D (use_conv): 3x3 conv, stride 2, symmetric padding `padding` (>= 1; checked by planUnet). */
export function downsample(g: GraphBuilder, x: Value, prefix: string, padding: number): Value {
  const c = shapeOf(x)[1];
  return conv(g, x, `${prefix}.conv`, c, 3, { stride: 2, padding });
}

/**
 * Upsample2D (use_conv): nearest-neighbour to (outH, outW) — the skip tensor's size, which is 2x the
 * input except where diffusers passes an explicit upsample_size — then a 3x3 conv.
 */
export function upsample(g: GraphBuilder, x: Value, prefix: string, outH: number, outW: number): Value {
  const c = shapeOf(x)[1];
  const u = g.scope(`${prefix}.interpolate`, () => upsampleNearest(g, x, outH, outW));
  return conv(g, u, `${prefix}.conv`, c, 3);
}
