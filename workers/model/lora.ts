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
import { blobSource, encodeSafetensors, floatToHalf, readSafetensorsHeader, toFloat32, type ByteSource, type SafetensorsFile, type TensorInfo } from './safetensors';
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
        'applying part of a LoRA changes what it does, so it was not applied (allow a partial LoRA to apply the matching part)',
    );
    this.name = 'LoraPartialError';
  }
}

async function readF32(file: SafetensorsFile, t: TensorInfo, what: string): Promise<Float32Array> {
  const v = toFloat32(t.dtype, await file.source.read(t.begin, t.end - t.begin), file.source.name, t.name);
  for (let i = 0; i < v.length; i++) if (!Number.isFinite(v[i]!)) throw new LoraFormatError(`${what}: ${t.name} has a ${Number.isNaN(v[i]!) ? 'NaN' : 'infinite'} value at index ${i}`);
  return v;
}

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
export async function fuseLoras(targets: LoraTargets, loras: LoraUse[], only: readonly LoraComponent[] = LORA_COMPONENTS): Promise<Record<LoraComponent, WeightIndex>> {
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
  const fused: Record<LoraComponent, Record<string, { dtype: 'F16' | 'F32'; shape: number[]; data: Uint16Array | Float32Array }>> = { unet: {}, text_encoder: {}, text_encoder_2: {} };
  for (const { component, target, parts } of byTarget.values()) {
    const entry = targets[component].get(target)!;
    const w = await readF32(entry.file, entry.info, `${component} weights`);
    const out = entry.info.shape[0]!;
    const inner = w.length / out;
    for (const { lora, m, scale } of parts) {
      const down = await readF32(lora.file, m.down, lora.name);
      const up = await readF32(lora.file, m.up, lora.name);
      const alpha = m.alpha ? (await readF32(lora.file, m.alpha, lora.name))[0]! : m.rank;
      const factor = scale * (alpha / m.rank);
      const r = m.rank;
      for (let o = 0; o < out; o++) {
        const row = o * inner;
        for (let k = 0; k < r; k++) {
          const c = factor * up[o * r + k]!;
          if (c === 0) continue;
          const d = k * inner;
          for (let i = 0; i < inner; i++) w[row + i] += c * down[d + i]!;
        }
      }
    }
    if (entry.info.dtype === 'F16') {
      const h = new Uint16Array(w.length);
      for (let i = 0; i < w.length; i++) h[i] = floatToHalf(w[i]!);
      fused[component][target] = { dtype: 'F16', shape: entry.info.shape, data: h };
    } else if (entry.info.dtype === 'F32') {
      fused[component][target] = { dtype: 'F32', shape: entry.info.shape, data: w };
    } else {
      throw new LoraFormatError(`${component}.${target} is stored as ${entry.info.dtype}; LoRAs can be fused into F16 and F32 weights only`);
    }
  }
  const result = {} as Record<LoraComponent, WeightIndex>;
  for (const component of LORA_COMPONENTS) {
    const tensors = fused[component];
    if (!Object.keys(tensors).length) {
      result[component] = targets[component];
      continue;
    }
    const bytes = encodeSafetensors(tensors);
    const names = loras.filter((l) => l.lora.report.perComponent[component] > 0).map((l) => `${l.lora.name}@${l.scale}`);
    const file = await readSafetensorsHeader(blobSource(new Blob([bytes]), `${component} + LoRA ${names.join(' + ')}`));
    result[component] = targets[component].overlay(file);
  }
  return result;
}
