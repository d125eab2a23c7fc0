/**
 * GraphBuilder: builds an ONNX model (opset 17 + com.microsoft) whose weights are EXTERNAL data
 * pointing straight into the checkpoint's .safetensors files (no weight is copied or converted).
 *
 * External data and the ~2 GB limits (decision): the browser cannot hold one ArrayBuffer over
 * ~2 GB, and ORT-web copies each `externalData` entry into memory whole. So a graph never names a
 * safetensors file itself as an external `location`; instead the USED tensors of each file are
 * grouped into byte ranges ("parts") of at most `maxPartBytes` (default 1 GiB), cut at tensor
 * boundaries and at unused gaps larger than `maxGapBytes` (so e.g. the VAE encoder weights are never
 * loaded for the decoder). Each part is one location; initializer offsets are relative to the
 * part's start. The session layer passes `{ path: ref.location, data: <bytes/Blob slice [begin, end)> }`
 * for every {@link ExternalRef} (see `externalDataFor` in testing/ and the runtime).
 */
import { encodeModel, type AttrValue, type ElemType, type NodeProto, type TensorProto, type ValueInfo } from './onnx-proto';
import { floatToHalf, numel, type ByteSource, type DType, type SafetensorsFile } from './safetensors';
import type { WeightIndex } from './weights';
import { inferShapes } from './shape-infer';
import { planSegments, type SegmentPlan, type SplitValue } from './graph-split';

export type { AttrValue, ElemType } from './onnx-proto';
import type { FusedOps } from './fused-ops';
export type DataType = ElemType;
export type Compute = 'float32' | 'float16';

export interface Value {
  name: string;
  dtype: DataType;
  /** Static shape when known (inferred for the ops graphs here use). */
  shape?: number[];
}

/**
 * One external-data location of a built graph: a byte range of one safetensors file. A session gets
 * `externalData: refs.map(r => ({ path: r.location, data: r.source.slice?.(r.begin, r.end) ?? await r.source.read(r.begin, r.end - r.begin) }))`.
 */
export interface ExternalRef {
  /** The `location` string used in the model's initializers (pass it as `path` to ORT). */
  location: string;
  /** The safetensors file (its ByteSource) this range is read from. */
  source: ByteSource;
  /** Name of that file (= source.name). */
  file: string;
  /** Absolute byte range [begin, end) in that file. */
  begin: number;
  end: number;
}

export interface IOInfo { name: string; dtype: DataType; shape: number[] }

export interface BuiltGraph {
  /** ONNX ModelProto bytes (small: weights are external). */
  model: Uint8Array<ArrayBuffer>;
  externalData: ExternalRef[];
  inputs: IOInfo[];
  outputs: IOInfo[];
  stats: {
    nodes: number;
    opCounts: Record<string, number>;
    params: number;
    weightBytes: number;
    /** Largest activation (node output with a known shape): compare with the adapter's maxStorageBufferBindingSize. */
    largest: { name: string; shape: number[]; bytes: number };
  };
  /**
   * Cuts the graph into consecutive segments whose weights each take at most `maxWeightBytes` once loaded
   * (at their compute dtype), each a graph of its own (graph-split.ts); `[0]` of `split(Infinity)` is the
   * whole graph's memory estimate. Absent on graphs that were not made by GraphBuilder.
   */
  split?(maxWeightBytes: number): BuiltSegment[];
  /**
   * Nodes ("OpType (name)", as ORT's placement report writes them) that may run on the CPU EP of a WebGPU
   * session; the builder that adds such a node says so (e.g. CLIP's int64 Cast for the EOS ArgMax).
   */
  allowCpu?: RegExp[];
}

/** One segment of a split graph: its plan (memory estimate, boundary values) and its graph. */
export interface BuiltSegment {
  plan: SegmentPlan;
  graph: BuiltGraph;
}

export interface GraphBuilderOptions {
  name: string;
  weights: WeightIndex;
  compute: Compute;
  /** Largest external-data range per location (bytes); default 1 GiB. */
  maxPartBytes?: number;
  /** Unused gap in a file that starts a new location; default 16 MiB. */
  maxGapBytes?: number;
  /** onnxruntime fused kernels the composite ops may use (fused-ops.ts); default none. */
  fused?: FusedOps;
}

