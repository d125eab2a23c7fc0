/**
 * Node test/CLI helper: runs a BuiltGraph on onnxruntime-web's wasm backend.
 * Shared by the model tests, the U-Net tests, the component CLI and the pipeline.
 */
import * as ort from 'onnxruntime-web';
import type { BuiltGraph, DataType, ExternalRef } from '../graph';

ort.env.wasm.numThreads = 1;

/** The `externalData` session option for a built graph: each location's byte range of its file. */
export async function externalDataFor(refs: ExternalRef[]): Promise<{ path: string; data: Uint8Array }[]> {
  const out: { path: string; data: Uint8Array }[] = [];
  for (const r of refs) out.push({ path: r.location, data: await r.source.read(r.begin, r.end - r.begin) });
  return out;
}

export async function createWasmSession(graph: BuiltGraph): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(graph.model, {
    executionProviders: ['wasm'],
    externalData: await externalDataFor(graph.externalData),
    graphOptimizationLevel: 'all',
  });
}

export type Feed = Float32Array | BigInt64Array | Int32Array | Uint16Array;

/** Makes an ort.Tensor for a graph input from float32 values (ints are converted for int64 inputs). */
export function inputTensor(dtype: DataType, dims: number[], values: ArrayLike<number>): ort.Tensor {
  if (dtype === 'int64') return new ort.Tensor('int64', BigInt64Array.from(Array.from(values), (v) => BigInt(Math.round(v))), dims);
  if (dtype === 'int32') return new ort.Tensor('int32', Int32Array.from(values), dims);
  if (dtype === 'float32') return new ort.Tensor('float32', Float32Array.from(values), dims);
  throw new Error(`inputTensor: unsupported dtype ${dtype}`);
}

/**
 * Runs the graph once. `inputs` maps input names to float32 values (converted to each input's dtype);
 * returns every output as Float32Array with its dims.
 */
export async function runWasm(graph: BuiltGraph, inputs: Record<string, ArrayLike<number>>, session?: ort.InferenceSession): Promise<Record<string, { data: Float32Array; dims: number[] }>> {
  const s = session ?? (await createWasmSession(graph));
  try {
    const feeds: Record<string, ort.Tensor> = {};
    for (const i of graph.inputs) {
      const v = inputs[i.name];
      if (!v) throw new Error(`missing input "${i.name}"`);
      const n = i.shape.reduce((a, b) => a * b, 1);
      if (v.length !== n) throw new Error(`input "${i.name}": expected ${n} values for shape [${i.shape}], got ${v.length}`);
      feeds[i.name] = inputTensor(i.dtype, i.shape, v);
    }
    const res = await s.run(feeds);
    const out: Record<string, { data: Float32Array; dims: number[] }> = {};
    for (const o of graph.outputs) {
      const t = res[o.name];
      out[o.name] = { data: Float32Array.from(t.data as Float32Array), dims: [...t.dims] };
    }
    return out;
  } finally {
    if (!session) await s.release();
  }
}

/** max |a - b| (throws on length mismatch). */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length mismatch: ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= m)) m = Number.isNaN(d) ? Infinity : d;
  }
  return m;
}
