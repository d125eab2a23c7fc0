/**
 * U-Net conditioning embeddings: the timestep sinusoid + time_embedding MLP, and SDXL's `text_time`
 * additional embedding (time_ids sinusoids + text_embeds -> add_embedding MLP).
 *
 * The sinusoids are an fp32 island: timesteps reach 999 and time_ids 1024+, whose phases fp16 cannot
 * carry; the result is cast to the compute dtype only before the first Linear (as diffusers does).
 */
import type { GraphBuilder, Value } from './graph';
import { linear, reshape, shapeOf, silu } from './ops';

/**
 * The frequency table of diffusers' get_timestep_embedding, rounded the way torch computes it in
 * float32: exp(-ln(max_period) * i / (half - shift)) for i < half.
 */
export function sinusoidFrequencies(dim: number, freqShift: number, maxPeriod = 10000): Float32Array {
  const half = Math.floor(dim / 2);
  const c = Math.fround(-Math.log(maxPeriod));
  const den = Math.fround(half - freqShift);
  const out = new Float32Array(half);
  for (let i = 0; i < half; i++) out[i] = Math.fround(Math.exp(Math.fround(Math.fround(c * i) / den)));
  return out;
}

/**
 * Sinusoidal embedding of a float32 vector t [N] -> [N, dim] float32:
 * cat(sin, cos) of t * freqs, or cat(cos, sin) with flip_sin_to_cos; zero-padded when dim is odd.
 */
export function timestepSinusoid(g: GraphBuilder, t: Value, dim: number, flipSinToCos: boolean, freqShift: number): Value {
  const [n] = shapeOf(t);
  const half = Math.floor(dim / 2);
  const freqs = g.constF32(sinusoidFrequencies(dim, freqShift), [1, half]);
  const args = g.op1('Mul', [reshape(g, t, [n, 1]), freqs]);
  const sin = g.op1('Sin', [args]);
  const cos = g.op1('Cos', [args]);
  const parts = flipSinToCos ? [cos, sin] : [sin, cos];
  if (dim % 2 === 1) parts.push(g.constF32([...Array(n)].map(() => 0), [n, 1]));
  return g.op1('Concat', parts, { axis: 1 });
}

export interface EmbeddingParams {
  timeProjDim: number;
  timeEmbedDim: number;
  flipSinToCos: boolean;
  freqShift: number;
  additionTimeEmbedDim: number;
  textEmbedsDim: number;
}

/**
 * emb = time_embedding(sinusoid(timestep)) + add_embedding(cat(text_embeds, sinusoid(time_ids)))
 * timestep: float32 [1] or [B]; textEmbeds: float32 [B, P]; timeIds: float32 [B, 6] -> [B, timeEmbedDim]
 * in the compute dtype.
 */
export function conditioningEmbedding(g: GraphBuilder, timestep: Value, textEmbeds: Value, timeIds: Value, p: EmbeddingParams): Value {
  const temb = g.scope('time_proj', () => timestepSinusoid(g, timestep, p.timeProjDim, p.flipSinToCos, p.freqShift));
  const tEmb = mlp(g, g.toCompute(temb), 'time_embedding', p.timeEmbedDim);

  const [b, nIds] = shapeOf(timeIds);
  const idsEmb = g.scope('add_time_proj', () => {
    const s = timestepSinusoid(g, reshape(g, timeIds, [b * nIds]), p.additionTimeEmbedDim, p.flipSinToCos, p.freqShift);
    return reshape(g, s, [b, nIds * p.additionTimeEmbedDim]);
  });
  const addIn = g.scope('add_embedding', () => g.op1('Concat', [g.toCompute(textEmbeds), g.toCompute(idsEmb)], { axis: 1 }));
  const aug = mlp(g, addIn, 'add_embedding', p.timeEmbedDim);
  // temb is [1, E] for a shared timestep and broadcasts over the batch here
  return g.scope('add_embedding', () => g.op1('Add', [tEmb, aug]));
}

/** diffusers TimestepEmbedding: linear_1 -> SiLU -> linear_2 */
function mlp(g: GraphBuilder, x: Value, prefix: string, dim: number): Value {
  const h = linear(g, x, `${prefix}.linear_1`, { outFeatures: dim });
  const a = g.scope(prefix, () => silu(g, h));
  return linear(g, a, `${prefix}.linear_2`, { outFeatures: dim });
}
