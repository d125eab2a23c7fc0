/**
 * InferenceSessions from BuiltGraphs (workers/model/graph.ts): external data from the safetensors files
 * (Blob slices in the browser: nothing is read before ORT asks), WebGPU or wasm, optional GPU-resident
 * outputs, and a check that no node of a WebGPU session falls back to the CPU.
 *
 * CPU-fallback check (placement):
 * - 'strict' (default on WebGPU): the session option `session.disable_cpu_ep_fallback = 1` makes ORT refuse
 *   to create a session with any node on the CPU EP. On refusal we create it once more with verbose
 *   logging to learn WHICH nodes (ORT's "Node placements" report) and throw an EngineError naming them.
 * - 'report': creates with verbose logging (console tap, ort-log.ts) and returns the CPU node list; the
 *   session is usable. `allowCpu` lists node patterns that may stay on the CPU (e.g. a tiny int64 Cast).
 * - 'off': neither.
 */
import type { BuiltGraph, ExternalRef, IOInfo } from '../model/graph';
import { EngineError } from '../protocol';
import { toEngineError } from './errors';
import { ort, ortSetup, type OrtSession, type OrtTensor } from './ort';
import { onOrtLog, parsePlacement, type Placement } from './ort-log';
import type { ReadbackCounter } from './readback';

export type Backend = 'webgpu' | 'wasm';
export type FileData = Blob | Uint8Array;

export interface SessionOptions {
  backend: Backend;
  /** Name for messages (e.g. "unet"). Default: the first output's name. */
  name?: string;
  /**
   * Source files by ExternalRef.file (e.g. "unet/diffusion_pytorch_model.fp16.safetensors"); each location
   * gets the slice [begin, end). Files not given are read through ExternalRef.source.
   */
  files?: Map<string, FileData> | Record<string, FileData>;
  /** Default 'all'. */
  graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'all';
  /** Outputs to keep on the GPU (WebGPU only): true = all, or a list of output names. */
  gpuOutputs?: boolean | string[];
  /** Default 'strict' on WebGPU (see the file comment). */
  placement?: 'strict' | 'report' | 'off';
  /** Node descriptions ("OpType (name)") allowed on the CPU under 'strict'/'report'. */
  allowCpu?: RegExp[];
  /** ORT graph capture (static shapes + GPU-bound IO only). */
  enableGraphCapture?: boolean;
  signal?: AbortSignal;
}

export interface EngineSession {
  readonly name: string;
  readonly backend: Backend;
  readonly session: OrtSession;
  readonly graph: Pick<BuiltGraph, 'inputs' | 'outputs'>;
  /** Nodes ORT placed on the CPU ("OpType (name)"); empty under 'strict' success. */
  readonly cpuNodes: string[];
  /** Milliseconds to create the session (including reading external data). */
  readonly createMs: number;
  /** Runs; GPU→CPU transfers of outputs that come back on the CPU from a WebGPU session are counted. */
  /** `fetches`: outputs to write into preallocated tensors (null: allocated by onnxruntime); default all. */
  run(feeds: Record<string, OrtTensor>, opts?: { readbacks?: ReadbackCounter; fetches?: Record<string, OrtTensor | null> }): Promise<Record<string, OrtTensor>>;
  release(): Promise<void>;
}

/** The `externalData` option for a graph: one entry per location, a byte range of its file. */
export async function externalDataFor(refs: ExternalRef[], files?: SessionOptions['files']): Promise<{ path: string; data: Blob | Uint8Array }[]> {
  const get = (f: string): FileData | undefined => (files instanceof Map ? files.get(f) : files?.[f]);
  const out: { path: string; data: Blob | Uint8Array }[] = [];
  for (const r of refs) {
    const file = get(r.file);
    const size = file ? (file instanceof Blob ? file.size : file.byteLength) : r.source.size;
    if (r.begin < 0 || r.end > size || r.end < r.begin) {
      throw new EngineError('integrity', `${r.file}: the graph needs bytes [${r.begin}, ${r.end}) but the file has ${size} bytes (truncated or wrong file?)`);
    }
    let data: Blob | Uint8Array;
    if (file instanceof Blob) data = file.slice(r.begin, r.end);
    else if (file) data = file.subarray(r.begin, r.end);
    else data = await r.source.read(r.begin, r.end - r.begin);
    out.push({ path: r.location, data });
  }
  return out;
}

