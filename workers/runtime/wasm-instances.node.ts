/**
 * Full-size models on onnxruntime-web's wasm backend in Node (CLI, tests, benches).
 *
 * One wasm instance is a 32-bit heap: at most 4 GiB for weights, activations and ORT itself, and there is
 * no wasm64 build. The fp32 KOALA-700M U-Net alone is 3.1 GB and OpenCLIP bigG 2.8 GB, so a big graph is
 * cut into segments (BuiltGraph.split, model/graph-split.ts) whose weights stay within a budget, and each
 * segment runs in a wasm instance of its own: a worker thread (wasm-instance-worker.mjs) with its own ORT
 * module and heap. A `SegmentedSession` chains them; its run() takes and returns ordinary ORT tensors, so
 * the pipeline cannot tell it from a session. Small graphs stay on the caller's own ORT instance.
 *
 * Before anything is read, each segment's heap need is estimated from the graph (weights as loaded + the
 * peak of live activations in node order + ORT's own share); a segment that cannot fit in 4 GiB fails at
 * once with an EngineError('out-of-memory') naming the limit and the figures, never a crash mid-run.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type * as Ort from 'onnxruntime-web';
import type { BuiltGraph, BuiltSegment } from '../model/graph';
import { EngineError } from '../protocol';

/** What one wasm instance can address (32-bit heap, onnxruntime-web's maximum memory). */
export const WASM_HEAP_BYTES = 4 * 2 ** 30;
/** ORT's code, arena slack and allocator overhead, kept free in every instance. */
export const WASM_RESERVE_BYTES = 384 * 2 ** 20;
/**
 * Weights per segment. While a session is created, onnxruntime-web keeps the external-data buffers on the JS
 * side (its mounted-file map) and copies each initializer into the heap once, so the heap holds the weights
 * once (measured: the whole 2.92 GiB fp32 KOALA-700M U-Net loads and runs at 256² in one instance) and the
 * JS side briefly holds one segment's weights. 1.5 GiB leaves every instance ≥ 2 GiB for activations at
 * 1024² and keeps that JS peak low; the fp32 U-Net and OpenCLIP bigG take two segments each.
 */
export const DEFAULT_SEGMENT_WEIGHT_BYTES = 1.5 * 2 ** 30;
/** The budget in force: DEFAULT_SEGMENT_WEIGHT_BYTES, or KOALA_WASM_SEGMENT_MIB (for measuring the limits). */
export function segmentWeightBytes(env: Record<string, string | undefined> = process.env): number {
  const mib = Number(env.KOALA_WASM_SEGMENT_MIB);
  return env.KOALA_WASM_SEGMENT_MIB && mib > 0 ? mib * 2 ** 20 : DEFAULT_SEGMENT_WEIGHT_BYTES;
}
/** KOALA_WASM_NO_PRECHECK=1 skips the fit check (to observe what onnxruntime-web does past the limit). */
const precheck = () => !process.env.KOALA_WASM_NO_PRECHECK;
/** Graphs whose weights are below this run on the caller's ORT instance. */
export const OWN_INSTANCE_MIN_BYTES = 256 * 2 ** 20;

const GiB = (n: number) => `${(n / 2 ** 30).toFixed(2)} GiB`;

interface PlainTensor {
  type: Ort.Tensor.Type;
  dims: readonly number[];
  data: Ort.Tensor.DataType;
}

interface Reply {
  seq: number;
  error?: string;
  fatal?: string;
  inputNames?: string[];
  outputNames?: string[];
  outputs?: Record<string, PlainTensor>;
}

/** One worker thread holding one ORT wasm instance. */
class WasmInstance {
  private readonly worker: Worker;
  private seq = 0;
  private readonly pending = new Map<number, { resolve(r: Reply): void; reject(e: Error): void }>();
  private dead?: Error;

