/**
 * Small helper graphs that keep the denoising loop on the device (WebGPU) between U-Net runs.
 *
 * step graph — one run per denoising step, fusing CFG, the scheduler step and the next U-Net input:
 *   inputs  unet_out [nB,C,h,w]  (n = 2 with CFG: [uncond; cond]), sample [B,C,h,w],
 *           prev_x0 [B,C,h,w], noise [B,C,h,w] (ancestral samplers only),
 *           coef [8] = [guidance, a, b, c, d, p, q, scale_next]
 *   eps      = CFG ? u + guidance·(c − u) : unet_out
 *   x0       = p·sample + q·eps                      (predicted clean latents; preview + DPM history)
 *   next     = a·sample + b·eps + c·prev_x0 + d·noise (schedulers.ts StepCoefficients)
 *   unet_in  = concat_n(next · scale_next)            (the next step's scale_model_input, duplicated for CFG)
 *   outputs next, x0, unet_in (+ t_next = coef[10], the next step's timestep, with `timestepOut`)
 * Inpainting adds (diffusers StableDiffusionXLInpaintPipeline):
 *   `blend` (4-channel U-Net): inputs image_latents [1,C,h,w], mask [1,1,h,w], init_noise [B,C,h,w], and
 *           coef[8..9] = add_noise coefficients of the next step (1, 0 after the last):
 *           next ← mask·next + (1 − mask)·(coef8·image_latents + coef9·init_noise)
 *   `concat` (9-channel inpainting U-Net): inputs mask [1,1,h,w], masked_image_latents [1,C,h,w]:
 *           unet_in = concat_n(concat_channels(next · scale_next, mask, masked_image_latents))
 * The coefficients are a CPU input (44 bytes uploaded per step); nothing is read back.
 *
 * loop-input graph — with graph capture (sdxl-pipeline.ts), the captured U-Net reads fixed GPU buffers; this
 * graph writes a generation's first U-Net input, first timestep, text embeddings and time ids into them
 * (each × a runtime `one`, so onnxruntime cannot fold the copy away), in onnxruntime's own command order.
 *
 * conditioning graph — joins the text-encoder outputs into the U-Net's inputs once per generation:
 *   inputs  per chunk c: h1 [B,77,D1], h2 [B,77,D2] (`h1_c`, `h2_c` after the first), pooled [B,P],
 *           with prompt weighting weight_delta [B,T,1] (+ the same for the negative prompt with CFG)
 *   outputs encoder_hidden_states [nB,T,D1+D2] (chunk c cut to its length L_c, weighted as in
 *           long-prompt.ts, chunks concatenated) and text_embeds [nB,P], batch order [negative, positive].
 */
import { GraphBuilder, type BuiltGraph, type Value } from '../model/graph';
import { WeightIndex } from '../model/weights';
import type { StepCoefficients } from './schedulers';

const NO_WEIGHTS = new WeightIndex([]);

export interface StepGraphOptions {
  batch: number;
  channels: number;
  height: number;
  width: number;
  cfg: boolean;
  withNoise: boolean;
  /** Inpainting: blend the known region back each step (4-channel U-Net) or feed mask + masked image (9-channel). */
  inpaint?: 'blend' | 'concat';
  /** Adds the `t_next` output [1] (coef[10]): the captured loop's timestep buffer is written by the step graph. */
  timestepOut?: boolean;
}

export function buildStepGraph(o: StepGraphOptions): BuiltGraph {
  const g = new GraphBuilder({ name: 'denoise_step', weights: NO_WEIGHTS, compute: 'float32' });
  const n = o.cfg ? 2 : 1;
  const lat = [o.batch, o.channels, o.height, o.width];
  const unetOut = g.input('unet_out', 'float32', [n * o.batch, o.channels, o.height, o.width]);
  const sample = g.input('sample', 'float32', lat);
  const prevX0 = g.input('prev_x0', 'float32', lat);
  const noise = o.withNoise ? g.input('noise', 'float32', lat) : undefined;
  const coef = g.input('coef', 'float32', [COEF_LENGTH]);

  const k = (i: number): Value => {
    const [c] = g.op('Slice', [coef, g.constI64([i]), g.constI64([i + 1]), g.constI64([0])]);
    return c!;
  };
  const mul = (a: Value, b: Value) => g.op('Mul', [a, b])[0]!;
  const add = (a: Value, b: Value) => g.op('Add', [a, b])[0]!;

  let eps = unetOut;
  if (o.cfg) {
    const [u, c] = g.op('Split', [unetOut, g.constI64([o.batch, o.batch])], { axis: 0 }, { outputs: 2 });
    eps = add(u!, mul(k(0), g.op('Sub', [c!, u!])[0]!));
  }
  const x0 = add(mul(k(5), sample), mul(k(6), eps));
  let next = add(add(mul(k(1), sample), mul(k(2), eps)), mul(k(3), prevX0));
  if (noise) next = add(next, mul(k(4), noise));
  const small = [1, 1, o.height, o.width];
  if (o.inpaint === 'blend') {
    const image = g.input('image_latents', 'float32', [1, o.channels, o.height, o.width]);
    const mask = g.input('mask', 'float32', small);
    const initNoise = g.input('init_noise', 'float32', lat);
    const proper = add(mul(k(8), image), mul(k(9), initNoise));
    next = add(proper, mul(mask, g.op('Sub', [next, proper])[0]!));
  }
  let scaled = mul(next, k(7));
  if (o.inpaint === 'concat') {
    const mask = g.input('mask', 'float32', small);
    const masked = g.input('masked_image_latents', 'float32', [1, o.channels, o.height, o.width]);
    const expand = (v: Value, c: number) => g.op('Expand', [v, g.constI64([o.batch, c, o.height, o.width])])[0]!;
    scaled = g.op('Concat', [scaled, expand(mask, 1), expand(masked, o.channels)], { axis: 1 })[0]!;
  }
  const unetIn = o.cfg ? g.op('Concat', [scaled, scaled], { axis: 0 })[0]! : scaled;
  g.output(next, 'next');
  g.output(x0, 'x0');
  g.output(unetIn, 'unet_in');
  if (o.timestepOut) g.output(k(10), 't_next');
  return g.build();
}

