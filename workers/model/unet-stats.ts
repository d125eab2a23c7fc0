/**
 * A GraphBuilder that also records what the built graph will compute: analytic FLOPs of the
 * MatMul/Gemm/Conv nodes (2 FLOP per multiply-add, from the static shapes), the largest tensor any
 * node produces (WebGPU binds every tensor whole, so it must fit maxStorageBufferBindingSize), the
 * attention-score MatMuls, and which checkpoint tensors were used.
 */
import { GraphBuilder, dataTypeBytes, type AttrValue, type DataType, type Value } from './graph';

export interface TensorRecord {
  name: string;
  op: string;
  shape: number[];
  bytes: number;
}

export interface GraphReport {
  /** 2 x multiply-adds of MatMul, Gemm and Conv (elementwise ops, norms and softmax are not counted) */
  flops: number;
  flopsByOp: Record<string, number>;
  /** the largest tensor produced by any node */
  largest: TensorRecord;
  /** outputs of MatMul nodes inside attention (scores [B, heads, Tq, Tk] and probs x V [B, heads, Tq, D]) */
  attentionMatMuls: TensorRecord[];
  /** the Softmax inputs: attention scores [B, heads, Tq(chunk), Tk] */
  attentionScores: TensorRecord[];
  /** checkpoint tensors the graph reads */
  usedWeights: Set<string>;
}

const prod = (s: number[]) => s.reduce((a, b) => a * b, 1);

export class RecordingGraphBuilder extends GraphBuilder {
  readonly report: GraphReport = {
    flops: 0,
    flopsByOp: {},
    largest: { name: '', op: '', shape: [], bytes: 0 },
    attentionMatMuls: [],
    attentionScores: [],
    usedWeights: new Set(),
  };

  override weight(key: string, expectShape?: number[], opts: { dtype?: DataType | 'stored' } = {}): Value {
    const v = super.weight(key, expectShape, opts);
    this.report.usedWeights.add(key);
    return v;
  }

  override op(type: string, inputs: (Value | '')[], attrs: Record<string, AttrValue> = {}, opts: { outputs?: number; domain?: string; name?: string; dtype?: DataType } = {}): Value[] {
    const outs = super.op(type, inputs, attrs, opts);
    const r = this.report;
    for (const o of outs) {
      if (!o.shape) continue;
      const bytes = prod(o.shape) * dataTypeBytes(o.dtype);
      if (bytes > r.largest.bytes) r.largest = { name: o.name, op: type, shape: o.shape, bytes };
    }
    const out = outs[0].shape;
    const a = inputs[0] !== '' ? inputs[0].shape : undefined;
    const w = inputs[1] !== '' && inputs[1] ? inputs[1].shape : undefined;
    let macs = 0;
    if (out && a && w) {
      if (type === 'MatMul') macs = prod(out) * a[a.length - 1];
      else if (type === 'Gemm') macs = prod(out) * (attrs.transA ? a[0] : a[1]);
      else if (type === 'Conv') macs = prod(out) * prod(w.slice(1));
      // fused attention (q [B, Tq, C], k [B, Tk, C]): q·kᵀ and probs·v, B·Tq·Tk·C multiply-adds each
      else if (type === 'MultiHeadAttention') macs = 2 * prod(out.slice(0, 2)) * w[1]! * a[2]!;
    }
    if (macs) {
      r.flops += 2 * macs;
      r.flopsByOp[type] = (r.flopsByOp[type] ?? 0) + 2 * macs;
    }
    if (type === 'MatMul' && out && /(^|[./])attn/.test(outs[0].name)) {
      r.attentionMatMuls.push({ name: outs[0].name, op: type, shape: out, bytes: prod(out) * dataTypeBytes(outs[0].dtype) });
    }
    const x = inputs[0];
    if (type === 'Softmax' && x !== '' && x.shape) {
      r.attentionScores.push({ name: x.name, op: 'MatMul', shape: x.shape, bytes: prod(x.shape) * dataTypeBytes(x.dtype) });
    }
    return outs;
  }
}
