/**
 * UNet2DConditionModel (SDXL family: SDXL-base, KOALA-700M/1B, SSD-1B, Vega...) as an ONNX graph,
 * driven only by the repo's unet/config.json and the safetensors headers.
 *
 * Graph I/O (all float32, static shapes for one batch size and latent size):
 *   sample                [B, in_channels, h, w]   latents (already scaled by the scheduler)
 *   timestep              [1] (one t for the whole batch, the pipeline's case) or [B] with
 *                         `perSampleTimestep: true`
 *   encoder_hidden_states [B, 77, cross_attention_dim]
 *   text_embeds           [B, projection_class_embeddings_input_dim - 6 * addition_time_embed_dim]
 *   time_ids              [B, 6]
 *   out                   [B, out_channels, h, w]
 * With fp16 compute the inputs are cast after the fp32 islands (timestep/time_ids sinusoids) and
 * GroupNorm statistics stay fp32 (ops.groupNorm); the output is cast back to float32.
 * Latent sizes need not be multiples of the total downsampling: every Upsample2D resizes to its skip
 * tensor's exact size, as diffusers does with `upsample_size`.
 *
 * WebGPU binding limit: attention probabilities (queries chunked, ops.attention) and the GEGLU
 * feed-forward projection (tokens chunked) are kept within `maxBindingBytes`. Other tensors are not
 * split; `report.largest` names the biggest one so the runtime can check it against the adapter's
 * maxStorageBufferBindingSize (at 1024² with batch 2 every tensor of KOALA/SDXL fits 128 MiB, fp16 and fp32).
 */
import type { FusedOps } from './fused-ops';
import type { BuiltGraph, Compute, Value } from './graph';
import { groupNorm, shapeOf, silu } from './ops';
import { conv, downsample, resnet, transformer2d, upsample, type ResnetParams, type TransformerParams } from './unet-blocks';
import { planUnet, UnetConfigError, type UnetConfig, type UnetPlan } from './unet-config';
import { conditioningEmbedding } from './unet-embeddings';
import { RecordingGraphBuilder, type GraphReport } from './unet-stats';
import type { WeightIndex } from './weights';

export { planUnet, UnetConfigError, type UnetConfig, type UnetPlan } from './unet-config';
export type { GraphReport } from './unet-stats';

export interface UnetGraphOptions {
  batch: number;
  /** latent height (image height / 8) */
  height: number;
  /** latent width */
  width: number;
  compute: Compute;
  /** Largest attention-probabilities / feed-forward tensor in bytes (default 128 MiB); bigger ones are chunked. */
  maxBindingBytes?: number;
  /** `timestep` input of shape [B] instead of [1]. */
  perSampleTimestep?: boolean;
  /**
   * Also output intermediate tensors as the goldens name them (float32): `dbg.conv_in`, `dbg.down<i>`,
   * `dbg.mid`, `dbg.up<i>` (block outputs) and `dbg.emb` (time + add embedding) — to locate a mismatch.
   */
  debugOutputs?: boolean;
  /** Tokens of encoder_hidden_states (default 77). */
  textTokens?: number;
  name?: string;
  /** Fused kernels to use (chosen per adapter by runtime/fused-ops-probe.ts); default none. */
  fused?: FusedOps;
}

export interface UnetGraph extends BuiltGraph {
  plan: UnetPlan;
  /** analytic FLOPs, largest tensor, attention MatMul shapes, used checkpoint tensors */
  report: GraphReport;
}

export const DEFAULT_MAX_BINDING_BYTES = 128 * 2 ** 20;

