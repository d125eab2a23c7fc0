/**
 * The pipeline's Backend on WebGPU, with every session made by runtime/session.ts under the strict
 * placement check: a node that would fall back to the CPU EP fails session creation with an EngineError
 * naming it, unless the graph's builder declared it (BuiltGraph.allowCpu). Used by the page's engine, the
 * Node WebGPU tests and the benches, so all of them run the same sessions.
 */
import type { InferenceSession } from 'onnxruntime-web';
import type { Backend } from '../pipeline/backend';
import { BlobRegistry, createOrtBackend, type OrtModule } from '../pipeline/ort-backend';
import { ort } from './ort';
import { createSession, type EngineSession } from './session';

/** An EngineSession seen through the InferenceSession surface the pipeline uses (run, release, names). */
function asInferenceSession(s: EngineSession): InferenceSession {
  return {
    inputNames: s.graph.inputs.map((i) => i.name),
    outputNames: s.graph.outputs.map((o) => o.name),
    run: (feeds: Record<string, ort.Tensor>, fetches?: Record<string, ort.Tensor | null>) => s.run(feeds, { fetches }),
    release: () => s.release(),
  } as unknown as InferenceSession;
}

export function createWebgpuBackend(blobs = new BlobRegistry()): Backend & { blobs: BlobRegistry } {
  return createOrtBackend(ort as unknown as OrtModule, 'webgpu', blobs, async (graph, opts) => {
    // the files behind the graph's external data, as Blobs: sessions get slices, nothing is read up front
    const files = new Map<string, Blob>();
    for (const r of graph.externalData) {
      const blob = blobs.blob(r.source);
      if (blob) files.set(r.file, blob);
    }
    const session = await createSession(graph, {
      backend: 'webgpu',
      name: opts.label,
      files,
      gpuOutputs: opts.keepOutputsOnDevice || opts.graphCapture ? true : undefined,
      enableGraphCapture: opts.graphCapture,
      placement: 'strict',
      allowCpu: graph.allowCpu,
    });
    return asInferenceSession(session);
  });
}
