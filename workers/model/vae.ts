/**
 * AutoencoderKL decoder (diffusers `post_quant_conv` + `decoder`) as an ONNX graph, from config.json.
 * Input `latents_scaled` [B, latent_channels, h, w] (latents already divided by scaling_factor),
 * output `image` [B, out_channels, h*2^k, w*2^k], unclamped. Computes in fp32 by default: the stock
 * SDXL VAE overflows fp16 (pass compute 'float16' only for an fp16-safe VAE such as sdxl-vae-fp16-fix).
 * Accepts the pre-rename attention names query/key/value/proj_attn (Linear or 1x1-conv shaped).
 */
import { GraphBuilder, GraphError, type BuiltGraph, type Compute, type Value } from './graph';
import { attention, conv2d, groupNorm, reshape, shapeOf, transpose } from './ops';
import { bandAdd, bandConv, bandDownsample, bandGroupNorm, bandSilu, bandUpsample2x, fromBands, toBands, type Bands } from './bands';
import type { WeightIndex } from './weights';

export interface VaeConfig {
  block_out_channels: number[];
  latent_channels: number;
  out_channels?: number;
  layers_per_block: number;
  norm_num_groups?: number;
  act_fn?: string;
  up_block_types?: string[];
  mid_block_add_attention?: boolean;
  use_post_quant_conv?: boolean;
  norm_type?: string;
  [k: string]: unknown;
}

export interface VaeBuildOptions {
  batch: number;
  /** Latent height and width. */
  height: number;
  width: number;
  compute?: Compute;
  /**
   * Largest single tensor (bytes, default 128 MiB): attention queries are chunked to fit, and when an
   * up-path activation would be larger the up path runs in row bands (exact, see bands.ts).
   */
  maxBindingBytes?: number;
  configName?: string;
}

const EPS = 1e-6;

/** Checks the config fields that change the decoder's math; throws naming the field. */
export function checkVaeConfig(cfg: VaeConfig, where: string): void {
  const bad = (field: string, found: unknown, supported: string) => {
    throw new GraphError(`${where}: unsupported "${field}" ${JSON.stringify(found)} (supported: ${supported})`);
  };
  if (!Array.isArray(cfg.block_out_channels) || !cfg.block_out_channels.length || !cfg.block_out_channels.every((c) => Number.isInteger(c) && c > 0)) {
    bad('block_out_channels', cfg.block_out_channels, 'a non-empty list of positive integers');
  }
  if ((cfg.act_fn ?? 'silu') !== 'silu') bad('act_fn', cfg.act_fn, '"silu"');
  if ((cfg.norm_type ?? 'group') !== 'group') bad('norm_type', cfg.norm_type, '"group"');
  for (const t of cfg.up_block_types ?? []) if (t !== 'UpDecoderBlock2D') bad('up_block_types', t, '"UpDecoderBlock2D"');
  if (cfg.up_block_types && cfg.up_block_types.length !== cfg.block_out_channels.length) {
    bad('up_block_types', cfg.up_block_types, `one entry per block_out_channels entry (${cfg.block_out_channels.length})`);
  }
  if (!Number.isInteger(cfg.layers_per_block) || cfg.layers_per_block < 1) bad('layers_per_block', cfg.layers_per_block, 'a positive integer');
  if (!Number.isInteger(cfg.latent_channels) || cfg.latent_channels < 1) bad('latent_channels', cfg.latent_channels, 'a positive integer');
}

/** Builds the decoder graph. */
export function buildVaeDecoderGraph(config: VaeConfig, weights: WeightIndex, opts: VaeBuildOptions): BuiltGraph {
  const where = opts.configName ?? 'vae/config.json';
  checkVaeConfig(config, where);
  const groups = config.norm_num_groups ?? 32;
  const ch = config.block_out_channels;
  const g = new GraphBuilder({ name: 'AutoencoderKL.decoder', weights, compute: opts.compute ?? 'float32' });
  let x = g.toCompute(g.input('latents_scaled', 'float32', [opts.batch, config.latent_channels, opts.height, opts.width]));

  if (config.use_post_quant_conv !== false) x = conv2d(g, x, 'post_quant_conv');
  x = conv2d(g, x, 'decoder.conv_in');
  const top = ch[ch.length - 1];
  if (shapeOf(x)[1] !== top) throw new GraphError(`${weights.describe()}: "decoder.conv_in.weight" gives ${shapeOf(x)[1]} channels, expected ${top} (block_out_channels[-1])`);
  x = resnet(g, [x], 'decoder.mid_block.resnets.0', top, groups)[0];
  if (config.mid_block_add_attention !== false) x = midAttention(g, x, 'decoder.mid_block.attentions.0', groups, opts.maxBindingBytes);
  x = resnet(g, [x], 'decoder.mid_block.resnets.1', top, groups)[0];

  const rev = [...ch].reverse();
  let b: Bands = toBands(g, x, bandCount(rev, shapeOf(x), g.computeBytes, opts.maxBindingBytes ?? 128 * 2 ** 20));
  rev.forEach((out, i) => {
    const p = `decoder.up_blocks.${i}`;
    for (let j = 0; j <= config.layers_per_block; j++) b = resnet(g, b, `${p}.resnets.${j}`, out, groups);
    if (i < rev.length - 1) b = g.scope(`${p}.upsamplers.0`, () => bandConv(g, bandUpsample2x(g, b), `${p}.upsamplers.0.conv`));
  });
  b = bandSilu(g, bandGroupNorm(g, b, 'decoder.conv_norm_out', groups, EPS));
  x = fromBands(g, bandConv(g, b, 'decoder.conv_out'));
  if (config.out_channels !== undefined && shapeOf(x)[1] !== config.out_channels) {
    throw new GraphError(`${weights.describe()}: "decoder.conv_out.weight" gives ${shapeOf(x)[1]} channels, expected out_channels ${config.out_channels}`);
  }
  g.output(x, 'image');
  return g.build();
}