const STORED_TO_ELEM: Partial<Record<DType, DataType>> = {
  F32: 'float32', F16: 'float16', BF16: 'bfloat16', F64: 'float64', I64: 'int64', I32: 'int32', I16: 'int16',
  I8: 'int8', U8: 'uint8', U16: 'uint16', U32: 'uint32', U64: 'uint64', BOOL: 'bool',
};
const FLOAT_TYPES = new Set<DataType>(['float32', 'float16', 'bfloat16', 'float64']);

export class GraphError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GraphError';
  }
}

interface UsedWeight { key: string; file: SafetensorsFile; begin: number; end: number; tensor: TensorProto; numel: number }

export class GraphBuilder {
  readonly name: string;
  readonly weights: WeightIndex;
  readonly compute: Compute;
  /** Fused kernels allowed (GraphBuilderOptions.fused). */
  readonly fused: FusedOps;
  private readonly opts: GraphBuilderOptions;
  private nodes: NodeProto[] = [];
  private inits: TensorProto[] = [];
  private used = new Map<string, UsedWeight>();
  private weightValues = new Map<string, Value>();
  private consts = new Map<string, number[]>();
  private constCache = new Map<string, Value>();
  private largest: { name: string; shape: number[]; bytes: number } = { name: '', shape: [], bytes: 0 };
  private ins: IOInfo[] = [];
  private outs: IOInfo[] = [];
  /** Every input and node output with a known shape (for segment boundaries and memory estimates). */
  private values = new Map<string, IOInfo>();
  private scopes: string[] = [];
  private counter = 0;
  private names = new Set<string>();

  constructor(opts: GraphBuilderOptions) {
    this.opts = opts;
    this.name = opts.name;
    this.weights = opts.weights;
    this.compute = opts.compute;
    this.fused = opts.fused ?? {};
  }

  /** Bytes per element of the compute dtype. */
  get computeBytes(): number {
    return this.compute === 'float16' ? 2 : 4;
  }

  input(name: string, dtype: DataType, dims: number[]): Value {
    this.claim(name);
    this.ins.push({ name, dtype, shape: dims });
    this.values.set(name, { name, dtype, shape: [...dims] });
    return { name, dtype, shape: [...dims] };
  }

  /** Declares a graph output named `name`, cast to `dtype` (default float32) when it differs. */
  output(v: Value, name: string, dtype: DataType = FLOAT_TYPES.has(v.dtype) ? 'float32' : v.dtype): void {
    this.claim(name);
    const opType = v.dtype === dtype ? 'Identity' : 'Cast';
    this.nodes.push({
      name: `output/${name}`, opType, inputs: [v.name], outputs: [name],
      attrs: opType === 'Cast' ? { to: ONNX_TYPE_NUM[dtype] } : {},
    });
    if (!v.shape) throw new GraphError(`output ${name}: shape unknown`);
    this.outs.push({ name, dtype, shape: v.shape });
    this.values.set(name, { name, dtype, shape: v.shape.slice() });
  }

  /**
   * A checkpoint tensor as an external initializer. Checks the shape when `expectShape` is given and
   * casts float tensors to `opts.dtype` (default: the compute dtype) when the stored dtype differs.
   */
  weight(key: string, expectShape?: number[], opts: { dtype?: DataType | 'stored' } = {}): Value {
    const stored = this.rawWeight(key, expectShape);
    const want = opts.dtype === 'stored' ? stored.dtype : opts.dtype ?? (FLOAT_TYPES.has(stored.dtype) ? this.compute : stored.dtype);
    if (want === stored.dtype) return stored;
    const ck = `${key}#${want}`;
    let v = this.weightValues.get(ck);
    if (!v) {
      v = { name: `${key}::${want}`, dtype: want, shape: stored.shape };
      this.claim(v.name);
      this.nodes.push({ name: `${key}::cast`, opType: 'Cast', inputs: [stored.name], outputs: [v.name], attrs: { to: ONNX_TYPE_NUM[want] } });
      this.values.set(v.name, { name: v.name, dtype: want, shape: stored.shape! });
      this.weightValues.set(ck, v);
    }
    return v;
  }

  /** True when the checkpoint has this tensor. */
  hasWeight(key: string): boolean {
    return this.weights.has(key);
  }

  /** Shape of a checkpoint tensor (or undefined when absent). */
  weightShape(key: string): number[] | undefined {
    return this.weights.get(key)?.info.shape.slice();
  }

