/**
 * Small ONNX graphs for the arithmetic between U-Net calls, so latents never leave the GPU:
 * CFG combine, scheduler step (linear coefficients, workers/pipeline/schedulers.ts packCoefficients),
 * scale_model_input and the [x, x] batch for CFG. All float32 (the U-Net's I/O dtype); every per-step
 * number (guidance, scale, step coefficients) is a small input, so one graph serves every step.
 */
import { GraphBuilder, type BuiltGraph, type Value } from '../model/graph';
import { WeightIndex } from '../model/weights';

export interface LatentShape {
  /** Images per prompt batch (B); with CFG the U-Net sees 2B. */
  batch: number;
  channels: number;
  height: number;
  width: number;
}

const dims = (s: LatentShape, b = s.batch) => [b, s.channels, s.height, s.width];

function builder(name: string): GraphBuilder {
  return new GraphBuilder({ name, weights: new WeightIndex([]), compute: 'float32' });
}

/** `eps = u + g·(c − u)` from the U-Net output [2B,…] in diffusers' order [uncond, cond]. */
function cfgCombine(g: GraphBuilder, noisePred: Value, guidance: Value, b: number): Value {
  const [u, c] = g.op('Split', [noisePred, g.constI64([b, b])], { axis: 0 }, { outputs: 2 });
  return g.op1('Add', [u, g.op1('Mul', [guidance, g.op1('Sub', [c, u])])]);
}

/**
 * (a) CFG combine. Inputs `noise_pred` [2B,C,H,W], `guidance` [1]; output `model_output` [B,C,H,W].
 */
export function buildCfgCombineGraph(s: LatentShape): BuiltGraph {
  const g = builder('cfg_combine');
  const np = g.input('noise_pred', 'float32', dims(s, 2 * s.batch));
  const gs = g.input('guidance', 'float32', [1]);
  g.output(cfgCombine(g, np, gs, s.batch), 'model_output');
  return g.build();
}

/**
 * (b) Scheduler step as a linear combination; with `cfg` the CFG combine is fused in front.
 * Inputs: `sample`, `model_output` ([2B,…] `noise_pred` + `guidance` [1] when cfg), `prev_x0`, `noise`,
 * `coefficients` [6] = (sample, modelOutput, prevX0, noise, x0Sample, x0ModelOutput).
 * Outputs: `prev_sample` = c0·sample + c1·eps + c2·prev_x0 + c3·noise, and `x0` = c4·sample + c5·eps
 * (the predicted clean latents: previews, and prev_x0 of the next step for multistep schedulers).
 */
export function buildStepGraph(s: LatentShape, opts: { cfg: boolean }): BuiltGraph {
  const g = builder(opts.cfg ? 'cfg_step' : 'step');
  const sample = g.input('sample', 'float32', dims(s));
  let eps: Value;
  if (opts.cfg) {
    const np = g.input('noise_pred', 'float32', dims(s, 2 * s.batch));
    eps = cfgCombine(g, np, g.input('guidance', 'float32', [1]), s.batch);
  } else {
    eps = g.input('model_output', 'float32', dims(s));
  }
  const prevX0 = g.input('prev_x0', 'float32', dims(s));
  const noise = g.input('noise', 'float32', dims(s));
  const coeffs = g.input('coefficients', 'float32', [6]);
  const c = g.op('Split', [coeffs, g.constI64([1, 1, 1, 1, 1, 1])], { axis: 0 }, { outputs: 6 });
  const mul = (k: number, v: Value) => g.op1('Mul', [c[k], v]);
  const add = (a: Value, b: Value) => g.op1('Add', [a, b]);
  const prev = add(add(mul(0, sample), mul(1, eps)), add(mul(2, prevX0), mul(3, noise)));
  const x0 = add(mul(4, sample), mul(5, eps));
  g.output(prev, 'prev_sample');
  g.output(x0, 'x0');
  return g.build();
}

/**
 * (c) scale_model_input and (d) the CFG batch: `model_input` = x·scale, or concat([x·scale, x·scale]) [2B,…]
 * when cfg. Inputs `sample` [B,C,H,W], `scale` [1].
 */
export function buildScaleInputGraph(s: LatentShape, opts: { cfg: boolean }): BuiltGraph {
  const g = builder(opts.cfg ? 'scale_concat' : 'scale');
  const x = g.input('sample', 'float32', dims(s));
  const scaled = g.op1('Mul', [x, g.input('scale', 'float32', [1])]);
  g.output(opts.cfg ? g.op1('Concat', [scaled, scaled], { axis: 0 }) : scaled, 'model_input');
  return g.build();
}

/** (d) alone: concat([x, x]) on the batch axis. Input `sample` [B,…]; output `batch2` [2B,…]. */
export function buildConcatBatchGraph(s: LatentShape): BuiltGraph {
  const g = builder('concat_batch');
  const x = g.input('sample', 'float32', dims(s));
  g.output(g.op1('Concat', [x, x], { axis: 0 }), 'batch2');
  return g.build();
}
