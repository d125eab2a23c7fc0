/**
 * LoRA files fused into a model's weights at load time: W' = W + Σ scale · (alpha / rank) · up · down
 * (for a conv LoRA, up [out, r, 1, 1] · down [r, in, kh, kw] reshaped), as diffusers'
 * `load_lora_weights` + `fuse_lora(lora_scale=…)` does. The result is a small in-memory safetensors file
 * holding only the changed tensors, in the model's stored dtype, laid over the model's WeightIndex:
 * graphs built from it read those tensors from memory and every other one from the model files, so a
 * denoising step costs nothing extra and the JS heap holds the changed tensors once.
 *
 * Everything is checked before anything is fused (no GPU work happens here at all): the file is a
 * safetensors file, its keys are a LoRA layout (lora-keys.ts), down/up ranks agree, every matched
 * module's shapes fit the model's weight, no value is NaN or infinite. A LoRA that matches only part
 * of its modules is refused unless the caller allows it, with the counts and the first unmatched keys.
 */
import { candidateKeys, groupLoraKeys, LoraFormatError, type LoraComponent } from './lora-keys';
import { allocateSafetensors, bytesSource, floatsToHalves, halfToFloatTable, readSafetensorsHeader, toFloat32, type ByteSource, type DType, type SafetensorsFile, type TensorInfo } from './safetensors';
import { WeightIndex } from './weights';
import type { LoraReport } from '../protocol';

export { LoraFormatError };
export type { LoraReport };

export const LORA_COMPONENTS: readonly LoraComponent[] = ['unet', 'text_encoder', 'text_encoder_2'];

export interface LoraTargets {
  unet: WeightIndex;
  text_encoder: WeightIndex;
  text_encoder_2: WeightIndex;
  /** U-Net `layers_per_block` (for SGM-named kohya keys); undefined when not uniform. */
  layersPerBlock?: number;
}

export interface LoraModuleMatch {
  component: LoraComponent;
  /** Diffusers parameter name inside the component, e.g. `down_blocks.1.attentions.0.proj_in.weight`. */
  target: string;
  prefix: string;
  down: TensorInfo;
  up: TensorInfo;
  alpha?: TensorInfo;
  rank: number;
}

export interface OpenedLora {
  name: string;
  file: SafetensorsFile;
  matches: LoraModuleMatch[];
  report: LoraReport;
}

const show = (shape: readonly number[]) => `[${shape.join(', ')}]`;

/** Reads a LoRA file's header and matches its modules to the model (no tensor data read). */
export async function openLora(source: ByteSource, targets: LoraTargets, name = source.name): Promise<OpenedLora> {
  let file: SafetensorsFile;
  try {
    file = await readSafetensorsHeader(source);
  } catch (e) {
    throw new LoraFormatError(`${name} is not a safetensors LoRA file: ${(e as Error).message}`);
  }
  const grouped = groupLoraKeys([...file.tensors.keys()]);
  const unsupported = grouped.other.find((n) => !n.endsWith('.alpha'));
  if (unsupported) {
    throw new LoraFormatError(`${name}: key ${unsupported} is not supported (only LoRA down/up/alpha tensors; LoHa, LoKr, DoRA and LoCon mid weights are not)`);
  }
  const lookup = new Map<string, { component: LoraComponent; target: string }>();
  for (const component of LORA_COMPONENTS) {
    for (const param of targets[component].names()) {
      if (!param.endsWith('.weight')) continue;
      const module = param.slice(0, -'.weight'.length);
      for (const k of candidateKeys(component, module, targets.layersPerBlock)) lookup.set(k, { component, target: param });
    }
  }
  const matches: LoraModuleMatch[] = [];
  const unmatched: string[] = [];
  for (const m of grouped.modules) {
    const down = file.tensors.get(m.down)!;
    const up = file.tensors.get(m.up)!;
    const rank = down.shape[0]!;
    if (up.shape[1] !== rank) throw new LoraFormatError(`${name}: ${m.up} ${show(up.shape)} does not fit ${m.down} ${show(down.shape)} (rank ${rank} vs ${up.shape[1]})`);
    if (up.shape.length === 4 && (up.shape[2] !== 1 || up.shape[3] !== 1)) throw new LoraFormatError(`${name}: ${m.up} ${show(up.shape)}: only 1×1 up weights are supported`);
    const hit = lookup.get(m.prefix);
    if (!hit) {
      unmatched.push(m.prefix);
      continue;
    }
    const w = targets[hit.component].get(hit.target)!.info;
    const expect = [up.shape[0]!, ...down.shape.slice(1)];
    if (w.shape.length !== expect.length || w.shape.some((v, i) => v !== expect[i])) {
      throw new LoraFormatError(
        `${name}: ${m.prefix} changes ${hit.component}.${hit.target} ${show(w.shape)} but its weights make ${show(expect)}: a LoRA for another architecture (e.g. SD 1.5) or another model size`,
      );
    }
    matches.push({ component: hit.component, target: hit.target, prefix: m.prefix, down, up, alpha: m.alpha ? file.tensors.get(m.alpha) : undefined, rank });
  }
  const perComponent = { unet: 0, text_encoder: 0, text_encoder_2: 0 } as Record<LoraComponent, number>;
  for (const m of matches) perComponent[m.component]++;
  return {
    name,
    file,
    matches,
    report: { name, layout: grouped.layout, modules: grouped.modules.length, matched: matches.length, perComponent, unmatched: unmatched.slice(0, 20), unmatchedCount: unmatched.length },
  };
}