const FALLBACK_REFUSED = /fallback to CPU EP has been explicitly disabled/i;

/** Creates a session for a built graph (see the file comment for the placement check). */
export async function createSession(graph: BuiltGraph, opts: SessionOptions): Promise<EngineSession> {
  ortSetup();
  const name = opts.name ?? graph.outputs[0]?.name ?? 'graph';
  const webgpu = opts.backend === 'webgpu';
  const placement = webgpu ? opts.placement ?? 'strict' : 'off';
  const t0 = performance.now();
  opts.signal?.throwIfAborted();

  const base = async (extra: Partial<ort.InferenceSession.SessionOptions>): Promise<ort.InferenceSession.SessionOptions> => ({
    // onnxruntime-web 1.30 reads enableGraphCapture only when the WebGPU EP is given as an object
    executionProviders: webgpu && opts.enableGraphCapture ? [{ name: 'webgpu' }] : [opts.backend],
    externalData: await externalDataFor(graph.externalData, opts.files),
    graphOptimizationLevel: opts.graphOptimizationLevel ?? 'all',
    preferredOutputLocation: webgpu ? outputLocations(graph.outputs, opts.gpuOutputs) : undefined,
    enableGraphCapture: webgpu && opts.enableGraphCapture ? true : undefined,
    ...extra,
  });

  let session: OrtSession;
  let cpuNodes: string[] = [];
  let verbose = false;
  try {
    if (placement === 'report') {
      const r = await createLogged(graph.model, await base({}));
      session = r.session;
      verbose = true;
      cpuNodes = r.placement.cpuNodes;
      if (!r.placement.seen) throw new EngineError('internal', `${name}: ORT printed no node-placement report; cannot check for CPU fallback`);
    } else if (placement === 'strict' && !(opts.allowCpu?.length)) {
      try {
        session = await ort.InferenceSession.create(graph.model, await base({ extra: { session: { disable_cpu_ep_fallback: '1' } } }));
      } catch (e) {
        if (!FALLBACK_REFUSED.test(String((e as Error)?.message ?? e))) throw e;
        const r = await createLogged(graph.model, await base({}));
        await r.session.release();
        throw new EngineError('internal', cpuFallbackMessage(name, r.placement));
      }
    } else if (placement === 'strict') {
      const r = await createLogged(graph.model, await base({}));
      session = r.session;
      verbose = true;
      cpuNodes = r.placement.cpuNodes;
      const bad = cpuNodes.filter((n) => !opts.allowCpu!.some((re) => re.test(n)));
      if (!r.placement.seen || bad.length) {
        await session.release();
        throw new EngineError('internal', r.placement.seen ? cpuFallbackMessage(name, { ...r.placement, cpuNodes: bad }) : `${name}: ORT printed no node-placement report; cannot check for CPU fallback`);
      }
    } else {
      session = await ort.InferenceSession.create(graph.model, await base({}));
    }
  } catch (e) {
    throw toEngineError(e, `Creating the ${name} session on ${opts.backend}`);
  }
  const createMs = performance.now() - t0;
  return wrapSession(name, opts.backend, session, graph, cpuNodes, createMs, verbose);
}

function cpuFallbackMessage(name: string, p: Placement): string {
  const list = p.cpuNodes.length ? p.cpuNodes.join(', ') : '(ORT did not list them)';
  return `${name}: ${p.cpuNodes.length || 'some'} node(s) would run on the CPU instead of WebGPU: ${list}`;
}

function outputLocations(outputs: IOInfo[], gpu: SessionOptions['gpuOutputs']): ort.InferenceSession.SessionOptions['preferredOutputLocation'] {
  if (!gpu) return undefined;
  if (gpu === true) return 'gpu-buffer';
  const set = new Set(gpu);
  for (const n of set) if (!outputs.some((o) => o.name === n)) throw new EngineError('internal', `gpuOutputs: the graph has no output "${n}"`);
  return Object.fromEntries(outputs.map((o) => [o.name, set.has(o.name) ? 'gpu-buffer' : 'cpu']));
}

