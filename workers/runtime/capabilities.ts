/**
 * WebGPU capability probe and the buffer sizes a generation needs.
 *
 * `probeCapabilities()` never throws for a missing adapter: it reports `webgpu: false` and why.
 * `requirements()` computes, analytically, the largest tensors the SDXL-family graphs bind at a size
 * (the graphs here: workers/model/ — attention and feed-forward are chunked to the binding limit, so
 * what remains are whole activations, the text encoders' embedding tables and the largest weights), and
 * `checkLimits()` compares them with an adapter's `maxBufferSize` / `maxStorageBufferBindingSize`,
 * returning a message that names the tensor, the sizes and the largest image size that would fit.
 */
import { EngineError, type Capabilities, type Precision } from '../protocol';

/** The SDXL-family models the app knows by name (all share SDXL's channel widths, encoders and VAE). */
export type ModelKind = 'koala-700m' | 'koala-1b' | 'sdxl-base' | 'ssd-1b' | 'vega';

export interface ProbeResult extends Capabilities {
  adapter?: GPUAdapter;
}

/** Probes navigator.gpu (or the given GPU object) for an adapter and its limits. */
export async function probeCapabilities(gpu: GPU | undefined = (globalThis as { navigator?: { gpu?: GPU } }).navigator?.gpu): Promise<ProbeResult> {
  if (!gpu) {
    return { webgpu: false, shaderF16: false, problem: 'This browser has no WebGPU (navigator.gpu is missing). Use a recent Chrome, Edge or another browser with WebGPU enabled.' };
  }
  let adapter: GPUAdapter | null = null;
  try {
    adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  } catch (e) {
    return { webgpu: false, shaderF16: false, problem: `WebGPU adapter request failed: ${(e as Error).message}` };
  }
  if (!adapter) {
    return { webgpu: false, shaderF16: false, problem: 'WebGPU is present but no GPU adapter is available (blocklisted driver, or GPU access disabled). Check chrome://gpu.' };
  }
  return {
    webgpu: true,
    adapter,
    adapterName: adapterName(adapter),
    shaderF16: adapter.features.has('shader-f16'),
    maxBufferSize: adapter.limits.maxBufferSize,
    maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
  };
}

function adapterName(adapter: GPUAdapter): string {
  const info = adapter.info as GPUAdapterInfo | undefined;
  if (!info) return 'WebGPU adapter';
  const parts = [info.vendor, info.architecture, info.device, info.description].filter((s) => typeof s === 'string' && s.length > 0);
  return parts.length ? [...new Set(parts)].join(' ') : 'WebGPU adapter';
}

export interface RequirementItem {
  /** What the tensor is, for messages. */
  what: string;
  bytes: number;
  /** Bound whole as one storage buffer by a kernel (then it must fit maxStorageBufferBindingSize too). */
  binding: boolean;
}

export interface Requirements {
  items: RequirementItem[];
  /** Largest single GPU buffer. */
  largestBuffer: number;
  /** Largest single storage binding. */
  largestBinding: number;
}

export interface RequirementOptions {
  /** Images per batch (default 1). */
  batch?: number;
  /** Classifier-free guidance doubles the U-Net batch (default true). */
  cfg?: boolean;
  /** The text encoders run on the GPU (default true). */
  textEncodersOnGpu?: boolean;
  /** VAE compute precision (default fp32: the stock SDXL VAE overflows fp16). */
  vaePrecision?: Precision;
}

const UNET_LEVEL0 = 320;
/** up_blocks.2.resnets.0 input: concat of the upsampled 640 channels and the 320-channel skip. */
const UNET_WIDEST_LEVEL0 = 640 + UNET_LEVEL0;
/** Largest U-Net weight: the level-2 GEGLU projection [2·4·1280, 1280]. */
const UNET_LARGEST_WEIGHT = 10240 * 1280;
const CLIP_VOCAB = 49408;
const CLIP_L_WIDTH = 768;
const CLIP_G_WIDTH = 1280;
/** VAE decoder: up_blocks.2's upsampler works on 256 channels at full image size. */
const VAE_WIDEST_FULLRES = 256;

const bytesOf = (p: Precision) => (p === 'fp16' ? 2 : 4);

/**
 * The largest buffers one generation binds, for an SDXL-family model at `width`×`height` pixels.
 * `precision` is the U-Net / text-encoder compute (and weight file) precision.
 */
