/**
 * Backend over an onnxruntime-web module. The module is passed in (not imported here) so the page's
 * worker, the Node CLI and the tests share the one ORT instance their runtime chose.
 *
 * External data: each ExternalRef is a byte range of a safetensors file. When the file is a Blob we
 * pass `blob.slice(begin, end)`: no copy of the whole file in JS memory; ORT reads one part at a time
 * into its heap (peak JS memory ≈ the largest part, 1 GiB at most; see GraphBuilderOptions.maxPartBytes).
 */
import type * as Ort from 'onnxruntime-web';
import { GraphBuilder, type BuiltGraph, type ExternalRef } from '../model/graph';
import { WeightIndex } from '../model/weights';
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
      if (t.location === 'gpu-buffer') {
        this.readbacks++;
        const d = await t.getData();
        return d instanceof Float32Array ? d : Float32Array.from(d as ArrayLike<number>);
      }
      const d = t.data;
      return d instanceof Float32Array ? d : Float32Array.from(d as ArrayLike<number>);
    },
    dispose(t: Ort.Tensor | undefined) {
      if (t && t.location === 'gpu-buffer') t.dispose();
    },
    deviceTensor: kind === 'webgpu' ? (dims: readonly number[]) => deviceTensor(ort, dims) : undefined,
  } as Backend & { blobs: BlobRegistry };
}

/**
 * A float32 GPU tensor over a buffer of its own on onnxruntime's device (size rounded up to 16 bytes),
 * registered with onnxruntime for good (see `keepRegistered`).
 */
async function deviceTensor(ort: OrtModule, dims: readonly number[]): Promise<DeviceTensor> {
  const key = await registrationKey(ort);
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

let keyProbe: Promise<symbol> | undefined;

/** The symbol under which onnxruntime keeps a GPU buffer's registration (learnt from a buffer it allocated). */
function registrationKey(ort: OrtModule): Promise<symbol> {
  keyProbe ??= (async () => {
    const g = new GraphBuilder({ name: 'probe', weights: new WeightIndex([]), compute: 'float32' });
    g.output(g.op('Mul', [g.input('x', 'float32', [4]), g.input('y', 'float32', [4])])[0]!, 'z');
    const session = await ort.InferenceSession.create(g.build().model, { executionProviders: ['webgpu'], preferredOutputLocation: 'gpu-buffer' });
    try {
      const x = new ort.Tensor('float32', new Float32Array(4), [4]);
      const z = (await session.run({ x, y: x }))['z']!;
      const key = Object.getOwnPropertySymbols(z.gpuBuffer).find((s) => s.description === 'gpuBufferMetadata');
      z.dispose();
      if (!key) throw new Error('this onnxruntime-web build keeps no registration record on GPU buffers: graph capture cannot bind fixed buffers');
      return key;
    } finally {
      await session.release();
    }
  })();
  return keyProbe;
}