  constructor(
    readonly label: string,
    numThreads: number,
  ) {
    this.worker = new Worker(new URL('./wasm-instance-worker.mjs', import.meta.url), { workerData: { numThreads } });
    this.worker.on('message', (r: Reply) => {
      if (r.fatal) return this.fail(new Error(r.fatal));
      const p = this.pending.get(r.seq);
      if (!p) return;
      this.pending.delete(r.seq);
      if (r.error) p.reject(new Error(r.error));
      else p.resolve(r);
    });
    this.worker.on('error', (e) => this.fail(e));
    this.worker.on('exit', (code) => this.fail(new Error(`the wasm instance's worker exited (code ${code})`)));
  }

  private fail(e: Error) {
    this.dead ??= new EngineError('out-of-memory', `${this.label}: its wasm instance stopped: ${e.message}`);
    for (const p of this.pending.values()) p.reject(this.dead);
    this.pending.clear();
  }

  call(msg: Record<string, unknown>, transfer: ArrayBuffer[] = []): Promise<Reply> {
    if (this.dead) return Promise.reject(this.dead);
    const seq = ++this.seq;
    return new Promise<Reply>((resolve, reject) => {
      this.pending.set(seq, { resolve, reject });
      this.worker.postMessage({ ...msg, id: 1, seq }, transfer);
    });
  }

  async close(): Promise<void> {
    this.dead ??= new Error('closed');
    await this.worker.terminate();
  }
}

export interface SegmentedOptions {
  /** Name for errors, e.g. "unet 2x32x32". */
  label: string;
  /** The caller's ORT module: run() returns its Tensor objects. */
  ort: typeof Ort;
  /** Weight budget per segment (default DEFAULT_SEGMENT_WEIGHT_BYTES). */
  maxWeightBytes?: number;
  /** wasm threads per instance (default: up to 4; the segments run one after another). */
  numThreads?: number;
  /** Progress lines (segment loads). */
  log?(line: string): void;
}

/** A heap estimate for one segment, and the message when it cannot fit. */
export function segmentHeapNeed(s: BuiltSegment): { bytes: number; weights: number; activations: number } {
  return {
    bytes: s.plan.weightBytes + s.plan.activationBytes + WASM_RESERVE_BYTES,
    weights: s.plan.weightBytes,
    activations: s.plan.activationBytes,
  };
}

/**
 * Plans the segments and checks that each fits a wasm instance; throws EngineError('out-of-memory') naming
 * the 4 GiB limit otherwise. Reads no weights.
 */
export function planWasmSegments(graph: BuiltGraph, label: string, maxWeightBytes = segmentWeightBytes()): BuiltSegment[] {
  if (!graph.split) throw new Error(`${label}: this graph cannot be split (not built by GraphBuilder)`);
  const segments = graph.split(maxWeightBytes);
  segments.forEach((s, k) => {
    const need = segmentHeapNeed(s);
    if (need.bytes > WASM_HEAP_BYTES && precheck()) {
      throw new EngineError(
        'out-of-memory',
        `${label}${segments.length > 1 ? ` (segment ${k + 1} of ${segments.length})` : ''} needs about ${GiB(need.bytes)} of wasm memory ` +
          `(weights ${GiB(need.weights)}, activations ${GiB(need.activations)}, ORT ${GiB(WASM_RESERVE_BYTES)}), ` +
          `more than the ${GiB(WASM_HEAP_BYTES)} one onnxruntime-web wasm instance can address (32-bit heap, no wasm64 build). ` +
          `Use a smaller image size or batch, or run on WebGPU.`,
      );
    }
  });
  return segments;
}

/** A chain of sessions, one per segment, each in its own wasm instance; quacks like an InferenceSession. */
export class SegmentedSession {
  readonly inputNames: string[];
  readonly outputNames: string[];
  private released = false;

  private constructor(
    private readonly ort: typeof Ort,
    private readonly label: string,
    private readonly parts: { segment: BuiltSegment; instance: WasmInstance }[],
    graph: BuiltGraph,
  ) {
    this.inputNames = graph.inputs.map((i) => i.name);
    this.outputNames = graph.outputs.map((o) => o.name);
  }