export function requirements(model: ModelKind, width: number, height: number, precision: Precision, opts: RequirementOptions = {}): Requirements {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 8 || height < 8 || width % 8 || height % 8) {
    throw new EngineError('bad-input', `requirements: width and height must be positive multiples of 8, got ${width}×${height}`);
  }
  if (!(['koala-700m', 'koala-1b', 'sdxl-base', 'ssd-1b', 'vega'] as string[]).includes(model)) {
    throw new EngineError('bad-input', `requirements: unknown model kind "${model}"`);
  }
  const b = opts.batch ?? 1;
  const unetBatch = (opts.cfg ?? true) ? 2 * b : b;
  const pb = bytesOf(precision);
  const latent = (width / 8) * (height / 8);
  const vb = bytesOf(opts.vaePrecision ?? 'fp32');
  const items: RequirementItem[] = [
    {
      what: `U-Net activation (${UNET_WIDEST_LEVEL0} channels at ${width / 8}×${height / 8}, batch ${unetBatch})`,
      bytes: unetBatch * UNET_WIDEST_LEVEL0 * latent * pb,
      binding: true,
    },
    {
      // GroupNorm statistics run in fp32 even with fp16 compute (ops.ts groupNorm): the cast input is fp32.
      what: `U-Net GroupNorm input in fp32 (${UNET_WIDEST_LEVEL0} channels at ${width / 8}×${height / 8}, batch ${unetBatch})`,
      bytes: unetBatch * UNET_WIDEST_LEVEL0 * latent * 4,
      binding: true,
    },
    { what: 'largest U-Net weight (level-2 GEGLU projection)', bytes: UNET_LARGEST_WEIGHT * pb, binding: true },
    {
      what: `VAE decoder activation (${VAE_WIDEST_FULLRES} channels at ${width}×${height}, ${opts.vaePrecision ?? 'fp32'})`,
      bytes: VAE_WIDEST_FULLRES * width * height * vb,
      binding: true,
    },
    {
      what: `VAE GroupNorm input in fp32 (${VAE_WIDEST_FULLRES} channels at ${width}×${height})`,
      bytes: VAE_WIDEST_FULLRES * width * height * 4,
      binding: true,
    },
  ];
  if (opts.textEncodersOnGpu ?? true) {
    items.push(
      { what: `text_encoder token embedding (${CLIP_VOCAB}×${CLIP_L_WIDTH}, ${precision})`, bytes: CLIP_VOCAB * CLIP_L_WIDTH * pb, binding: true },
      { what: `text_encoder_2 token embedding (${CLIP_VOCAB}×${CLIP_G_WIDTH}, ${precision})`, bytes: CLIP_VOCAB * CLIP_G_WIDTH * pb, binding: true },
    );
  }
  const largestBuffer = Math.max(...items.map((i) => i.bytes));
  const largestBinding = Math.max(0, ...items.filter((i) => i.binding).map((i) => i.bytes));
  return { items, largestBuffer, largestBinding };
}

const MiB = 2 ** 20;
const fmt = (n: number) => (n >= 10 * MiB ? `${Math.round(n / MiB)} MiB` : `${(n / MiB).toFixed(1)} MiB`);

/**
 * Checks an adapter's limits against what a generation needs. Returns undefined when it fits, else a
 * message naming the first tensor that does not fit, both sizes, and the largest square size that fits.
 */
export function checkLimits(
  caps: Pick<Capabilities, 'maxBufferSize' | 'maxStorageBufferBindingSize' | 'adapterName'>,
  model: ModelKind,
  width: number,
  height: number,
  precision: Precision,
  opts: RequirementOptions = {},
): string | undefined {
  const problem = firstProblem(caps, requirements(model, width, height, precision, opts));
  if (!problem) return undefined;
  const gpu = caps.adapterName ?? 'This GPU';
  let fit: number | undefined;
  for (let s = Math.min(width, height, 2048); s >= 64; s -= 64) {
    if (!firstProblem(caps, requirements(model, s, s, precision, opts))) {
      fit = s;
      break;
    }
  }
  const advice = fit ? `Choose ${fit}×${fit} or smaller.` : 'This GPU cannot run this model at any size.';
  return `${gpu} allows ${problem.limitName} = ${fmt(problem.limit)}, but ${width}×${height} ${precision} needs ${fmt(problem.item.bytes)} for the ${problem.item.what}. ${advice}`;
}

/** Like checkLimits, but throws EngineError('limits-too-low'). */
export function assertLimits(...args: Parameters<typeof checkLimits>): void {
  const msg = checkLimits(...args);
  if (msg) throw new EngineError('limits-too-low', msg);
}

function firstProblem(caps: Pick<Capabilities, 'maxBufferSize' | 'maxStorageBufferBindingSize'>, req: Requirements) {
  for (const item of [...req.items].sort((a, b) => b.bytes - a.bytes)) {
    if (caps.maxBufferSize !== undefined && item.bytes > caps.maxBufferSize) return { item, limitName: 'maxBufferSize', limit: caps.maxBufferSize };
    if (item.binding && caps.maxStorageBufferBindingSize !== undefined && item.bytes > caps.maxStorageBufferBindingSize) {
      return { item, limitName: 'maxStorageBufferBindingSize', limit: caps.maxStorageBufferBindingSize };
    }
  }
  return undefined;
}