export class LoraPartialError extends Error {
  constructor(readonly report: LoraReport) {
    super(
      `LoRA ${report.name}: only ${report.matched} of ${report.modules} modules match this model (${report.unmatchedCount} unmatched, e.g. ${report.unmatched.slice(0, 3).join(', ')}); ` +
        'applying part of a LoRA changes what it does, so it was not applied (to apply the matching part: --lora-allow-partial in the CLI, "Apply the matching part anyway" in the page)',
    );
    this.name = 'LoraPartialError';
  }
}

async function readF32(file: SafetensorsFile, t: TensorInfo, what: string): Promise<Float32Array> {
  const v = toFloat32(t.dtype, await file.source.read(t.begin, t.end - t.begin), file.source.name, t.name);
  for (let i = 0; i < v.length; i++) if (!Number.isFinite(v[i]!)) throw new LoraFormatError(`${what}: ${t.name} has a ${Number.isNaN(v[i]!) ? 'NaN' : 'infinite'} value at index ${i}`);
  return v;
}

/**
 * acc += c0·down[d…] + c1·down[d+n…] + c2·down[d+2n…] + c3·down[d+3n…] (`rows` of them: 1 or 4). Four
 * rank rows per pass load and store `acc` a quarter as often: about 4× the speed of one row at a time in V8.
 */
function axpy4(acc: Float32Array, down: Float32Array, d: number, n: number, c0: number, c1: number, c2: number, c3: number, rows = 4): void {
  if (rows === 1) {
    for (let i = 0; i < n; i++) acc[i]! += c0 * down[d + i]!;
    return;
  }
  const d1 = d + n;
  const d2 = d1 + n;
  const d3 = d2 + n;
  for (let i = 0; i < n; i++) acc[i]! += c0 * down[d + i]! + c1 * down[d1 + i]! + c2 * down[d2 + i]! + c3 * down[d3 + i]!;
}

/** C [m, n] = A [m, k] · B [k, n], row-major float32 (e.g. on onnxruntime-web's wasm backend: pipeline/cpu-gemm.ts). */
export type LoraGemm = (a: Float32Array, b: Float32Array, m: number, k: number, n: number) => Promise<Float32Array>;

/** One LoRA to fuse: its scale, and whether a LoRA matching only part of its modules may be applied (default: refuse). */
export interface LoraUse {
  lora: OpenedLora;
  scale: number;
  allowPartial?: boolean;
}

/**
 * The components' weight indexes with every matched tensor fused; components no LoRA touches, and
 * components not in `only`, are returned as they were.
 */
