/** The fused-op self-test (fused-ops-probe.ts) on a given onnxruntime-web module's wasm backend (the Node CLI's). */
import type * as Ort from 'onnxruntime-web';
import { BlobRegistry } from '../pipeline/ort-backend';
import type { ProbeRunner } from './fused-ops-probe';

export function wasmProbeRunner(ort: typeof Ort): ProbeRunner {
  const blobs = new BlobRegistry();
  return async (graph, feeds) => {
    const s = await ort.InferenceSession.create(graph.model, { executionProviders: ['wasm'], externalData: await blobs.externalData(graph.externalData) });
    try {
      const o = await s.run(Object.fromEntries(Object.entries(feeds).map(([k, t]) => [k, new ort.Tensor('float32', t.data, t.dims)])));
      return Object.fromEntries(Object.entries(o).map(([k, t]) => [k, t.data as Float32Array]));
    } finally {
      await s.release();
    }
  };
}
