/**
 * The self-test that decides which fused kernels (model/fused-ops.ts) the graphs use on this adapter: each
 * candidate runs on a small random input beside its decomposition, in the compute precision and at the
 * model's own channel counts, on WebGPU under the strict placement check; it is used only when the session
 * is created, runs, and agrees to a tolerance (fp32 1e-4, fp16 4e-3 of the output's magnitude). Results are
 * cached per precision and shape set for the page's lifetime (one device).
 */
import { GraphBuilder, type Compute } from '../model/graph';
import { FUSED_OPS, gegluTail, type FusedOpName, type FusedOps } from '../model/fused-ops';
import { gelu } from '../model/ops';
import { WeightIndex } from '../model/weights';
import { ort } from './ort';
import { createSession } from './session';

export interface FusedOpsProbe {
  ops: FusedOps;
  /** Per candidate: "used (max diff …)" or why not. */
  report: Record<FusedOpName, string>;
}

const TOKENS = 16;
const cache = new Map<string, Promise<FusedOpsProbe>>();

/** Which fused kernels agree with their decompositions here; `inners`: the GEGLU inner sizes of the model. */
export function probeFusedOps(compute: Compute, inners: number[]): Promise<FusedOpsProbe> {
  const key = `${compute}:${[...new Set(inners)].sort((a, b) => a - b).join(',')}`;
  let p = cache.get(key);
  if (!p) cache.set(key, (p = runProbe(compute, [...new Set(inners)])));
  return p;
}

async function runProbe(compute: Compute, inners: number[]): Promise<FusedOpsProbe> {
  const ops: FusedOps = {};
  const report = {} as Record<FusedOpName, string>;
  const tol = compute === 'float16' ? 4e-3 : 1e-4;
  for (const name of FUSED_OPS) {
    let worst = 0;
    let why = '';
    for (const inner of inners.length ? inners : [64]) {
      try {
        worst = Math.max(worst, await compare(name, compute, inner));
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
  return { ops, report };
}

/** Relative max difference fused vs decomposed on one shape (throws when the fused session fails). */
async function compare(name: FusedOpName, compute: Compute, inner: number): Promise<number> {
  const width = name === 'gelu' ? inner : 2 * inner;
  const x = new Float32Array(2 * TOKENS * width);
  const bias = new Float32Array(width);
  let seed = 12345;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32) * 6 - 3;
  x.forEach((_, i) => (x[i] = rnd()));
  bias.forEach((_, i) => (bias[i] = rnd() / 3));
  const build = (fused: boolean) => {
    const g = new GraphBuilder({ name: `probe_${name}`, weights: new WeightIndex([]), compute, fused: { gelu: fused && name === 'gelu' } });
    const input = g.toCompute(g.input('x', 'float32', [2, TOKENS, width]));
    const y = name === 'gelu' ? gelu(g, input) : gegluTail(g, input, g.constFloat(bias, [width]), inner, fused);
    g.output(g.cast(y, 'float32'), 'y');
    return g.build();
  };
  const run = async (fused: boolean) => {
    const s = await createSession(build(fused), { backend: 'webgpu', name: `${name} probe`, placement: 'strict' });
    try {
      return (await s.run({ x: new ort.Tensor('float32', x, [2, TOKENS, width]) }))['y']!.data as Float32Array;
    } finally {
      await s.release();
    }
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
