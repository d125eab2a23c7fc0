/**
 * Turns the worker's probe answer into what the page tells the user before any download:
 * whether this browser can run the chosen model at the chosen size, in which precision, and how much
 * it will download. Pure; unit-tested.
 */
import type { Capabilities, Precision } from '../workers/protocol';
import type { ModelEntry } from './models';
import { SIZES } from './models';
import { formatBytes } from './format';
import estimates from './memory-estimates.json';

export const BROWSERS =
  'WebGPU ships in Chrome and Edge 113+ (Windows, macOS, ChromeOS; Android 12+ from Chrome 121), Safari 26 (macOS Tahoe, iOS/iPadOS 26), and Firefox 141+ on Windows (145+ on Apple-silicon macOS). On Linux, Chrome needs chrome://flags/#enable-unsafe-webgpu and #enable-vulkan.';

export interface Assessment {
  level: 'ok' | 'warn' | 'error';
  /** Short headline, e.g. "WebGPU is not available". */
  title: string;
  /** What is missing and what to do. */
  detail: string;
  precision: Precision;
  /** Expected first-run download in bytes (null when unknown). */
  downloadBytes: number | null;
  /** GPU memory the generation needs at this size and precision (computed ledger; null when unknown). */
  gpuMemoryBytes: number | null;
  /** Largest offered size that fits this adapter's limits (for a hint), when the chosen one does not. */
  suggestedSize?: [number, number];
}

/**
 * The smallest maxStorageBufferBindingSize / maxBufferSize a run needs: the largest tensor a kernel binds whole
 * (src/memory-estimates.json `minBindingBytes`, from the app's graphs: attention, feed-forward and VAE bands are
 * cut to the adapter's limit, so what remains is OpenCLIP-bigG's 49408 × 1280 token embedding and fp32
 * normalisation statistics). Repos of unknown architecture use SDXL-base's figures (same encoders and VAE).
 */
export function largestBufferNeeded(width: number, height: number, precision: Precision, model: ModelEntry): number {
  if (model.family === 'demo') return 16 * width * height * 4;
  const entry = estimateEntry(model.unet ?? 'sdxl-base', width, height, precision);
  return entry?.minBindingBytes ?? 49408 * 1280 * (precision === 'fp16' ? 2 : 4);
}

type EstimateEntry = { bytes: number; minBindingBytes: number };

function estimateEntry(unet: string, width: number, height: number, precision: Precision): EstimateEntry | undefined {
  const table = (estimates.models as Record<string, Record<Precision, Record<string, EstimateEntry>>>)[unet];
  return table?.[precision]?.[`${width}x${height}`];
}

/**
 * GPU memory a generation of this model needs at this size, from src/memory-estimates.json (made from the
 * app's own graphs by `npm run memory:estimates`: all sessions' weights plus the largest phase's activations).
 */
export function gpuMemoryNeeded(model: ModelEntry, width: number, height: number, precision: Precision): number | null {
  if (!model.unet) return null;
  return estimateEntry(model.unet, width, height, precision)?.bytes ?? null;
}

export function assess(caps: Capabilities | null, model: ModelEntry, width: number, height: number): Assessment {
  if (!caps) {
    return { level: 'warn', title: 'Checking your GPU…', detail: '', precision: 'fp32', downloadBytes: null, gpuMemoryBytes: null };
  }
  const precision: Precision = caps.shaderF16 && model.fp16Variant ? 'fp16' : 'fp32';
  const downloadBytes = model.download ? model.download[precision] : null;
  const gpuMemoryBytes = gpuMemoryNeeded(model, width, height, precision);
  const memory = gpuMemoryBytes !== null ? ` It needs about ${formatBytes(gpuMemoryBytes)} of GPU memory at ${width}×${height}.` : '';
  if (!caps.webgpu) {
    const noApi = /navigator\.gpu|not expose|missing/i.test(caps.problem ?? '');
    return {
      level: 'error',
      title: noApi ? 'This browser has no WebGPU' : 'WebGPU found no usable GPU adapter',
      detail: `${caps.problem ?? 'WebGPU is not available.'} ${noApi ? BROWSERS : 'Turn on hardware acceleration, update the GPU driver, or try another browser. ' + BROWSERS}`,
      precision,
      downloadBytes,
      gpuMemoryBytes,
    };
  }
  const need = largestBufferNeeded(width, height, precision, model);
  const have = Math.min(caps.maxBufferSize ?? Infinity, caps.maxStorageBufferBindingSize ?? Infinity);
  if (have < need) {
    const fit = SIZES.filter((s) => s.group !== 'tiny' || model.family === 'demo').find(
      (s) => largestBufferNeeded(s.width, s.height, precision, model) <= have,
    );
    return {
      level: 'error',
      title: 'GPU limits too low for this size',
      detail: `${width}×${height} needs GPU buffers of ${formatBytes(need)}, but this adapter allows ${formatBytes(have)} (maxBufferSize ${formatBytes(caps.maxBufferSize ?? 0)}, maxStorageBufferBindingSize ${formatBytes(caps.maxStorageBufferBindingSize ?? 0)}).${fit ? ` Choose ${fit.width}×${fit.height} or smaller.` : precision === 'fp32' ? " In fp32 the text encoder's token embedding alone is that large at every size; a GPU with shader-f16 (fp16 weights) needs half." : ' Try a desktop GPU.'}`,
      precision,
      downloadBytes,
      gpuMemoryBytes,
      suggestedSize: fit ? [fit.width, fit.height] : undefined,
    };
  }
  const size = downloadBytes !== null ? formatBytes(downloadBytes) : null;
  if (!caps.shaderF16 && model.family !== 'demo') {
    const fp16 = model.download ? ` instead of ${formatBytes(model.download.fp16)}` : '';
    const download = size ? `a ${size} download${fp16}` : 'the larger fp32 weight files';
    return {
      level: 'warn',
      title: 'No shader-f16: using fp32 weights',
      detail: `This GPU adapter lacks the WebGPU "shader-f16" feature, so the model runs in fp32: ${download} and about twice the GPU memory.${memory}`,
      precision,
      downloadBytes,
      gpuMemoryBytes,
    };
  }
  return {
    level: 'ok',
    title: 'Ready',
    detail: `${precision} on ${caps.adapterName ?? 'your GPU'}; the first run downloads ${size ?? 'the model'} (cached afterwards).${memory}`,
    precision,
    downloadBytes,
    gpuMemoryBytes,
  };
}