export interface VaeEncoderOptions {
  batch: number;
  /** Image height and width in pixels (multiples of 2^(number of down blocks − 1)). */
  height: number;
  width: number;
  compute?: Compute;
  /** Largest single tensor (bytes, default 128 MiB): the down path runs in row bands to fit (bands.ts). */
  maxBindingBytes?: number;
  /** Multiply the mean by this (the VAE's scaling_factor: the pipeline's latent scale); default 1. */
  scale?: number;
  configName?: string;
}

/**
 * The encoder (diffusers `encoder` + `quant_conv`): `image` [B, in_channels, H, W] in [-1, 1] →
 * `latents` = the latent distribution's mean × `scale` [B, latent_channels, H/2^k, W/2^k] (diffusers'
 * `retrieve_latents(..., sample_mode="argmax")`, times scaling_factor as the img2img pipelines do), and
 * `moments` (mean and log-variance, unscaled). The down path runs in row bands when a tensor would
 * exceed `maxBindingBytes`: exact, like the decoder's up path.
 */
export function buildVaeEncoderGraph(config: VaeConfig, weights: WeightIndex, opts: VaeEncoderOptions): BuiltGraph {
  const where = opts.configName ?? 'vae/config.json';
  checkVaeConfig(config, where);
  for (const t of (config['down_block_types'] as string[] | undefined) ?? []) {
    if (t !== 'DownEncoderBlock2D') throw new GraphError(`${where}: unsupported "down_block_types" entry ${JSON.stringify(t)} (supported: "DownEncoderBlock2D")`);
  }
  const groups = config.norm_num_groups ?? 32;
  const ch = config.block_out_channels;
  const factor = 2 ** (ch.length - 1);
  if (opts.height % factor || opts.width % factor) {
    throw new GraphError(`VAE encoder: the image size ${opts.width}×${opts.height} must be a multiple of ${factor}`);
  }
  const inCh = Number(config['in_channels'] ?? 3);
  const g = new GraphBuilder({ name: 'AutoencoderKL.encoder', weights, compute: opts.compute ?? 'float32' });
  let x = g.toCompute(g.input('image', 'float32', [opts.batch, inCh, opts.height, opts.width]));
  const n = encoderBandCount(ch, [opts.batch, inCh, opts.height, opts.width], g.computeBytes, opts.maxBindingBytes ?? 128 * 2 ** 20);
  let b: Bands = bandConv(g, toBands(g, x, n, factor), 'encoder.conv_in');
  ch.forEach((out, i) => {
    const p = `encoder.down_blocks.${i}`;
    for (let j = 0; j < config.layers_per_block; j++) b = resnet(g, b, `${p}.resnets.${j}`, out, groups);
    if (i < ch.length - 1) b = bandDownsample(g, b, `${p}.downsamplers.0.conv`);
  });
  x = fromBands(g, b);
  const top = ch[ch.length - 1];
  x = resnet(g, [x], 'encoder.mid_block.resnets.0', top, groups)[0];
  if (config.mid_block_add_attention !== false) x = midAttention(g, x, 'encoder.mid_block.attentions.0', groups, opts.maxBindingBytes);
  x = resnet(g, [x], 'encoder.mid_block.resnets.1', top, groups)[0];
  x = conv2d(g, bandSilu(g, [groupNorm(g, x, 'encoder.conv_norm_out', groups, EPS)])[0], 'encoder.conv_out');
  if (config['use_quant_conv'] !== false) x = conv2d(g, x, 'quant_conv');
  const lc = config.latent_channels;
  if (shapeOf(x)[1] !== 2 * lc) throw new GraphError(`${weights.describe()}: the encoder gives ${shapeOf(x)[1]} channels, expected 2 × latent_channels = ${2 * lc}`);
  const moments = g.cast(x, 'float32');
  const mean = g.op1('Slice', [moments, g.constI64([0]), g.constI64([lc]), g.constI64([1])]);
  g.output(moments, 'moments');
  g.output(opts.scale !== undefined && opts.scale !== 1 ? g.op1('Mul', [mean, g.constF32([opts.scale], [])]) : mean, 'latents');
  return g.build();
}

