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
import type { Backend, BackendKind, SessionOptions } from './backend';

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
  } as Backend & { blobs: BlobRegistry };
}