  private rawWeight(key: string, expectShape?: number[]): Value {
    const entry = this.weights.get(key);
    if (!entry) {
      throw new GraphError(`${this.weights.describe()}: missing tensor "${key}"${expectShape ? ` (expected shape [${expectShape}])` : ''}`);
    }
    const { info, file } = entry;
    if (expectShape && (info.shape.length !== expectShape.length || info.shape.some((d, i) => d !== expectShape[i]))) {
      throw new GraphError(`${file.source.name}: tensor "${key}" has shape [${info.shape}], expected [${expectShape}]`);
    }
    const dtype = STORED_TO_ELEM[info.dtype];
    if (!dtype) throw new GraphError(`${file.source.name}: tensor "${key}" has dtype ${info.dtype}, which ONNX initializers cannot hold (expected F32, F16 or BF16)`);
    const cached = this.weightValues.get(key);
    if (cached) return cached;
    this.claim(key);
    const tensor: TensorProto = { name: key, dataType: dtype, dims: info.shape };
    this.inits.push(tensor);
    this.used.set(key, { key, file, begin: info.begin, end: info.end, tensor, numel: numel(info.shape) });
    const v: Value = { name: key, dtype, shape: info.shape.slice() };
    this.weightValues.set(key, v);
    return v;
  }

  /** Inline float32 constant. */
  constF32(values: ArrayLike<number>, dims: number[]): Value {
    return this.constFloat(values, dims, 'float32');
  }

  /** Inline float constant in the compute dtype (or `dtype`). */
  constFloat(values: ArrayLike<number>, dims: number[], dtype: DataType = this.compute): Value {
    if (values.length !== numel(dims)) throw new GraphError(`constant of shape [${dims}] needs ${numel(dims)} values, got ${values.length}`);
    let raw: Uint8Array;
    if (dtype === 'float32') raw = new Uint8Array(Float32Array.from(values).buffer);
    else if (dtype === 'float16') raw = new Uint8Array(Uint16Array.from(values, floatToHalf).buffer);
    else throw new GraphError(`constFloat: unsupported dtype ${dtype}`);
    return this.addConst(dtype, dims, raw);
  }

  /** A scalar (shape []) in the compute dtype. */
  scalar(v: number): Value {
    return this.constFloat([v], []);
  }

  /** Inline int64 constant; its values are remembered for shape inference (Reshape, Slice...). */
  constI64(values: number[], dims: number[] = [values.length]): Value {
    const raw = new Uint8Array(BigInt64Array.from(values.map(BigInt)).buffer);
    const v = this.addConst('int64', dims, raw);
    this.consts.set(v.name, values.slice());
    return v;
  }

  /** Known int64 constant values of a Value (undefined if it is not a constI64). */
  constValues(v: { name: string } | ''): number[] | undefined {
    return v === '' ? undefined : this.consts.get(v.name);
  }

  private addConst(dtype: DataType, dims: number[], raw: Uint8Array): Value {
    // small constants (scalars, shapes, axes) are shared across the graph
    const key = raw.length <= 64 ? `${dtype}[${dims}]${Array.from(raw).join(',')}` : undefined;
    const hit = key && this.constCache.get(key);
    if (hit) return { ...hit, shape: hit.shape!.slice() };
    const name = this.fresh(`${this.scopePath() || 'const'}/const`);
    this.inits.push({ name, dataType: dtype, dims, raw });
    const v: Value = { name, dtype, shape: dims.slice() };
    if (key) this.constCache.set(key, v);
    return { ...v, shape: dims.slice() };
  }

