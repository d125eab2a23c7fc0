/**
 * Builds small kohya-layout LoRA files for the tiny fixture model at test time (Node side of the browser
 * tests and `npm run screenshots`): `lora_unet_<diffusers module path with _>.lora_down.weight` [r, in],
 * `.lora_up.weight` [out, r], `.alpha` (scalar), for attention `to_q` / `to_k` weights that the fixture's
 * U-Net really has (names and shapes read from its safetensors header). Values are seeded: the same call
 * gives the same bytes.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { encodeSafetensors, type TensorToEncode } from '../workers/model/safetensors';

const UNET = resolve(import.meta.dirname, '../test/fixtures/tiny-sdxl/unet/diffusion_pytorch_model.safetensors');

/** The fixture U-Net's weights: name -> shape (from the file header only). */
export function tinyUnetShapes(): Map<string, number[]> {
  const bytes = readFileSync(UNET);
  const n = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8')) as Record<string, { shape?: number[] }>;
  const out = new Map<string, number[]>();
  for (const [k, v] of Object.entries(header)) if (k !== '__metadata__' && v.shape) out.set(k, v.shape);
  return out;
}

/** mulberry32: a small seeded PRNG, uniform in [0, 1). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface TinyLora {
  bytes: Uint8Array;
  /** The diffusers module names (without `.weight`) the file targets and that exist in the fixture. */
  modules: string[];
  /** Modules the file names that the fixture does not have. */
  missing: string[];
}

/**
 * A LoRA for `modules` (diffusers names without `.weight`, e.g. `mid_block.attentions.0.transformer_blocks.0.attn1.to_q`)
 * plus `missing` extra modules that are not in the fixture (given as [name, out, in]), rank `rank`, values
 * uniform in ±`amplitude`, alpha = rank (so the delta is up·down × scale).
 */
export function buildTinyLora(opts: {
  modules: string[];
  missing?: [string, number, number][];
  rank?: number;
  amplitude?: number;
  seed?: number;
}): TinyLora {
  const shapes = tinyUnetShapes();
  const rank = opts.rank ?? 4;
  const amp = opts.amplitude ?? 0.1;
  const rand = rng(opts.seed ?? 1);
  const tensors: Record<string, TensorToEncode> = {};
  const add = (module: string, out: number, inp: number) => {
    const prefix = `lora_unet_${module.replace(/\./g, '_')}`;
    const fill = (len: number) => Float32Array.from({ length: len }, () => (rand() * 2 - 1) * amp);
    tensors[`${prefix}.lora_down.weight`] = { dtype: 'F32', shape: [rank, inp], data: fill(rank * inp) };
    tensors[`${prefix}.lora_up.weight`] = { dtype: 'F32', shape: [out, rank], data: fill(out * rank) };
    tensors[`${prefix}.alpha`] = { dtype: 'F32', shape: [], data: Float32Array.of(rank) };
  };
  for (const m of opts.modules) {
    const shape = shapes.get(`${m}.weight`);
    if (!shape || shape.length !== 2) throw new Error(`the tiny U-Net has no 2-D weight ${m}.weight`);
    add(m, shape[0]!, shape[1]!);
  }
  for (const [m, out, inp] of opts.missing ?? []) {
    if (shapes.has(`${m}.weight`)) throw new Error(`${m}.weight exists in the tiny U-Net; it cannot stand for a missing module`);
    add(m, out, inp);
  }
  const bytes = encodeSafetensors(tensors, { ss_network_module: 'networks.lora', ss_network_dim: String(rank) });
  return { bytes, modules: opts.modules, missing: (opts.missing ?? []).map(([m]) => m) };
}

/** The fixture's attention to_q / to_k modules under `under` (e.g. `mid_block.` or `down_blocks.1.attentions.0.`). */
export function attentionModules(under: string): string[] {
  return [...tinyUnetShapes().keys()]
    .filter((k) => k.startsWith(under) && /\.attn[12]\.to_[qk]\.weight$/.test(k))
    .map((k) => k.replace(/\.weight$/, ''))
    .sort();
}
