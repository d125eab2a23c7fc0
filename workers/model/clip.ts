/**
 * CLIPTextModel / CLIPTextModelWithProjection (transformers) as an ONNX graph, driven by config.json.
 * Input `input_ids` int64 [B, T]; outputs `hidden_states_m2` (output of the penultimate layer, before
 * the final LayerNorm: what SDXL uses), `last_hidden_state` and, for the projection model,
 * `text_embeds` (final-normed hidden state at the EOS position, times text_projection, no bias).
 * Causal mask only (SDXL passes no attention mask).
 */
import { GraphBuilder, GraphError, type BuiltGraph, type Compute, type Value } from './graph';
import { attention, attentionScale, causalMask, gelu, layerNorm, linear, quickGelu, reshape } from './ops';
import type { WeightIndex } from './weights';

export interface ClipTextConfig {
  architectures?: string[];
  hidden_size: number;
  intermediate_size: number;
  num_attention_heads: number;
  num_hidden_layers: number;
  hidden_act: string;
  layer_norm_eps?: number;
  max_position_embeddings: number;
  vocab_size: number;
  projection_dim?: number;
  eos_token_id?: number;
  [k: string]: unknown;
}

export interface ClipBuildOptions {
  batch: number;
  /** Sequence length; default config.max_position_embeddings (77). */
  seqLen?: number;
  compute?: Compute;
  /** Build CLIPTextModelWithProjection (adds `text_embeds`); default from config.architectures / weights. */
  withProjection?: boolean;
  maxBindingBytes?: number;
  /** Name used in error messages, e.g. "text_encoder_2/config.json". */
  configName?: string;
}

const ACTS: Record<string, (g: GraphBuilder, x: Value) => Value> = { quick_gelu: quickGelu, gelu };

function need(cfg: ClipTextConfig, key: keyof ClipTextConfig, where: string): number {
  const v = cfg[key];
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) throw new GraphError(`${where}: "${String(key)}" must be a positive integer, found ${JSON.stringify(v)}`);
  return v;
}

/** Builds the text-encoder graph. */
export function buildClipTextGraph(config: ClipTextConfig, weights: WeightIndex, opts: ClipBuildOptions): BuiltGraph {
  const where = opts.configName ?? 'text encoder config.json';
  const d = need(config, 'hidden_size', where);
  const ff = need(config, 'intermediate_size', where);
  const heads = need(config, 'num_attention_heads', where);
  const layers = need(config, 'num_hidden_layers', where);
  const maxPos = need(config, 'max_position_embeddings', where);
  const vocab = need(config, 'vocab_size', where);
  const act = ACTS[config.hidden_act];
  if (!act) throw new GraphError(`${where}: unsupported "hidden_act" ${JSON.stringify(config.hidden_act)} (supported: ${Object.keys(ACTS).join(', ')})`);
  if (layers < 2) throw new GraphError(`${where}: "num_hidden_layers" ${layers}: need at least 2 for the penultimate hidden state`);
  if (d % heads) throw new GraphError(`${where}: "hidden_size" ${d} is not divisible by "num_attention_heads" ${heads}`);
  const eps = config.layer_norm_eps ?? 1e-5;
  const B = opts.batch;
  const T = opts.seqLen ?? maxPos;
  if (T > maxPos) throw new GraphError(`${where}: sequence length ${T} exceeds "max_position_embeddings" ${maxPos}`);
  const withProj = opts.withProjection ?? (config.architectures?.includes('CLIPTextModelWithProjection') || weights.has('text_projection.weight'));

  const g = new GraphBuilder({ name: withProj ? 'CLIPTextModelWithProjection' : 'CLIPTextModel', weights, compute: opts.compute ?? 'float32' });
  const ids = g.input('input_ids', 'int64', [B, T]);

  let h = g.scope('text_model.embeddings', () => {
    const tok = g.op1('Gather', [g.weight('text_model.embeddings.token_embedding.weight', [vocab, d]), ids], { axis: 0 });
    let pos = g.weight('text_model.embeddings.position_embedding.weight', [maxPos, d]);
    if (T < maxPos) pos = g.op1('Slice', [pos, g.constI64([0]), g.constI64([T]), g.constI64([0])]);
    return g.op1('Add', [tok, pos]);
  });
  const mask = causalMask(g, T);
  let penultimate: Value | undefined;
  for (let i = 0; i < layers; i++) {
    const p = `text_model.encoder.layers.${i}`;
    h = g.scope(p, () => {
      const x = layerNorm(g, h, `${p}.layer_norm1`, eps);
      // scale·(x Wq + bq) in the Gemm (alpha = beta), as transformers scales the projected queries
      const q = linear(g, x, `${p}.self_attn.q_proj`, { outFeatures: d, scale: attentionScale(d, heads) });
      const k = linear(g, x, `${p}.self_attn.k_proj`, { outFeatures: d });
      const v = linear(g, x, `${p}.self_attn.v_proj`, { outFeatures: d });
      const a = linear(g, attention(g, q, k, v, { heads, mask, maxBindingBytes: opts.maxBindingBytes, qScaled: true }), `${p}.self_attn.out_proj`, { outFeatures: d });
      const h1 = g.op1('Add', [h, a]);
      const m = linear(g, act(g, linear(g, layerNorm(g, h1, `${p}.layer_norm2`, eps), `${p}.mlp.fc1`, { outFeatures: ff })), `${p}.mlp.fc2`, { outFeatures: d });
      return g.op1('Add', [h1, m]);
    });
    if (i === layers - 2) penultimate = h;
  }
  g.output(penultimate!, 'hidden_states_m2');
  const last = layerNorm(g, h, 'text_model.final_layer_norm', eps);
  g.output(last, 'last_hidden_state');
  if (withProj) {
    const proj = config.projection_dim;
    if (typeof proj !== 'number') throw new GraphError(`${where}: "projection_dim" is required for CLIPTextModelWithProjection`);
    g.scope('pool', () => {
      const eos = eosPositions(g, ids, config.eos_token_id, B);
      // row index b*T + eos[b] into the flattened [B*T, D] hidden states
      const rows = g.op1('Add', [eos, g.constI64(Array.from({ length: B }, (_, b) => b * T))]);
      const pooled = g.op1('Gather', [reshape(g, last, [B * T, d]), rows], { axis: 0 });
      g.output(linear(g, pooled, 'text_projection', { bias: false, outFeatures: proj }), 'text_embeds');
    });
  }
  const graph = g.build();
  // the int64 ids cast for the EOS ArgMax: WebGPU has no int64 Cast, so ORT keeps these 77 values on the CPU
  if (withProj) graph.allowCpu = [/^Cast \(pool\/Cast\)$/];
  return graph;
}

/**
 * EOS position per sequence, int64 [B]: transformers' legacy rule (eos_token_id == 2 in old configs)
 * is the first argmax of input_ids; otherwise the first position equal to eos_token_id.
 * (The WebGPU EP has no int64 Cast: that one 77-element Cast runs on the CPU EP.)
 */
function eosPositions(g: GraphBuilder, ids: Value, eosId: number | undefined, b: number): Value {
  const key = eosId === undefined || eosId === 2 ? g.cast(ids, 'float32') : g.cast(g.op1('Equal', [ids, g.constI64([eosId], [])]), 'float32');
  const pos = g.op1('ArgMax', [key], { axis: 1, keepdims: 0, select_last_index: 0 });
  if (pos.shape?.join() !== String(b)) throw new GraphError(`EOS positions: shape [${pos.shape}], expected [${b}]`);
  return pos;
}
