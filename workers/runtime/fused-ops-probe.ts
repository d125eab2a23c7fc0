/**
 * The self-test that decides which fused kernels (model/fused-ops.ts) the graphs use on this backend: each
 * candidate runs on a small random input beside its decomposition, in the compute precision and at the
 * model's own widths (on WebGPU under the strict placement check); it is used only when its session is
 * created, runs, and agrees to a tolerance (fp32 1e-4, fp16 4e-3 of the output's magnitude). Results are
 * cached per backend, precision and shapes for the process's (the page's) lifetime: one device.
 */
import { GraphBuilder, type BuiltGraph, type Compute, type Value } from '../model/graph';
import { FUSED_OPS, gegluTail, type FusedOpName, type FusedOps, type ProbeShapes } from '../model/fused-ops';
import { addLayerNorm, attention, gelu, silu } from '../model/ops';
import { WeightIndex } from '../model/weights';
import { bytesSource, encodeSafetensors } from '../model/safetensors';

export interface FusedOpsProbe {
  ops: FusedOps;
  /** Per candidate: "used (…)" or why not. */
  report: Record<FusedOpName, string>;
  /** How long the self-test took. */
  ms: number;
}

const TOKENS = 16;
/** Queries of the attention probe: REFERENCE.md saw MultiHeadAttention go wrong at 256 on software adapters. */
const MHA_TOKENS = 256;
const cache = new Map<string, Promise<FusedOpsProbe>>();

/** Runs a probe graph once: float32 feeds in, float32 outputs back. */
export type ProbeRunner = (graph: BuiltGraph, feeds: Record<string, { data: Float32Array; dims: number[] }>) => Promise<Record<string, Float32Array>>;

/**
 * Which fused kernels agree with their decompositions on a backend at these shapes; `runner` runs the probe
 * graphs there (fused-ops-webgpu.ts, fused-ops-wasm.node.ts), `backendKey` names it in the cache.
 */
export function probeFusedOps(compute: Compute, shapes: ProbeShapes, runner: ProbeRunner, backendKey: string): Promise<FusedOpsProbe> {
  const uniq = (xs: number[]) => [...new Set(xs)].sort((a, b) => a - b);
  const s = { inners: uniq(shapes.inners), channels: uniq(shapes.channels) };
  const key = `${backendKey}:${compute}:${s.inners}:${s.channels}`;
  let p = cache.get(key);
  if (!p) cache.set(key, (p = runProbe(compute, s, runner)));
  return p;
}

async function runProbe(compute: Compute, shapes: ProbeShapes, runner: ProbeRunner): Promise<FusedOpsProbe> {
  const t0 = performance.now();
  const ops: FusedOps = {};
  const report = {} as Record<FusedOpName, string>;
  const tol = compute === 'float16' ? 4e-3 : 1e-4;
  for (const name of FUSED_OPS) {
    const widths = name === 'skipLayerNorm' || name === 'mha' ? shapes.channels : shapes.inners;
    let worst = 0;
    let why = '';
    for (const width of widths.length ? widths : [64]) {
      try {
        worst = Math.max(worst, await compare(name, compute, width, runner));
      } catch (e) {
        why = `not used: ${String((e as Error).message ?? e).split('\n')[0]!.slice(0, 200)}`;
        break;
      }
      if (!(worst <= tol)) {
        why = `not used: differs by ${worst.toExponential(2)} of the output's magnitude (tolerance ${tol})`;
        break;
      }
    }
    ops[name] = !why;
    report[name] = why || `used (agrees to ${worst.toExponential(2)} relative)`;
  }
  return { ops, report, ms: performance.now() - t0 };
}

/** Relative max difference fused vs decomposed at one width (throws when the fused session fails). */
async function compare(name: FusedOpName, compute: Compute, width: number, runner: ProbeRunner): Promise<number> {
  const inW = name === 'biasSplitGelu' ? 2 * width : width;
  const T = name === 'mha' ? MHA_TOKENS : TOKENS;
  let seed = 12345;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32) * 6 - 3;
  const x = Float32Array.from({ length: 2 * T * inW }, rnd);
  const skip = Float32Array.from({ length: 2 * T * inW }, rnd);
  const ctx77 = Float32Array.from({ length: 2 * 77 * inW }, rnd);
  const vec = (scale: number) => Float32Array.from({ length: inW }, () => rnd() * scale);
  // LayerNorm weights live in a safetensors file, as the graphs read them
  const weights = await WeightIndex.open([bytesSource(encodeSafetensors({ 'ln.weight': { dtype: 'F32', shape: [inW], data: vec(0.3).map((v) => v + 1) }, 'ln.bias': { dtype: 'F32', shape: [inW], data: vec(0.1) } }), 'probe.safetensors')]);
  const bias = vec(0.3);
  const build = (fused: boolean) => {
    const on: FusedOps = fused ? { [name]: true } : {};
    const g = new GraphBuilder({ name: `probe_${name}`, weights, compute, fused: on });
    const input = g.toCompute(g.input('x', 'float32', [2, T, inW]));
    const out = (v: Value, n: string) => g.output(g.cast(v, 'float32'), n);
    if (name === 'gelu') out(gelu(g, input), 'y');
    else if (name === 'silu') out(silu(g, input), 'y');
    else if (name === 'biasSplitGelu') out(gegluTail(g, input, g.constFloat(bias, [inW]), width, fused), 'y');
    else if (name === 'mha') {
      // self-attention and cross-attention over 77 tokens, head size 64 as in SDXL-family U-Nets
      const heads = width % 64 ? 1 : width / 64;
      const ctx = g.toCompute(g.input('skip', 'float32', [2, 77, inW]));
      out(attention(g, input, input, input, { heads }), 'y');
      out(attention(g, input, ctx, ctx, { heads }), 'sum');
    } else {
      const r = addLayerNorm(g, input, g.toCompute(g.input('skip', 'float32', [2, T, inW])), 'ln', 1e-5, 'add');
      out(r.norm, 'y');
      out(r.sum, 'sum');
    }
    return g.build();
  };
  const run = async (fused: boolean) => {
    const feeds: Record<string, { data: Float32Array; dims: number[] }> = { x: { data: x, dims: [2, T, inW] } };
    if (name === 'skipLayerNorm') feeds['skip'] = { data: skip, dims: [2, T, inW] };
    if (name === 'mha') feeds['skip'] = { data: ctx77, dims: [2, 77, inW] };
    const o = await runner(build(fused), feeds);
    const y = o['y']!;
    if (!o['sum']) return y;
    const both = new Float32Array(y.length + o['sum'].length);
    both.set(y);
    both.set(o['sum'], y.length);
    return both;
  };
  const plain = await run(false);
  const fused = await run(true);
  let diff = 0;
  let mag = 0;
  for (let i = 0; i < plain.length; i++) {
    diff = Math.max(diff, Math.abs(fused[i]! - plain[i]!));
    mag = Math.max(mag, Math.abs(plain[i]!));
  }
  return Number.isFinite(diff) ? diff / mag : Infinity;
}
