/**
 * TAESD / TAESDXL decoder (diffusers `AutoencoderTiny` decoder, e.g. madebyollin/taesdxl) as an ONNX graph
 * from its config.json and safetensors: tanh(x/3)·3, conv, then per block `num_decoder_blocks[i]` residual
 * blocks (3×3 conv·ReLU·3×3 conv·ReLU·3×3 conv + skip, ReLU), 2× nearest upsampling and a conv (bias only
 * on the last), output ×2 − 1 in [−1, 1] like the full VAE's. Input `latents_scaled` = latents / scaling_factor
 * (1.0 for TAESDXL). Ops: Conv, Relu, Tanh, Resize, Add, Mul — about 1.2 M parameters for TAESDXL, a few
 * ms on a GPU, so it serves live previews and an optional fast final decode. Runs in row bands when an
 * activation would exceed `maxBindingBytes` (64 channels at 1024² in fp32 are 256 MiB).
 */
import { GraphBuilder, GraphError, type BuiltGraph, type Compute } from './graph';
import { bandAdd, bandConv, bandUpsample2x, fromBands, toBands, type Bands } from './bands';
import { shapeOf } from './ops';
import type { WeightIndex } from './weights';

export interface TaesdConfig {
  latent_channels?: number;
  out_channels?: number;
  decoder_block_out_channels: number[];
  num_decoder_blocks: number[];
  upsampling_scaling_factor?: number;
  upsample_fn?: string;
  act_fn?: string;
  scaling_factor?: number;
  [k: string]: unknown;
}

export interface TaesdBuildOptions {
  batch: number;
  /** Latent height and width. */
  height: number;
  width: number;
  compute?: Compute;
  maxBindingBytes?: number;
  configName?: string;
}

/** True when a folder's config.json describes an AutoencoderTiny. */
export function isTaesdConfig(cfg: Record<string, unknown>): boolean {
  return cfg['_class_name'] === 'AutoencoderTiny' || (Array.isArray(cfg['num_decoder_blocks']) && Array.isArray(cfg['decoder_block_out_channels']));
}

export function buildTaesdDecoderGraph(config: TaesdConfig, weights: WeightIndex, opts: TaesdBuildOptions): BuiltGraph {
  const where = opts.configName ?? 'config.json';
  const bad = (field: string, found: unknown, supported: string) => {
    throw new GraphError(`${where}: unsupported "${field}" ${JSON.stringify(found)} (supported: ${supported})`);
  };
  const ch = config.decoder_block_out_channels;
  const blocks = config.num_decoder_blocks;
  if (!Array.isArray(ch) || !Array.isArray(blocks) || ch.length !== blocks.length || !ch.length) bad('num_decoder_blocks', blocks, 'one entry per decoder_block_out_channels entry');
  if ((config.act_fn ?? 'relu') !== 'relu') bad('act_fn', config.act_fn, '"relu"');
  if ((config.upsample_fn ?? 'nearest') !== 'nearest') bad('upsample_fn', config.upsample_fn, '"nearest"');
  if ((config.upsampling_scaling_factor ?? 2) !== 2) bad('upsampling_scaling_factor', config.upsampling_scaling_factor, '2');
  const g = new GraphBuilder({ name: 'AutoencoderTiny.decoder', weights, compute: opts.compute ?? 'float32' });
  const lc = config.latent_channels ?? 4;
  let x = g.toCompute(g.input('latents_scaled', 'float32', [opts.batch, lc, opts.height, opts.width]));
  const three = (v: number) => g.constFloat([v], []);
  x = g.op1('Mul', [g.op1('Tanh', [g.op1('Div', [x, three(3)])]), three(3)]);
  // bands: the largest activation is the last block's channels at full size
  const ups = ch.length - 1;
  const rowBytes = opts.batch * Math.max(...ch) * opts.width * 2 ** ups * g.computeBytes;
  const max = opts.maxBindingBytes ?? 128 * 2 ** 20;
  let n = 1;
  while (n < opts.height && rowBytes * (Math.ceil(opts.height / n) * 2 ** ups + 2) > max) n++;
  let b: Bands = toBands(g, x, n);
  const relu = (v: Bands): Bands => v.map((t) => g.op1('Relu', [t]));
  let idx = 0;
  const layer = () => `decoder.layers.${idx++}`;
  b = relu(bandConv(g, b, layer()));
  idx++; // the activation module
  ch.forEach((c, i) => {
    for (let k = 0; k < blocks[i]!; k++) {
      const p = layer();
      b = g.scope(p, () => {
        let h = relu(bandConv(g, b, `${p}.conv.0`));
        h = relu(bandConv(g, h, `${p}.conv.2`));
        h = bandConv(g, h, `${p}.conv.4`);
        const cin = shapeOf(b[0]!)[1];
        const skip = g.hasWeight(`${p}.skip.weight`) ? bandConv(g, b, `${p}.skip`, { bias: false }) : b;
        if (!g.hasWeight(`${p}.skip.weight`) && cin !== c) throw new GraphError(`${weights.describe()}: "${p}.skip.weight" is missing (block ${cin} → ${c} channels)`);
        return relu(bandAdd(g, h, skip));
      });
    }
    const last = i === ch.length - 1;
    if (!last) {
      b = bandUpsample2x(g, b);
      idx++;
    }
    b = bandConv(g, b, layer(), { bias: last });
  });
  x = g.cast(fromBands(g, b), 'float32');
  const out = config.out_channels ?? 3;
  if (shapeOf(x)[1] !== out) throw new GraphError(`${weights.describe()}: the decoder gives ${shapeOf(x)[1]} channels, expected out_channels ${out}`);
  g.output(g.op1('Sub', [g.op1('Mul', [x, g.constF32([2], [])]), g.constF32([1], [])]), 'image');
  return g.build();
}