/** Row bands for the encoder's down path (band heights multiples of its total downscale), as bandCount. */
function encoderBandCount(ch: number[], [b, c0, h, w]: number[], bytes: number, maxBytes: number): number {
  const factor = 2 ** (ch.length - 1);
  const perLevel: [number, number][] = []; // [bytes per row, downscale]
  let cin = c0;
  ch.forEach((out, i) => {
    const s = 2 ** i;
    perLevel.push([b * Math.max(cin, out, ch[0]) * (w / s) * bytes, s]);
    cin = out;
  });
  const units = h / factor;
  const fits = (n: number) => perLevel.every(([rowBytes, s]) => rowBytes * (Math.ceil(units / n) * (factor / s) + (n > 1 ? 2 : 0)) <= maxBytes);
  for (let n = 1; n <= units; n++) if (fits(n)) return n;
  return units;
}

/**
 * Row bands for the up path: the fewest (at most one per latent row) such that every up-path
 * activation band, including the two halo rows a 3x3 conv reads, fits `maxBytes`; 1 when all fits.
 */
function bandCount(rev: number[], [b, c0, h, w]: number[], bytes: number, maxBytes: number): number {
  // [bytes per row at that scale, scale] of the largest-channel tensor at each resolution
  const perScale: [number, number][] = [];
  let cin = c0, scale = 1;
  rev.forEach((out, i) => {
    perScale.push([b * Math.max(cin, out) * w * scale * bytes, scale]);
    if (i < rev.length - 1) {
      scale *= 2;
      perScale.push([b * out * w * scale * bytes, scale]);
    }
    cin = out;
  });
  const fits = (n: number) => perScale.every(([rowBytes, s]) => rowBytes * (Math.ceil(h / n) * s + (n > 1 ? 2 : 0)) <= maxBytes);
  for (let n = 1; n <= h; n++) if (fits(n)) return n;
  return h;
}

/** diffusers ResnetBlock2D without time embedding (eps 1e-6, output_scale_factor 1), over row bands. */
function resnet(g: GraphBuilder, x: Bands, p: string, out: number, groups: number): Bands {
  return g.scope(p, () => {
    const cin = shapeOf(x[0])[1];
    let h = bandConv(g, bandSilu(g, bandGroupNorm(g, x, `${p}.norm1`, groups, EPS)), `${p}.conv1`);
    if (shapeOf(h[0])[1] !== out) throw new GraphError(`${g.weights.describe()}: "${p}.conv1.weight" gives ${shapeOf(h[0])[1]} channels, expected ${out}`);
    h = bandConv(g, bandSilu(g, bandGroupNorm(g, h, `${p}.norm2`, groups, EPS)), `${p}.conv2`);
    const skip = cin === out ? x : x.map((v) => conv2d(g, v, `${p}.conv_shortcut`));
    return bandAdd(g, skip, h);
  });
}

/** A Linear of the attention block under its current or deprecated name (2-D or 1x1-conv weight). */
function attnLinear(g: GraphBuilder, x: Value, p: string, names: [string, string], c: number): Value {
  const [cur, old] = names;
  const key = g.hasWeight(`${p}.${cur}.weight`) || !g.hasWeight(`${p}.${old}.weight`) ? `${p}.${cur}` : `${p}.${old}`;
  return g.scope(key, () => {
    const shape = g.weightShape(`${key}.weight`);
    let w = g.weight(`${key}.weight`, shape?.length === 4 ? [c, c, 1, 1] : [c, c]);
    if (shape?.length === 4) w = reshape(g, w, [c, c]);
    const b = g.weight(`${key}.bias`, [c]);
    const [bb, t] = shapeOf(x);
    const y = g.op1('Gemm', [reshape(g, x, [bb * t, c]), w, b], { transB: 1 });
    return reshape(g, y, [bb, t, c]);
  });
}

/** Mid-block self-attention: single head over all channels, residual connection. */
function midAttention(g: GraphBuilder, x: Value, p: string, groups: number, maxBindingBytes?: number): Value {
  return g.scope(p, () => {
    const [b, c, h, w] = shapeOf(x);
    const n = groupNorm(g, x, `${p}.group_norm`, groups, EPS);
    const seq = transpose(g, reshape(g, n, [b, c, h * w]), [0, 2, 1]);
    const q = attnLinear(g, seq, p, ['to_q', 'query'], c);
    const k = attnLinear(g, seq, p, ['to_k', 'key'], c);
    const v = attnLinear(g, seq, p, ['to_v', 'value'], c);
    const a = attnLinear(g, attention(g, q, k, v, { heads: 1, maxBindingBytes }), p, ['to_out.0', 'proj_attn'], c);
    const back = reshape(g, transpose(g, a, [0, 2, 1]), [b, c, h, w]);
    return g.op1('Add', [back, x]);
  });
}