  static async create(graph: BuiltGraph, opts: SegmentedOptions): Promise<SegmentedSession> {
    const segments = planWasmSegments(graph, opts.label, opts.maxWeightBytes);
    const threads = opts.numThreads ?? Math.min(4, availableParallelism());
    const parts: { segment: BuiltSegment; instance: WasmInstance }[] = [];
    try {
      for (const [k, segment] of segments.entries()) {
        const name = segments.length > 1 ? `${opts.label} [${k + 1}/${segments.length}]` : opts.label;
        const instance = new WasmInstance(name, threads);
        parts.push({ segment, instance });
        const t0 = performance.now();
        // one part at a time is read into memory; the worker receives the buffers (transferred, not copied)
        const externalData: { path: string; data: Uint8Array }[] = [];
        for (const r of segment.graph.externalData)
          externalData.push({ path: r.location, data: await r.source.read(r.begin, r.end - r.begin) });
        const model = segment.graph.model.slice();
        try {
          await instance.call({ op: 'create', model, externalData }, [
            model.buffer,
            ...externalData.map((e) => e.data.buffer as ArrayBuffer),
          ]);
        } catch (e) {
          throw new EngineError('out-of-memory', `could not create ${name} on wasm: ${(e as Error).message}`);
        }
        opts.log?.(
          `${name}: ${GiB(segment.plan.weightBytes)} of weights loaded in ${((performance.now() - t0) / 1000).toFixed(1)} s (own wasm instance)`,
        );
      }
    } catch (e) {
      await Promise.all(parts.map((p) => p.instance.close()));
      throw e;
    }
    return new SegmentedSession(opts.ort, opts.label, parts, graph);
  }

  /** Segment count (1 when the graph fit in one instance). */
  get segments(): number {
    return this.parts.length;
  }

  async run(feeds: Record<string, Ort.Tensor>): Promise<Record<string, Ort.Tensor>> {
    if (this.released) throw new Error(`${this.label}: session released`);
    const values = new Map<string, PlainTensor>();
    for (const [name, t] of Object.entries(feeds)) values.set(name, { type: t.type, dims: t.dims, data: t.data });
    // the last segment that reads each value: later, it is dropped
    const lastRead = new Map<string, number>();
    this.parts.forEach((p, k) => p.segment.plan.inputs.forEach((i) => lastRead.set(i, k)));
    for (const [k, p] of this.parts.entries()) {
      const segFeeds: Record<string, PlainTensor> = {};
      for (const name of p.segment.plan.inputs) {
        const v = values.get(name);
        if (!v) throw new EngineError('bad-input', `${this.label}: missing input "${name}"`);
        segFeeds[name] = v;
      }
      const r = await p.instance.call({ op: 'run', feeds: segFeeds });
      for (const [name, t] of Object.entries(r.outputs!)) values.set(name, t);
      for (const name of p.segment.plan.inputs) if (lastRead.get(name) === k && !this.outputNames.includes(name)) values.delete(name);
    }
    const out: Record<string, Ort.Tensor> = {};
    for (const name of this.outputNames) {
      const v = values.get(name)!;
      out[name] = new this.ort.Tensor(v.type, v.data as Float32Array, v.dims);
    }
    return out;
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    await Promise.all(this.parts.map((p) => p.instance.close()));
  }
}

/**
 * The session the Node wasm backend uses for a graph: the caller's own ORT instance for small graphs,
 * a SegmentedSession (own instances) for big ones.
 */
export async function createNodeWasmSession(
  graph: BuiltGraph,
  opts: SegmentedOptions & { createLocal(): Promise<Ort.InferenceSession> },
): Promise<Ort.InferenceSession> {
  if (!graph.split || graph.stats.weightBytes < OWN_INSTANCE_MIN_BYTES) return opts.createLocal();
  return (await SegmentedSession.create(graph, opts)) as unknown as Ort.InferenceSession;
}