const COEF_LENGTH = 11;

/**
 * The step graph's `coef` input: [guidance, a, b, c, d, p, q, scale_next, blend original, blend noise, next
 * timestep].
 */
export function packCoef(
  guidance: number,
  c: StepCoefficients,
  scaleNext: number,
  blend: { original: number; noise: number } = { original: 1, noise: 0 },
  nextTimestep = 0,
): Float32Array {
  return Float32Array.of(guidance, c.sample, c.modelOutput, c.prevX0, c.noise, c.x0Sample, c.x0ModelOutput, scaleNext, blend.original, blend.noise, nextTimestep);
}

/** Shapes of the captured U-Net's inputs (sample, timestep, encoder_hidden_states, text_embeds, time_ids). */
export type LoopInputShapes = Record<(typeof LOOP_INPUTS)[number], number[]>;
export const LOOP_INPUTS = ['sample', 'timestep', 'encoder_hidden_states', 'text_embeds', 'time_ids'] as const;

/** The loop-input graph (see the file comment): input `<name>_in` and output `<name>` per U-Net input, plus `one`. */
export function buildLoopInputGraph(shapes: LoopInputShapes): BuiltGraph {
  const g = new GraphBuilder({ name: 'loop_input', weights: NO_WEIGHTS, compute: 'float32' });
  const one = g.input('one', 'float32', [1]);
  for (const name of LOOP_INPUTS) g.output(g.op('Mul', [g.input(`${name}_in`, 'float32', shapes[name]), one])[0]!, name);
  return g.build();
}

export interface ConditioningGraphOptions {
  batch: number;
  dim1: number;
  dim2: number;
  pooled: number;
  cfg: boolean;
  /** Sequence length kept of each encoded chunk (each chunk is encoded at 77 positions); default [77]. */
  chunkLengths?: number[];
  /** Adds `weight_delta` inputs [B, T, 1] (w − 1 per position, T = Σ chunk lengths): prompt weighting. */
  weighted?: boolean;
}

/** Input names of chunk c: `h1`/`h2` for the first chunk, `h1_c`/`h2_c` after it. */
export function chunkInputNames(prefix: string, c: number): { h1: string; h2: string } {
  return c === 0 ? { h1: `${prefix}h1`, h2: `${prefix}h2` } : { h1: `${prefix}h1_${c}`, h2: `${prefix}h2_${c}` };
}

export function buildConditioningGraph(o: ConditioningGraphOptions): BuiltGraph {
  const g = new GraphBuilder({ name: 'conditioning', weights: NO_WEIGHTS, compute: 'float32' });
  const lengths = o.chunkLengths ?? [77];
  const total = lengths.reduce((a, b) => a + b, 0);
  const slice = (v: Value, begin: number, end: number, axis: number) =>
    g.op('Slice', [v, g.constI64([begin]), g.constI64([end]), g.constI64([axis])])[0]!;
  const side = (prefix: string) => {
    const delta = o.weighted ? g.input(`${prefix}weight_delta`, 'float32', [o.batch, total, 1]) : undefined;
    let at = 0;
    const parts = lengths.map((L, c) => {
      const n = chunkInputNames(prefix, c);
      const h1 = g.input(n.h1, 'float32', [o.batch, 77, o.dim1]);
      const h2 = g.input(n.h2, 'float32', [o.batch, 77, o.dim2]);
      let e = g.op('Concat', [L === 77 ? h1 : slice(h1, 0, L, 1), L === 77 ? h2 : slice(h2, 0, L, 1)], { axis: 2 })[0]!;
      if (delta) {
        // lpw: e[j] ← e[last] + (e[j] − e[last])·w for w ≠ 1, here e + (e − e[last])·(w − 1) (exactly e where w = 1).
        const ref = slice(e, L - 1, L, 1);
        const d = slice(delta, at, at + L, 1);
        e = g.op('Add', [e, g.op('Mul', [g.op('Sub', [e, ref])[0]!, d])[0]!])[0]!;
      }
      at += L;
      return e;
    });
    const ehs = parts.length === 1 ? parts[0]! : g.op('Concat', parts, { axis: 1 })[0]!;
    return { ehs, pooled: g.input(`${prefix}pooled`, 'float32', [o.batch, o.pooled]) };
  };
  const pos = side('');
  const neg = o.cfg ? side('neg_') : undefined;
  if (neg) {
    g.output(g.op('Concat', [neg.ehs, pos.ehs], { axis: 0 })[0]!, 'encoder_hidden_states');
    g.output(g.op('Concat', [neg.pooled, pos.pooled], { axis: 0 })[0]!, 'text_embeds');
  } else {
    g.output(pos.ehs, 'encoder_hidden_states');
    g.output(g.op('Identity', [pos.pooled])[0]!, 'text_embeds');
  }
  return g.build();
}

/** latents_scaled = latents / scaling_factor: the VAE decoder's input. */
export function buildScaleGraph(dims: number[], factor: number): BuiltGraph {
  const g = new GraphBuilder({ name: 'scale', weights: NO_WEIGHTS, compute: 'float32' });
  const x = g.input('x', 'float32', dims);
  g.output(g.op('Mul', [x, g.constFloat([factor], [1], 'float32')])[0]!, 'y');
  return g.build();
}