  /** Adds a node; returns its outputs (shapes inferred for common ops). */
  op(
    type: string,
    inputs: (Value | '')[],
    attrs: Record<string, AttrValue> = {},
    opts: { outputs?: number; domain?: string; name?: string; dtype?: DataType; /** optional outputs left out (named '') */ omit?: number[] } = {},
  ): Value[] {
    const nodeName = this.fresh(`${this.scopePath() || 'graph'}/${opts.name ?? type}`);
    const n = opts.outputs ?? 1;
    const outNames = Array.from({ length: n }, (_, i) => (opts.omit?.includes(i) ? '' : n === 1 ? nodeName : `${nodeName}:${i}`));
    for (const o of outNames) if (o) this.names.add(o);
    this.nodes.push({
      name: nodeName, opType: type, domain: opts.domain, attrs,
      inputs: inputs.map((v) => (v === '' ? '' : v.name)), outputs: outNames,
    });
    const first = inputs.find((v): v is Value => v !== '');
    let dtype = opts.dtype ?? first?.dtype ?? this.compute;
    if (type === 'Cast') dtype = ONNX_NUM_TYPE[attrs.to as number];
    else if (['Equal', 'Less', 'Greater', 'LessOrEqual', 'GreaterOrEqual', 'Not', 'And', 'Or'].includes(type)) dtype = 'bool';
    else if (['ArgMax', 'ArgMin', 'Shape'].includes(type)) dtype = 'int64';
    else if (type === 'Where') dtype = (inputs[1] as Value).dtype;
    let shapes: (number[] | undefined)[] = [];
    try {
      shapes = inferShapes(type, inputs, attrs, n, (v) => this.constValues(v));
    } catch (e) {
      throw new GraphError(`${nodeName} (${type}): ${(e as Error).message}`);
    }
    shapes.forEach((sh, i) => {
      if (!outNames[i]) return;
      if (sh) this.values.set(outNames[i], { name: outNames[i], dtype, shape: sh.slice() });
      const bytes = sh ? sh.reduce((a, b) => a * b, 1) * dataTypeBytes(dtype) : 0;
      if (sh && bytes > this.largest.bytes) this.largest = { name: outNames[i], shape: sh.slice(), bytes };
    });
    return outNames.map((name, i) => ({ name, dtype, shape: shapes[i] }));
  }

  /** Single-output op. */
  op1(type: string, inputs: (Value | '')[], attrs: Record<string, AttrValue> = {}, opts: { domain?: string; name?: string; dtype?: DataType } = {}): Value {
    return this.op(type, inputs, attrs, opts)[0];
  }

  /** Cast to `dtype` when needed. */
  cast(v: Value, dtype: DataType): Value {
    return v.dtype === dtype ? v : this.op1('Cast', [v], { to: ONNX_TYPE_NUM[dtype] });
  }

  /** Cast a float value to the compute dtype. */
  toCompute(v: Value): Value {
    return this.cast(v, this.compute);
  }

  /**
   * Runs `fn` with `prefix` appended to the node-name scope (diffusers module path). A prefix that
   * already starts with the current scope path (composite ops get full key prefixes) replaces it.
   */
  scope<T>(prefix: string, fn: () => T): T {
    const cur = this.scopePath();
    this.scopes.push(!cur || prefix === cur || prefix.startsWith(`${cur}.`) ? prefix : `${cur}.${prefix}`);
    try {
      return fn();
    } finally {
      this.scopes.pop();
    }
  }

  private scopePath(): string {
    return this.scopes[this.scopes.length - 1] ?? '';
  }

  private claim(name: string) {
    if (this.names.has(name)) throw new GraphError(`duplicate value name "${name}"`);
    this.names.add(name);
  }

  private fresh(base: string): string {
    let name = base;
    while (this.names.has(name)) name = `${base}_${++this.counter}`;
    this.names.add(name);
    return name;
  }

  /** Serializes the model and lays out its external data (see the file comment). */
  build(): BuiltGraph {
    const graph = this.emit(this.name, this.nodes, this.ins, this.outs);
    graph.split = (maxWeightBytes) => this.split(maxWeightBytes);
    return graph;
  }

  /** Heap bytes of each initializer once a session holds it: external weights at the dtype they are cast to. */
  private initializerBytes(): Map<string, number> {
    const out = new Map<string, number>();
    for (const t of this.inits) out.set(t.name, t.raw ? t.raw.length : 0);
    for (const u of this.used.values()) out.set(u.key, u.end - u.begin);
    for (const [ck, v] of this.weightValues) {
      const hash = ck.indexOf('#');
      if (hash < 0) continue;
      const u = this.used.get(ck.slice(0, hash));
      if (u) out.set(u.key, Math.max(out.get(u.key) ?? 0, u.numel * dataTypeBytes(v.dtype)));
    }
    return out;
  }

  private split(maxWeightBytes: number): BuiltSegment[] {
    const values = new Map<string, SplitValue>();
    for (const [name, v] of this.values) values.set(name, { dtype: v.dtype, shape: v.shape, bytes: numel(v.shape) * dataTypeBytes(v.dtype) });
    const plans = planSegments(
      { nodes: this.nodes, initBytes: this.initializerBytes(), values, graphInputs: this.ins.map((i) => i.name), graphOutputs: this.outs.map((o) => o.name) },
      maxWeightBytes,
    );
    const io = (name: string): IOInfo => {
      const v = this.values.get(name);
      if (!v) throw new GraphError(`${this.name}: cannot split at "${name}": its shape is unknown`);
      return { name, dtype: v.dtype, shape: v.shape.slice() };
    };
    return plans.map((plan, k) => ({
      plan,
      graph: this.emit(`${this.name}.part${k + 1}of${plans.length}`, plan.nodes.map((i) => this.nodes[i]!), plan.inputs.map(io), plan.outputs.map(io)),
    }));
  }