let logLock: Promise<unknown> = Promise.resolve();

/** Creates a session with verbose logging captured (serialised: the log tap is global). */
async function createLogged(model: Uint8Array, options: ort.InferenceSession.SessionOptions): Promise<{ session: OrtSession; placement: Placement }> {
  const run = async () => {
    const lines: string[] = [];
    const off = onOrtLog((line) => {
      lines.push(line);
      return true; // swallow: verbose logs of a big graph are thousands of lines
    });
    try {
      const session = await ort.InferenceSession.create(model, { ...options, logSeverityLevel: 0, logVerbosityLevel: 0 });
      return { session, placement: parsePlacement(lines) };
    } finally {
      off();
    }
  };
  const p = logLock.then(run, run);
  logLock = p.catch(() => undefined);
  return p;
}

/** ORT's verbose/info lines ("2026-11-25 20:45:44.19 [V:onnxruntime:, ...]"). */
const CHATTY = /^\S*\d{4}-\d\d-\d\d \S+ \[[VI]:onnxruntime/;

/**
 * A session created with verbose logging keeps its session logger at that level and would print every
 * kernel launch; its runs ask for warnings only and swallow the verbose/info lines that still come.
 */
async function quietRun(session: OrtSession, feeds: Record<string, OrtTensor>, fetches?: Record<string, OrtTensor | null>): Promise<Record<string, OrtTensor>> {
  const off = onOrtLog((line) => CHATTY.test(line)); // (a colour escape may precede the date)
  try {
    return fetches ? await session.run(feeds, fetches, { logSeverityLevel: 2 }) : await session.run(feeds, { logSeverityLevel: 2 });
  } finally {
    off();
  }
}

function wrapSession(name: string, backend: Backend, session: OrtSession, graph: BuiltGraph, cpuNodes: string[], createMs: number, verbose: boolean): EngineSession {
  const inputs = new Map(graph.inputs.map((i) => [i.name, i]));
  return {
    name, backend, session, cpuNodes, createMs,
    graph: { inputs: graph.inputs, outputs: graph.outputs },
    async run(feeds, opts = {}) {
      for (const [k, t] of Object.entries(feeds)) {
        const info = inputs.get(k);
        if (!info) throw new EngineError('internal', `${name}: the graph has no input "${k}" (inputs: ${[...inputs.keys()].join(', ')})`);
        if (t.dims.length !== info.shape.length || t.dims.some((d, i) => d !== info.shape[i])) {
          throw new EngineError('internal', `${name}: input "${k}" has shape [${t.dims}], the graph expects [${info.shape}]`);
        }
      }
      for (const k of inputs.keys()) if (!(k in feeds)) throw new EngineError('internal', `${name}: missing input "${k}"`);
      let out: Record<string, OrtTensor>;
      try {
        const fetches = opts.fetches;
        if (fetches) for (const k of Object.keys(fetches)) if (!graph.outputs.some((o) => o.name === k)) throw new EngineError('internal', `${name}: the graph has no output "${k}"`);
        out = verbose ? await quietRun(session, feeds, fetches) : fetches ? await session.run(feeds, fetches) : await session.run(feeds);
      } catch (e) {
        throw toEngineError(e, `Running ${name} on ${backend}`);
      }
      if (backend === 'webgpu' && opts.readbacks) {
        for (const [k, t] of Object.entries(out)) if (t.location === 'cpu') opts.readbacks.note(`${name}.${k}`, byteSize(t));
      }
      return out;
    },
    release: () => session.release(),
  };
}

function byteSize(t: OrtTensor): number {
  const bytes: Record<string, number> = { float32: 4, float16: 2, int64: 8, int32: 4, uint8: 1, int8: 1, bool: 1, uint32: 4, float64: 8 };
  return t.size * (bytes[t.type] ?? 4);
}
