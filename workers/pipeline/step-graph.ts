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
 *   outputs next, x0, unet_in
 * The coefficients are a CPU input (32 bytes uploaded per step); nothing is read back.
 *
 * conditioning graph — joins the text-encoder outputs into the U-Net's inputs once per generation:
 *   inputs  h1 [B,77,D1], h2 [B,77,D2], pooled [B,P] (+ the same three for the negative prompt with CFG)
 *   outputs encoder_hidden_states [nB,77,D1+D2] and text_embeds [nB,P], batch order [negative, positive].
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
}

export function buildStepGraph(o: StepGraphOptions): BuiltGraph {
  const g = new GraphBuilder({ name: 'denoise_step', weights: NO_WEIGHTS, compute: 'float32' });
  const n = o.cfg ? 2 : 1;
  const lat = [o.batch, o.channels, o.height, o.width];
  const unetOut = g.input('unet_out', 'float32', [n * o.batch, o.channels, o.height, o.width]);
  const sample = g.input('sample', 'float32', lat);
  const prevX0 = g.input('prev_x0', 'float32', lat);
  const noise = o.withNoise ? g.input('noise', 'float32', lat) : undefined;
  const coef = g.input('coef', 'float32', [8]);

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
  const scaled = mul(next, k(7));
  const unetIn = o.cfg ? g.op('Concat', [scaled, scaled], { axis: 0 })[0]! : scaled;
  g.output(next, 'next');
  g.output(x0, 'x0');
  g.output(unetIn, 'unet_in');
  return g.build();
}

/** The step graph's `coef` input: [guidance, a, b, c, d, p, q, scale_next]. */
export function packCoef(guidance: number, c: StepCoefficients, scaleNext: number): Float32Array {
  return Float32Array.of(guidance, c.sample, c.modelOutput, c.prevX0, c.noise, c.x0Sample, c.x0ModelOutput, scaleNext);
}

export interface ConditioningGraphOptions {
  batch: number;
  tokens: number;
  dim1: number;
  dim2: number;
  pooled: number;
  cfg: boolean;
}

export function buildConditioningGraph(o: ConditioningGraphOptions): BuiltGraph {
  const g = new GraphBuilder({ name: 'conditioning', weights: NO_WEIGHTS, compute: 'float32' });
  const side = (prefix: string) => ({
    h1: g.input(`${prefix}h1`, 'float32', [o.batch, o.tokens, o.dim1]),
    h2: g.input(`${prefix}h2`, 'float32', [o.batch, o.tokens, o.dim2]),
    pooled: g.input(`${prefix}pooled`, 'float32', [o.batch, o.pooled]),
  });
  const pos = side('');
  const neg = o.cfg ? side('neg_') : undefined;
  const ehs = (s: ReturnType<typeof side>) => g.op('Concat', [s.h1, s.h2], { axis: 2 })[0]!;
  if (neg) {
    g.output(g.op('Concat', [ehs(neg), ehs(pos)], { axis: 0 })[0]!, 'encoder_hidden_states');
    g.output(g.op('Concat', [neg.pooled, pos.pooled], { axis: 0 })[0]!, 'text_embeds');
  } else {
    g.output(ehs(pos), 'encoder_hidden_states');
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
