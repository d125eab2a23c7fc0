/**
 * Backend over an onnxruntime-web module. The module is passed in (not imported here) so the page's
 * worker, the Node CLI and the tests share the one ORT instance their runtime chose.
 *
 * External data: each ExternalRef is a byte range of a safetensors file. When the file is a Blob we
 * pass `blob.slice(begin, end)`: no copy of the whole file in JS memory; ORT reads one part at a time
 * into its heap (peak JS memory ≈ the largest part, 1 GiB at most; see GraphBuilderOptions.maxPartBytes).
 */
import type * as Ort from 'onnxruntime-web';
import type { BuiltGraph, ExternalRef } from '../model/graph';
import type { ByteSource } from '../model/safetensors';
import type { Backend, BackendKind, DeviceTensor, SessionOptions } from './backend';

/** onnxruntime-web's module (any of its builds: they share this API). */
export type OrtModule = typeof Ort;

/** Remembers the Blob behind each ByteSource so sessions get Blob slices instead of copies. */
export class BlobRegistry {
  private readonly blobs = new WeakMap<ByteSource, Blob>();
  register(source: ByteSource, blob: Blob): ByteSource {
    this.blobs.set(source, blob);
    return source;
  }
  /** The Blob registered for this source, if any. */
  blob(source: ByteSource): Blob | undefined {
    return this.blobs.get(source);
  }
  async externalData(refs: ExternalRef[]): Promise<{ path: string; data: Blob | Uint8Array }[]> {
    const out: { path: string; data: Blob | Uint8Array }[] = [];
    for (const r of refs) {
      const blob = this.blobs.get(r.source);
      out.push({ path: r.location, data: blob ? blob.slice(r.begin, r.end) : await r.source.read(r.begin, r.end - r.begin) });
    }
    return out;
  }
}

/**
 * Replaces how a session is made for a graph (e.g. the Node CLI runs big graphs in wasm instances of their
 * own: runtime/wasm-instances.node.ts); `createLocal` makes the ordinary one on this backend's ORT.
 */
export type SessionFactory = (
  graph: BuiltGraph,
  opts: SessionOptions,
  createLocal: () => Promise<Ort.InferenceSession>,
) => Promise<Ort.InferenceSession>;

export function createOrtBackend(
  ort: OrtModule,
  kind: BackendKind,
  blobs = new BlobRegistry(),
  factory?: SessionFactory,
): Backend & { blobs: BlobRegistry } {
  const createLocal = async (graph: BuiltGraph, opts: SessionOptions) => {
    const options: Ort.InferenceSession.SessionOptions = {
      executionProviders: [kind],
      externalData: await blobs.externalData(graph.externalData),
      graphOptimizationLevel: 'all',
    };
    if (kind === 'webgpu' && opts.keepOutputsOnDevice) options.preferredOutputLocation = 'gpu-buffer';
    if (kind === 'webgpu' && opts.graphCapture) {
      // onnxruntime-web 1.30 reads enableGraphCapture only when the WebGPU EP is given as an object
      options.executionProviders = [{ name: 'webgpu' }];
      options.enableGraphCapture = true;
    }
    try {
      return await ort.InferenceSession.create(graph.model, options);
    } catch (e) {
      throw new Error(`could not create the ${opts.label} session on ${kind}: ${(e as Error).message}`, { cause: e });
    }
  };
  /** How onnxruntime marks the GPU buffers it registered (registrationKey), learnt from the first one seen. */
  let key: symbol | undefined;
  return {
    kind,
    blobs,
    readbacks: 0,
    createSession(graph: BuiltGraph, opts: SessionOptions) {
      return factory ? factory(graph, opts, () => createLocal(graph, opts)) : createLocal(graph, opts);
    },
    tensor(type: 'float32' | 'int64', data: Float32Array | BigInt64Array, dims: readonly number[]) {
      return new ort.Tensor(type, data as Float32Array, dims);
    },
    async read(t: Ort.Tensor) {
      key ??= registrationKey(t); // before the download turns it into a CPU tensor
      if (t.location === 'gpu-buffer') {
        this.readbacks++;
        const d = await t.getData();
        return d instanceof Float32Array ? d : Float32Array.from(d as ArrayLike<number>);
      }
      const d = t.data;
      return d instanceof Float32Array ? d : Float32Array.from(d as ArrayLike<number>);
    },
    dispose(t: Ort.Tensor | undefined) {
      key ??= registrationKey(t);
      if (t && t.location === 'gpu-buffer') t.dispose();
    },
    deviceTensor: kind === 'webgpu' ? (dims: readonly number[], like: Ort.Tensor) => deviceTensor(ort, dims, (key ??= registrationKey(like))) : undefined,
  } as Backend & { blobs: BlobRegistry };
}

/**
 * A float32 GPU tensor over a buffer of its own on onnxruntime's device (size rounded up to 16 bytes),
 * registered with onnxruntime for good (see `keepRegistered`) under `key` (registrationKey).
 */
async function deviceTensor(ort: OrtModule, dims: readonly number[], key: symbol | undefined): Promise<DeviceTensor> {
  if (!key) throw new Error('graph capture: no GPU tensor of onnxruntime seen yet, or this onnxruntime-web build keeps no registration record on its GPU buffers: fixed buffers cannot be bound');
  const device = (await ort.env.webgpu.device) as GPUDevice;
  const bytes = dims.reduce((a, b) => a * b, 1) * 4;
  // GPUBufferUsage.STORAGE | COPY_SRC | COPY_DST (numbers: the global is absent in some hosts' type scopes)
  const buffer = device.createBuffer({ size: Math.ceil(bytes / 16) * 16, usage: 0x80 | 0x04 | 0x08 });
  keepRegistered(buffer, key);
  const tensor = ort.Tensor.fromGpuBuffer(buffer, { dataType: 'float32', dims });
  return { tensor, destroy: () => buffer.destroy() };
}

/**
 * onnxruntime-web 1.30 (WebGPU EP) registers a caller's GPU buffer with its wasm side for each run and
 * releases it when the run ends (a reference count kept on the buffer object under a private symbol). A
 * graph-captured session binds its inputs and outputs once, on the first run, and replays with those
 * handles: after that release they point at nothing and the replay fails ("createBindGroup: no possible
 * types matched"). Buffers onnxruntime allocates itself are registered for good (count NaN); this gives
 * ours the same status: the record ORT stores on the buffer has its count set to NaN, so later runs reuse
 * the handle and no run releases it. The handle lives as long as the buffer object (destroy() frees the
 * GPU memory).
 */
function keepRegistered(buffer: GPUBuffer, key: symbol): void {
  let record: unknown;
  Object.defineProperty(buffer, key, {
    configurable: true,
    get: () => record,
    set: (v: unknown) => {
      if (Array.isArray(v)) v[1] = NaN;
      record = v;
    },
  });
}

/**
 * The symbol under which onnxruntime keeps a GPU buffer's registration, read off a buffer it allocated (an
 * output it returned on the GPU and the backend saw before it was read back or disposed). (A first version learnt it from a 1-node probe session of its own; in
 * Chromium that session's run failed when it came after a full-size U-Net had been released.)
 */
function registrationKey(t: Ort.Tensor | undefined): symbol | undefined {
  return t?.location === 'gpu-buffer' ? Object.getOwnPropertySymbols(t.gpuBuffer).find((s) => s.description === 'gpuBufferMetadata') : undefined;
}