export async function fuseLoras(
  targets: LoraTargets,
  loras: LoraUse[],
  only: readonly LoraComponent[] = LORA_COMPONENTS,
  opts: { gemm?: LoraGemm } = {},
): Promise<Record<LoraComponent, WeightIndex>> {
  for (const { lora, scale, allowPartial } of loras) {
    if (!Number.isFinite(scale)) throw new LoraFormatError(`LoRA ${lora.name}: scale must be a number, got ${scale}`);
    if (lora.report.unmatchedCount > 0 && !allowPartial) throw new LoraPartialError(lora.report);
    if (lora.report.matched === 0) throw new LoraFormatError(`LoRA ${lora.name}: none of its ${lora.report.modules} modules names a weight of this model`);
  }
  const byTarget = new Map<string, { component: LoraComponent; target: string; parts: { lora: OpenedLora; m: LoraModuleMatch; scale: number }[] }>();
  for (const { lora, scale } of loras) {
    for (const m of lora.matches) {
      if (!only.includes(m.component)) continue;
      const key = `${m.component}:${m.target}`;
      let e = byTarget.get(key);
      if (!e) byTarget.set(key, (e = { component: m.component, target: m.target, parts: [] }));
      e.parts.push({ lora, m, scale });
    }
  }
  // Per component, one safetensors file of the fused tensors (the stored dtype), allocated once and filled
  // in place row by row: the JS heap holds the fused tensors once, plus one tensor's source bytes at a time.
  const plans = new Map<LoraComponent, { bytes: Uint8Array<ArrayBuffer>; offsets: Map<string, number> }>();
  for (const component of LORA_COMPONENTS) {
    const layout: Record<string, { dtype: DType; shape: number[] }> = {};
    for (const e of byTarget.values()) {
      if (e.component !== component) continue;
      const info = targets[component].get(e.target)!.info;
      if (info.dtype !== 'F16' && info.dtype !== 'F32') {
        throw new LoraFormatError(`${component}.${e.target} is stored as ${info.dtype}; LoRAs can be fused into F16 and F32 weights only`);
      }
      layout[e.target] = { dtype: info.dtype, shape: info.shape };
    }
    if (Object.keys(layout).length) plans.set(component, allocateSafetensors(layout));
  }
  const table = halfToFloatTable();
  for (const { component, target, parts } of byTarget.values()) {
    const entry = targets[component].get(target)!;
    const { dtype, shape } = entry.info;
    const outRows = shape[0]!;
    const count = (entry.info.end - entry.info.begin) / (dtype === 'F16' ? 2 : 4);
    const inner = count / outRows;
    let raw = await entry.file.source.read(entry.info.begin, entry.info.end - entry.info.begin);
    if (raw.byteOffset % 4) raw = raw.slice();
    const src16 = dtype === 'F16' ? new Uint16Array(raw.buffer, raw.byteOffset, count) : undefined;
    const src32 = dtype === 'F32' ? new Float32Array(raw.buffer, raw.byteOffset, count) : undefined;
    const updates = [];
    for (const { lora, m, scale } of parts) {
      const alpha = m.alpha ? (await readF32(lora.file, m.alpha, lora.name))[0]! : m.rank;
      updates.push({ down: await readF32(lora.file, m.down, lora.name), up: await readF32(lora.file, m.up, lora.name), r: m.rank, factor: scale * (alpha / m.rank) });
    }
    const plan = plans.get(component)!;
    let at = plan.offsets.get(target)!;
    // With a GEMM: delta = [f₁·up₁ | f₂·up₂ | …] · [down₁; down₂; …] in one product; else row by row below.
    let delta: Float32Array | undefined;
    if (opts.gemm) {
      const R = updates.reduce((n, u) => n + u.r, 0);
      const ups = new Float32Array(outRows * R);
      const downs = new Float32Array(R * inner);
      let r0 = 0;
      for (const { down, up, r, factor } of updates) {
        for (let o = 0; o < outRows; o++) for (let k = 0; k < r; k++) ups[o * R + r0 + k] = factor * up[o * r + k]!;
        downs.set(down, r0 * inner);
        r0 += r;
      }
      delta = await opts.gemm(ups, downs, outRows, R, inner);
    }
    const acc = new Float32Array(inner);
    const row16 = dtype === 'F16' ? new Uint16Array(inner) : undefined;
    const rowBytes = new Uint8Array((row16 ?? acc).buffer);
    for (let o = 0; o < outRows; o++) {
      const base = o * inner;
      if (delta && src16) for (let i = 0; i < inner; i++) acc[i] = table[src16[base + i]!]! + delta[base + i]!;
      else if (delta) for (let i = 0; i < inner; i++) acc[i] = src32![base + i]! + delta[base + i]!;
      else if (src16) for (let i = 0; i < inner; i++) acc[i] = table[src16[base + i]!]!;
      else acc.set(src32!.subarray(base, base + inner));
      if (!delta) for (const { down, up, r, factor } of updates) {
        const u = o * r;
        let k = 0;
        for (; k + 4 <= r; k += 4) axpy4(acc, down, k * inner, inner, factor * up[u + k]!, factor * up[u + k + 1]!, factor * up[u + k + 2]!, factor * up[u + k + 3]!);
        for (; k < r; k++) axpy4(acc, down, k * inner, inner, factor * up[u + k]!, 0, 0, 0, 1);
      }
      for (let i = 0; i < inner; i++) {
        const v = acc[i]!;
        if (v - v !== 0) throw new LoraFormatError(`Fusing ${parts.map((p) => p.lora.name).join(' + ')} into ${component}.${target} gives ${Number.isNaN(v) ? 'NaN' : 'an infinite value'} (row ${o}); lower the scale`);
      }
      if (row16) floatsToHalves(acc, row16);
      plan.bytes.set(rowBytes, at);
      at += rowBytes.length;
    }
  }
  const result = {} as Record<LoraComponent, WeightIndex>;
  for (const component of LORA_COMPONENTS) {
    const plan = plans.get(component);
    if (!plan) {
      result[component] = targets[component];
      continue;
    }
    const names = loras.filter((l) => l.lora.report.perComponent[component] > 0).map((l) => `${l.lora.name}@${l.scale}`);
    // bytes, not a Blob: a Blob would copy them; the sessions read views of this one buffer
    const file = await readSafetensorsHeader(bytesSource(plan.bytes, `${component} + LoRA ${names.join(' + ')}`));
    result[component] = targets[component].overlay(file);
  }
  return result;
}
