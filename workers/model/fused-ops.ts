/**
 * onnxruntime's fused (com.microsoft) kernels that the graph builders may use instead of their decompositions,
 * each one fewer kernel launches per use. Whether one is used is decided per adapter and compute precision by
 * a self-test (runtime/fused-ops-probe.ts), never by a fixed list: the same kernel can be right on one
 * backend and wrong or missing on another (BiasSplitGelu fails in fp16 on onnxruntime-web 1.30's WebGPU EP
 * while it is exact in fp32).
 *
 * - `gelu`: com.microsoft Gelu (erf GELU, 1 kernel) instead of Mul, Erf, Add, Mul, Mul.
 * - `silu`: com.microsoft QuickGelu with alpha 1 (x · sigmoid(x)), 1 kernel instead of Sigmoid, Mul.
 * - `skipLayerNorm`: a residual Add and the LayerNormalization after it as one com.microsoft
 *   SkipLayerNormalization (its fourth output is the sum the block goes on with): 1 kernel instead of 2.
 * - `mha`: unmasked, unchunked attention as one com.microsoft MultiHeadAttention (q, k, v as [B, S, C]) instead
 *   of 4 Transposes, 2 MatMuls and a Softmax. Known wrong on onnxruntime-web 1.30's native WebGPU EP on the
 *   software adapters (REFERENCE.md): the self-test is what keeps it out there.
 * - `biasSplitGelu`: diffusers' GEGLU tail — the projection's bias, the split in halves and value · gelu(gate) —
 *   as one com.microsoft BiasSplitGelu (the projection Gemm loses its bias): 1 kernel instead of 7.
 */
import type { GraphBuilder, Value } from './graph';

export interface FusedOps {
  gelu?: boolean;
  silu?: boolean;
  skipLayerNorm?: boolean;
  biasSplitGelu?: boolean;
  mha?: boolean;
}

/** What a probe runs at: the model's GEGLU inner sizes and transformer channel counts. */
export interface ProbeShapes {
  inners: number[];
  channels: number[];
}

export const FUSED_OPS = ['gelu', 'silu', 'skipLayerNorm', 'biasSplitGelu', 'mha'] as const;
export type FusedOpName = (typeof FUSED_OPS)[number];

/** GELU (erf) of x, fused when allowed. */
export function fusedGelu(g: GraphBuilder, x: Value): Value | undefined {
  return g.fused.gelu ? g.op1('Gelu', [x], {}, { domain: 'com.microsoft' }) : undefined;
}

/** SiLU of x as QuickGelu(alpha 1), when allowed. */
export function fusedSilu(g: GraphBuilder, x: Value): Value | undefined {
  return g.fused.silu ? g.op1('QuickGelu', [x], { alpha: { float: 1 } }, { domain: 'com.microsoft' }) : undefined;
}

/** { norm: LayerNorm(x + skip), sum: x + skip } as one kernel, when allowed. */
export function fusedSkipLayerNorm(g: GraphBuilder, x: Value, skip: Value, gamma: Value, beta: Value, eps: number): { norm: Value; sum: Value } | undefined {
  if (!g.fused.skipLayerNorm) return undefined;
  const [norm, , , sum] = g.op('SkipLayerNormalization', [x, skip, gamma, beta], { epsilon: { float: eps } }, { domain: 'com.microsoft', outputs: 4, omit: [1, 2] });
  return { norm: norm!, sum: sum! };
}

/** Attention of q [B, Tq, C] over k, v [B, Tk, C] as one MultiHeadAttention, when allowed (scale: on q·k). */
export function fusedAttention(g: GraphBuilder, q: Value, k: Value, v: Value, heads: number, scale: number): Value | undefined {
  return g.fused.mha ? g.op1('MultiHeadAttention', [q, k, v], { num_heads: heads, scale: { float: scale } }, { domain: 'com.microsoft' }) : undefined;
}

/** The probe graphs' GEGLU tail on [2, tokens, 2·inner]: `fused` uses the kernel, the other the decomposition. */
export function gegluTail(g: GraphBuilder, h: Value, bias: Value, inner: number, fused: boolean): Value {
  if (fused) return g.op1('BiasSplitGelu', [h, bias], {}, { domain: 'com.microsoft' });
  const hb = g.op1('Add', [h, bias]);
  const [a, gate] = g.op('Split', [hb, g.constI64([inner, inner])], { axis: -1 }, { outputs: 2 });
  const e = g.op1('Erf', [g.op1('Mul', [gate!, g.scalar(Math.SQRT1_2)])]);
  return g.op1('Mul', [a!, g.op1('Mul', [g.op1('Mul', [gate!, g.scalar(0.5)]), g.op1('Add', [e, g.scalar(1)])])]);
}