  /** One ModelProto over `nodes` with the initializers they read; external weights laid out in parts. */
  private emit(graphName: string, nodes: NodeProto[], ins: IOInfo[], outs: IOInfo[]): BuiltGraph {
    const maxPart = this.opts.maxPartBytes ?? 2 ** 30;
    const maxGap = this.opts.maxGapBytes ?? 16 * 2 ** 20;
    const read = new Set(nodes.flatMap((n) => n.inputs));
    const inits = new Map<string, TensorProto>();
    for (const t of this.inits) if (read.has(t.name)) inits.set(t.name, { ...t });
    const externalData: ExternalRef[] = [];
    const byFile = new Map<SafetensorsFile, UsedWeight[]>();
    for (const u of this.used.values()) {
      if (!inits.has(u.key)) continue;
      const list = byFile.get(u.file) ?? [];
      list.push(u);
      byFile.set(u.file, list);
    }
    let fileIdx = 0;
    let params = 0;
    let weightBytes = 0;
    for (const [file, list] of byFile) {
      list.sort((a, b) => a.begin - b.begin);
      const base = file.source.name.replace(/[^A-Za-z0-9._-]/g, '_');
      let part: ExternalRef | undefined;
      for (const u of list) {
        params += u.numel;
        weightBytes += u.end - u.begin;
        if (u.end - u.begin > maxPart) {
          throw new GraphError(`${file.source.name}: tensor "${u.key}" (${u.end - u.begin} bytes) is larger than the external-data part limit ${maxPart}`);
        }
        if (!part || u.end - part.begin > maxPart || u.begin - part.end > maxGap) {
          part = { location: `w${fileIdx}_${externalData.length}_${base}`, source: file.source, file: file.source.name, begin: u.begin, end: u.end };
          externalData.push(part);
        }
        part.end = Math.max(part.end, u.end);
        inits.get(u.key)!.external = { location: part.location, offset: u.begin - part.begin, length: u.end - u.begin };
      }
      fileIdx++;
    }
    const opCounts: Record<string, number> = {};
    let largest = { name: '', shape: [] as number[], bytes: 0 };
    for (const n of nodes) {
      opCounts[n.opType] = (opCounts[n.opType] ?? 0) + 1;
      for (const o of n.outputs) {
        const v = this.values.get(o);
        const bytes = v ? numel(v.shape) * dataTypeBytes(v.dtype) : 0;
        if (v && bytes > largest.bytes) largest = { name: o, shape: v.shape.slice(), bytes };
      }
    }
    if (nodes === this.nodes) largest = { ...this.largest, shape: this.largest.shape.slice() };
    const toVI = (x: IOInfo): ValueInfo => ({ name: x.name, elemType: x.dtype, dims: x.shape });
    const model = encodeModel({
      graphName,
      nodes,
      initializers: [...inits.values()],
      inputs: ins.map(toVI),
      outputs: outs.map(toVI),
      opsets: [{ domain: '', version: 17 }, { domain: 'com.microsoft', version: 1 }],
    });
    return {
      model, externalData, inputs: ins.slice(), outputs: outs.slice(),
      stats: { nodes: nodes.length, opCounts, params, weightBytes, largest },
    };
  }
}

export const ONNX_TYPE_NUM: Record<DataType, number> = {
  float32: 1, uint8: 2, int8: 3, uint16: 4, int16: 5, int32: 6, int64: 7, bool: 9, float16: 10,
  float64: 11, uint32: 12, uint64: 13, bfloat16: 16,
};
const ONNX_NUM_TYPE = Object.fromEntries(Object.entries(ONNX_TYPE_NUM).map(([k, v]) => [v, k])) as Record<number, DataType>;

/** Bytes per element of a DataType. */
export function dataTypeBytes(t: DataType): number {
  return { float32: 4, uint8: 1, int8: 1, uint16: 2, int16: 2, int32: 4, int64: 8, bool: 1, float16: 2, float64: 8, uint32: 4, uint64: 8, bfloat16: 2 }[t];
}
