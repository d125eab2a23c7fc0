/**
 * The ONE place the engine imports onnxruntime-web, so the page bundles exactly one build.
 *
 * Build decision: `onnxruntime-web/webgpu` (the native C++ WebGPU EP), not `onnxruntime-web/all` (JSEP).
 * Measured 2026-11-25 in Node over Dawn + Mesa 25 lavapipe (test/webgpu-node.ts), onnxruntime-web 1.30.0;
 * the figures are in workers/runtime/README.md:
 * - Correctness: both builds match the diffusers goldens for CLIP, VAE and, for every Conv shape the real
 *   SDXL/KOALA U-Net and VAE use, agree with the wasm backend. The native EP has two known wrong kernels:
 *   com.microsoft.MultiHeadAttention (REFERENCE.md; our graphs use decomposed attention, exact on both) and
 *   a 3×3 Conv bug for tiny odd channel counts (Cin = 6 with Cout % 4 == 0, e.g. the tiny fixture U-Net's
 *   6 → 12 conv; never a real model's shape, see conv-shapes.webgpu.test.ts). JSEP is exact on all of it.
 * - Speed: the native EP runs the same graphs about 2× faster (fewer, fused dispatches) and starts faster;
 *   JSEP's first run spends tens of seconds compiling its JS-generated shaders on lavapipe.
 * - Future: JSEP is in maintenance; new WebGPU work in ORT lands in the native EP.
 * Switching build = change the import below (and the wasm file name in the page's asset setup).
 *
 * Node note: V8's optimizing tier stalls ~30 s compiling ORT's asyncify wasm on the first run in Node 20;
 * test/webgpu-node.ts switches Node to `--liftoff-only` (browsers compile in the background).
 */
import * as ort from 'onnxruntime-web/webgpu';
import { installConsoleTap } from './ort-log';

export { ort };
export type OrtTensor = ort.Tensor;
export type OrtSession = ort.InferenceSession;

/** Which onnxruntime-web build this file imports. */
export const ORT_BUILD = 'webgpu-native-ep' as const;
/** The wasm binary that build loads (the page must serve it when it overrides wasmPaths). */
export const ORT_WASM_FILE = 'ort-wasm-simd-threaded.asyncify.wasm';

// Must precede the first session: the wasm module binds console.* when it initialises.
installConsoleTap();

export interface OrtSetup {
  /**
   * Where ORT finds its .wasm/.mjs files: a URL prefix, or `{ wasm, mjs }` URLs (the page passes Vite asset
   * URLs). Default: next to the onnxruntime-web module (works in Node and in dev).
   */
  wasmPaths?: ort.Env.WasmPrefixOrFilePaths;
  /** wasm threads for CPU kernels; default: up to 4 when cross-origin isolated, else 1. */
  numThreads?: number;
  /** Global ORT log level (default 'warning'). */
  logLevel?: 'verbose' | 'info' | 'warning' | 'error' | 'fatal';
  /** A GPUDevice to run WebGPU sessions on (default: ORT requests its own from navigator.gpu). */
  device?: GPUDevice;
}

let applied: OrtSetup | undefined;

/** Applies the ORT environment settings; call before the first session. Later calls may only repeat them. */
export function configureOrt(setup: OrtSetup = {}): void {
  ort.env.wasm.numThreads = setup.numThreads ?? defaultThreads();
  if (setup.wasmPaths !== undefined) ort.env.wasm.wasmPaths = setup.wasmPaths;
  ort.env.logLevel = setup.logLevel ?? 'warning';
  if (setup.device) ort.env.webgpu.device = setup.device;
  applied = setup;
}

/** Settings in force (configureOrt's, or the defaults applied on first use). */
export function ortSetup(): OrtSetup {
  if (!applied) configureOrt();
  return applied!;
}

function defaultThreads(): number {
  const g = globalThis as { crossOriginIsolated?: boolean; navigator?: { hardwareConcurrency?: number } };
  if (!g.crossOriginIsolated) return 1;
  return Math.max(1, Math.min(4, g.navigator?.hardwareConcurrency ?? 1));
}

/** The GPUDevice ORT's WebGPU backend uses (available once a WebGPU session exists, or set by configureOrt). */
export async function ortDevice(): Promise<GPUDevice> {
  return (await ort.env.webgpu.device) as GPUDevice;
}