export function buildUnetGraph(config: UnetConfig, weights: WeightIndex, opts: UnetGraphOptions): UnetGraph {
  const plan = planUnet(config);
  const { batch: B, height: H, width: W } = opts;
  for (const [k, v] of Object.entries({ batch: B, height: H, width: W })) {
    if (!Number.isInteger(v) || v < 1) throw new UnetConfigError(`buildUnetGraph: ${k} must be a positive integer, got ${v}`);
  }
  const maxBindingBytes = opts.maxBindingBytes ?? DEFAULT_MAX_BINDING_BYTES;
  const g = new RecordingGraphBuilder({ name: opts.name ?? 'unet', weights, compute: opts.compute, fused: opts.fused });

  const sampleIn = g.input('sample', 'float32', [B, plan.inChannels, H, W]);
  const timestep = g.input('timestep', 'float32', [opts.perSampleTimestep ? B : 1]);
  const ehsIn = g.input('encoder_hidden_states', 'float32', [B, opts.textTokens ?? 77, plan.encoderHiddenDim]);
  const textEmbeds = g.input('text_embeds', 'float32', [B, plan.textEmbedsDim]);
  const timeIds = g.input('time_ids', 'float32', [B, 6]);

  const dbg: [string, Value][] = [];
  const emb = conditioningEmbedding(g, timestep, textEmbeds, timeIds, plan);
  dbg.push(['emb', emb]);
  // every resnet's time_emb_proj reads silu(emb): computed once
  const embAct = g.scope('time_emb_act', () => silu(g, emb));
  const ehs = g.toCompute(ehsIn);

  const c0 = plan.blockOut[0];
  let h = conv(g, g.toCompute(sampleIn), 'conv_in', c0, plan.convInKernel);
  dbg.push(['conv_in', h]);

  const rp: ResnetParams = { groups: plan.groups, eps: plan.normEps, outScale: plan.resnetOutScale };
  const tp = (heads: number, depth: number): TransformerParams => ({
    heads, depth, groups: plan.groups, normEps: plan.transformerNormEps,
    useLinearProjection: plan.useLinearProjection, maxBindingBytes,
  });

  const skips: Value[] = [h];
  plan.down.forEach((blk, i) => {
    const pre = `down_blocks.${i}`;
    for (let j = 0; j < blk.resnets; j++) {
      h = resnet(g, h, embAct, `${pre}.resnets.${j}`, blk.channels, rp);
      if (blk.transformerDepths.length) h = transformer2d(g, h, ehs, `${pre}.attentions.${j}`, tp(blk.heads, blk.transformerDepths[j]));
      skips.push(h);
    }
    if (blk.resample) {
      h = downsample(g, h, `${pre}.downsamplers.0`, plan.downsamplePadding);
      skips.push(h);
    }
    dbg.push([`down${i}`, h]);
  });

  if (plan.mid) {
    const m = plan.mid;
    const mrp = { ...rp, outScale: plan.midBlockScale };
    h = resnet(g, h, embAct, 'mid_block.resnets.0', m.channels, mrp);
    m.transformerDepths.forEach((depth, j) => {
      h = transformer2d(g, h, ehs, `mid_block.attentions.${j}`, tp(m.heads, depth));
      h = resnet(g, h, embAct, `mid_block.resnets.${j + 1}`, m.channels, mrp);
    });
    dbg.push(['mid', h]);
  }

  plan.up.forEach((blk, i) => {
    const pre = `up_blocks.${i}`;
    for (let j = 0; j < blk.resnets; j++) {
      const skip = skips.pop()!;
      h = g.scope(`${pre}.resnets.${j}.skip_concat`, () => g.op1('Concat', [h, skip], { axis: 1 }));
      h = resnet(g, h, embAct, `${pre}.resnets.${j}`, blk.channels, rp);
      if (blk.transformerDepths.length) h = transformer2d(g, h, ehs, `${pre}.attentions.${j}`, tp(blk.heads, blk.transformerDepths[j]));
    }
    if (blk.resample) {
      const [, , sh, sw] = shapeOf(skips[skips.length - 1]);
      h = upsample(g, h, `${pre}.upsamplers.0`, sh, sw);
    }
    dbg.push([`up${i}`, h]);
  });
  if (skips.length !== 0) throw new UnetConfigError(`unet/config.json: down and up blocks do not pair up (${skips.length} skip tensors left over)`);

  h = groupNorm(g, h, 'conv_norm_out', plan.groups, plan.normEps);
  h = g.scope('conv_act', () => silu(g, h));
  h = conv(g, h, 'conv_out', plan.outChannels, plan.convOutKernel);
  const os = shapeOf(h);
  if (os.join() !== [B, plan.outChannels, H, W].join()) throw new UnetConfigError(`buildUnetGraph: output shape [${os}] != [${[B, plan.outChannels, H, W]}]`);
  g.output(h, 'out', 'float32');
  if (opts.debugOutputs) for (const [n, v] of dbg) g.output(v, `dbg.${n}`, 'float32');
  return { ...g.build(), plan, report: g.report };
}

/** Every checkpoint tensor name that the graph does NOT read (for tests and diagnostics). */
export function unusedWeights(graph: UnetGraph, weights: WeightIndex): string[] {
  return weights.names().filter((n) => !graph.report.usedWeights.has(n));
}
