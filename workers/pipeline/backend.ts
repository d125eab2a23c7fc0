/**
 * The pipeline's view of onnxruntime-web: sessions from built graphs, tensors, and counted reads.
 * One implementation (ort-backend.ts) serves the wasm backend (Node CLI, tests) and WebGPU (page),
 * so the denoising loop is the same code everywhere; on WebGPU its tensors stay on the GPU.
 */
import type { InferenceSession, Tensor } from 'onnxruntime-web';
import type { BuiltGraph } from '../model/graph';

export type BackendKind = 'wasm' | 'webgpu';

export interface SessionOptions {
  /** Name for errors and logs, e.g. "unet 2x128x128". */
  label: string;
  /** Keep outputs on the device (WebGPU 'gpu-buffer'); ignored on wasm. */
  keepOutputsOnDevice?: boolean;
  /**
   * onnxruntime's graph capture (WebGPU): the first runs record the session's command buffers, later runs
   * replay them. Every input and output must then be a device tensor, the same buffers on every run
   * (`deviceTensor`), outputs passed as preallocated fetches. Ignored on wasm.
   */
  graphCapture?: boolean;
}

export interface Backend {
  readonly kind: BackendKind;
  createSession(graph: BuiltGraph, opts: SessionOptions): Promise<InferenceSession>;
  /** A CPU tensor (inputs are uploaded by the session run). */
  tensor(type: 'float32', data: Float32Array, dims: readonly number[]): Tensor;
  tensor(type: 'int64', data: BigInt64Array, dims: readonly number[]): Tensor;
  /** The tensor's values on the CPU; a GPU→CPU copy is counted in `readbacks`. */
  read(t: Tensor): Promise<Float32Array>;
  /** GPU→CPU reads since the counter was last reset. */
  readbacks: number;
  /** Frees a device tensor (no-op for CPU tensors). */
  dispose(t: Tensor | undefined): void;
  /**
   * A float32 tensor of its own GPU buffer (WebGPU only: undefined on wasm), for bound inputs and
   * preallocated outputs; `destroy` frees the buffer (dispose does not). `like`: a device tensor a session
   * returned (how onnxruntime registers buffers is read off it, or off any tensor the backend read or disposed).
   */
  deviceTensor?(dims: readonly number[], like: Tensor): Promise<DeviceTensor>;
}

export interface DeviceTensor {
  tensor: Tensor;
  destroy(): void;
}
