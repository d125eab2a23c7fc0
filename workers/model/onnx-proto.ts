/**
 * Minimal protobuf ENCODER for the parts of onnx.proto the graph builder writes
 * (ModelProto, GraphProto, NodeProto, AttributeProto, TensorProto, ValueInfoProto).
 * Field numbers follow onnx/onnx.proto (IR version 8). Hand-written: ~150 lines instead of a
 * protobufjs runtime plus generated code.
 */

/** onnx TensorProto.DataType values. */
export const OnnxDataType = {
  float32: 1, uint8: 2, int8: 3, uint16: 4, int16: 5, int32: 6, int64: 7, bool: 9, float16: 10,
  float64: 11, uint32: 12, uint64: 13, bfloat16: 16,
} as const;
export type ElemType = keyof typeof OnnxDataType;

class Writer {
  private buf = new Uint8Array(256);
  private len = 0;
  private ensure(n: number) {
    if (this.len + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.len + n) cap *= 2;
    const nb = new Uint8Array(cap);
    nb.set(this.buf.subarray(0, this.len));
    this.buf = nb;
  }
  varint(v: number | bigint) {
    let x = BigInt.asUintN(64, BigInt(v));
    if (typeof v === 'number' && v >= 0 && v < 2 ** 31) {
      // fast path
      let n = v;
      this.ensure(5);
      while (n > 0x7f) { this.buf[this.len++] = (n & 0x7f) | 0x80; n >>>= 7; }
      this.buf[this.len++] = n;
      return;
    }
    this.ensure(10);
    while (x > 0x7fn) { this.buf[this.len++] = Number(x & 0x7fn) | 0x80; x >>= 7n; }
    this.buf[this.len++] = Number(x);
  }
  tag(field: number, wire: number) { this.varint((field << 3) | wire); }
  bytes(field: number, b: Uint8Array) {
    this.tag(field, 2);
    this.varint(b.length);
    this.ensure(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
  }
  string(field: number, s: string) { this.bytes(field, new TextEncoder().encode(s)); }
  int(field: number, v: number | bigint) { this.tag(field, 0); this.varint(v); }
  float(field: number, v: number) {
    this.tag(field, 5);
    this.ensure(4);
    new DataView(this.buf.buffer, this.buf.byteOffset + this.len, 4).setFloat32(0, v, true);
    this.len += 4;
  }
  packedInts(field: number, vs: readonly (number | bigint)[]) {
    const w = new Writer();
    for (const v of vs) w.varint(v);
    this.bytes(field, w.finish());
  }
  packedFloats(field: number, vs: readonly number[]) {
    const b = new Uint8Array(vs.length * 4);
    const dv = new DataView(b.buffer);
    vs.forEach((v, i) => dv.setFloat32(i * 4, v, true));
    this.bytes(field, b);
  }
  message(field: number, fn: (w: Writer) => void) {
    const w = new Writer();
    fn(w);
    this.bytes(field, w.finish());
  }
  finish(): Uint8Array<ArrayBuffer> { return this.buf.slice(0, this.len); }
}

export type AttrValue = number | string | number[] | string[] | { floats: number[] } | { float: number } | TensorProto;

export interface TensorProto {
  name: string;
  dataType: ElemType;
  dims: number[];
  raw?: Uint8Array;
  external?: { location: string; offset: number; length: number };
}

export interface NodeProto {
  name: string;
  opType: string;
  domain?: string;
  inputs: string[];
  outputs: string[];
  attrs: Record<string, AttrValue>;
}

export interface ValueInfo { name: string; elemType: ElemType; dims?: (number | string)[] }

export interface ModelProto {
  graphName: string;
  nodes: NodeProto[];
  initializers: TensorProto[];
  inputs: ValueInfo[];
  outputs: ValueInfo[];
  opsets: { domain: string; version: number }[];
  producer?: string;
  docString?: string;
}

function writeTensor(w: Writer, t: TensorProto) {
  if (t.dims.length) w.packedInts(1, t.dims);
  w.int(2, OnnxDataType[t.dataType]);
  w.string(8, t.name);
  if (t.raw) w.bytes(9, t.raw);
  if (t.external) {
    const kv: [string, string][] = [['location', t.external.location], ['offset', String(t.external.offset)], ['length', String(t.external.length)]];
    for (const [k, v] of kv) w.message(13, (e) => { e.string(1, k); e.string(2, v); });
    w.int(14, 1); // data_location = EXTERNAL
  }
}

function isTensor(v: AttrValue): v is TensorProto {
  return typeof v === 'object' && !Array.isArray(v) && 'dataType' in v;
}

function writeAttr(w: Writer, name: string, v: AttrValue) {
  w.string(1, name);
  if (typeof v === 'number') {
    if (!Number.isInteger(v)) throw new Error(`attribute ${name}=${v}: use { float: v } for float attributes`);
    w.int(3, v); w.int(20, 2);
  } else if (typeof v === 'string') {
    w.string(4, v); w.int(20, 3);
  } else if (Array.isArray(v)) {
    if (v.every((x) => typeof x === 'number')) { w.packedInts(8, v as number[]); w.int(20, 7); }
    else { for (const s of v as string[]) w.string(9, s); w.int(20, 8); }
  } else if (isTensor(v)) {
    w.message(5, (t) => writeTensor(t, v)); w.int(20, 4);
  } else if ('float' in v) {
    w.float(2, v.float); w.int(20, 1);
  } else {
    w.packedFloats(7, v.floats); w.int(20, 6);
  }
}

function writeValueInfo(w: Writer, v: ValueInfo) {
  w.string(1, v.name);
  w.message(2, (tp) => tp.message(1, (tt) => {
    tt.int(1, OnnxDataType[v.elemType]);
    if (v.dims) tt.message(2, (sh) => { for (const d of v.dims!) sh.message(1, (dim) => (typeof d === 'number' ? dim.int(1, d) : dim.string(2, d))); });
  }));
}

/** Serializes a ModelProto (IR version 8). */
export function encodeModel(m: ModelProto): Uint8Array<ArrayBuffer> {
  const w = new Writer();
  w.int(1, 8); // ir_version
  w.string(2, m.producer ?? 'koala-web');
  w.message(7, (g) => {
    for (const n of m.nodes) {
      g.message(1, (nw) => {
        for (const i of n.inputs) nw.string(1, i);
        for (const o of n.outputs) nw.string(2, o);
        nw.string(3, n.name);
        nw.string(4, n.opType);
        for (const [k, v] of Object.entries(n.attrs)) nw.message(5, (aw) => writeAttr(aw, k, v));
        if (n.domain) nw.string(7, n.domain);
      });
    }
    g.string(2, m.graphName);
    for (const t of m.initializers) g.message(5, (tw) => writeTensor(tw, t));
    if (m.docString) g.string(10, m.docString);
    for (const v of m.inputs) g.message(11, (vw) => writeValueInfo(vw, v));
    for (const v of m.outputs) g.message(12, (vw) => writeValueInfo(vw, v));
  });
  for (const o of m.opsets) w.message(8, (ow) => { if (o.domain) ow.string(1, o.domain); ow.int(2, o.version); });
  return w.finish();
}
