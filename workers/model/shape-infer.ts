/**
 * Static shape inference for the ONNX ops our graphs use, so composite ops can compute Reshape
 * targets and the builder catches shape bugs at build time. Unknown ops (or unknown input shapes)
 * give `undefined` shapes; inconsistent shapes throw.
 */
import type { AttrValue } from './onnx-proto';

interface V { name: string; shape?: number[] }
type Consts = (v: V | '') => number[] | undefined;

const UNARY = new Set([
  'Identity', 'Cast', 'Sigmoid', 'Tanh', 'Relu', 'Erf', 'Exp', 'Log', 'Sqrt', 'Neg', 'Abs', 'Reciprocal', 'Softmax',
  'InstanceNormalization', 'LayerNormalization', 'Gelu', 'FastGelu', 'QuickGelu', 'BiasGelu', 'Not', 'Sin', 'Cos',
  'Floor', 'Ceil', 'Round', 'Clip', 'LeakyRelu', 'Elu', 'Softplus', 'HardSigmoid',
]);
const BROADCAST = new Set(['Add', 'Sub', 'Mul', 'Div', 'Pow', 'Equal', 'Less', 'Greater', 'LessOrEqual', 'GreaterOrEqual', 'Where', 'Max', 'Min', 'And', 'Or']);

export function broadcast(shapes: number[][]): number[] {
  const rank = Math.max(...shapes.map((s) => s.length));
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    let d = 1;
    for (const s of shapes) {
      const x = s[s.length - rank + i] ?? 1;
      if (x === 1) continue;
      if (d !== 1 && d !== x) throw new Error(`cannot broadcast shapes ${shapes.map((s) => `[${s}]`).join(' and ')}`);
      d = x;
    }
    out.push(d);
  }
  return out;
}

const norm = (axis: number, rank: number) => (axis < 0 ? axis + rank : axis);

export function inferShapes(type: string, inputs: (V | '')[], attrs: Record<string, AttrValue>, nOut: number, consts: Consts): (number[] | undefined)[] {
  const s = inputs.map((v) => (v === '' ? undefined : v.shape));
  const a = (k: string) => attrs[k] as number | undefined;
  const x = s[0];
  if (UNARY.has(type)) return [x ? x.slice() : undefined, ...Array(nOut - 1).fill(undefined)];
  if (BROADCAST.has(type)) {
    const known = s.filter((v): v is number[] => !!v);
    return [known.length === s.length ? broadcast(known) : undefined];
  }
  if (!x) return Array(nOut).fill(undefined);
  switch (type) {
    case 'MatMul': {
      const y = s[1];
      if (!y) return [undefined];
      const xs = x.length === 1 ? [1, x[0]] : x;
      const ys = y.length === 1 ? [y[0], 1] : y;
      const k1 = xs[xs.length - 1], k2 = ys[ys.length - 2];
      if (k1 !== k2) throw new Error(`MatMul inner dimensions differ: [${x}] x [${y}]`);
      const batch = broadcast([xs.slice(0, -2), ys.slice(0, -2)]);
      const out = [...batch, xs[xs.length - 2], ys[ys.length - 1]];
      if (x.length === 1) out.splice(out.length - 2, 1);
      if (y.length === 1) out.pop();
      return [out];
    }
    case 'MultiHeadAttention': { // com.microsoft, unpacked q [B, Sq, C], k/v [B, Sk, C]: output [B, Sq, Cv]
      const v = s[2];
      return [v ? [x[0]!, x[1]!, v[2]!] : undefined, ...Array(nOut - 1).fill(undefined)];
    }
    case 'SkipLayerNormalization': // com.microsoft: output, mean, inv_std_var, input + skip (+ bias)
      return [x.slice(), undefined, undefined, x.slice()].slice(0, nOut);
    case 'BiasSplitGelu': // com.microsoft: (x + bias) split in two along the last axis, left · gelu(right)
      return [[...x.slice(0, -1), x[x.length - 1] / 2]];
    case 'Gemm': {
      const y = s[1];
      if (!y) return [undefined];
      const [m, k1] = a('transA') ? [x[1], x[0]] : x;
      const [k2, n] = a('transB') ? [y[1], y[0]] : y;
      if (k1 !== k2) throw new Error(`Gemm inner dimensions differ: [${x}] x [${y}] (transB=${a('transB') ?? 0})`);
      return [[m, n]];
    }
    case 'Conv': {
      const w = s[1];
      if (!w) return [undefined];
      const sp = x.length - 2;
      const k = (attrs.kernel_shape as number[]) ?? w.slice(2);
      const st = (attrs.strides as number[]) ?? Array(sp).fill(1);
      const dl = (attrs.dilations as number[]) ?? Array(sp).fill(1);
      const pads = (attrs.pads as number[]) ?? Array(2 * sp).fill(0);
      const group = a('group') ?? 1;
      if (x[1] !== w[1] * group) throw new Error(`Conv input has ${x[1]} channels, weight [${w}] expects ${w[1] * group}`);
      const out = [x[0], w[0]];
      for (let i = 0; i < sp; i++) out.push(Math.floor((x[2 + i] + pads[i] + pads[i + sp] - dl[i] * (k[i] - 1) - 1) / st[i]) + 1);
      return [out];
    }
    case 'Reshape': {
      const t = consts(inputs[1]);
      if (!t) return [undefined];
      const total = x.reduce((p, q) => p * q, 1);
      const out = t.map((d, i) => (d === 0 && !a('allowzero') ? x[i] : d));
      const neg = out.indexOf(-1);
      if (neg >= 0) out[neg] = total / out.reduce((p, q, i) => (i === neg ? p : p * q), 1);
      if (out.reduce((p, q) => p * q, 1) !== total || !out.every(Number.isInteger)) throw new Error(`cannot reshape [${x}] to [${t}]`);
      return [out];
    }
    case 'Transpose': {
      const perm = (attrs.perm as number[]) ?? x.map((_, i) => x.length - 1 - i);
      return [perm.map((p) => x[p])];
    }
    case 'Concat': {
      const ax = norm(a('axis')!, x.length);
      if (s.some((v) => !v)) return [undefined];
      const out = x.slice();
      out[ax] = 0;
      for (const v of s as number[][]) {
        if (v.length !== x.length || v.some((d, i) => i !== ax && d !== x[i])) throw new Error(`Concat on axis ${ax} of mismatched shapes [${x}] and [${v}]`);
        out[ax] += v[ax];
      }
      return [out];
    }
    case 'Split': {
      const ax = norm(a('axis') ?? 0, x.length);
      const sizes = consts(inputs[1]) ?? Array(nOut).fill(x[ax] / nOut);
      if (sizes.length !== nOut || sizes.reduce((p, q) => p + q, 0) !== x[ax] || !sizes.every(Number.isInteger)) {
        throw new Error(`cannot split axis ${ax} of [${x}] into ${nOut} parts [${sizes}]`);
      }
      return sizes.map((d) => x.map((e, i) => (i === ax ? d : e)));
    }
    case 'Slice': {
      const starts = consts(inputs[1]), ends = consts(inputs[2]);
      const axes = inputs[3] ? consts(inputs[3]) : starts?.map((_, i) => i);
      const steps = inputs[4] ? consts(inputs[4]) : starts?.map(() => 1);
      if (!starts || !ends || !axes || !steps) return [undefined];
      const out = x.slice();
      axes.forEach((axRaw, i) => {
        const ax = norm(axRaw, x.length);
        const dim = x[ax];
        if (steps[i] !== 1) throw new Error('Slice inference supports step 1 only');
        const clamp = (v: number) => Math.min(Math.max(v < 0 ? v + dim : v, 0), dim);
        out[ax] = Math.max(0, clamp(ends[i]) - clamp(starts[i]));
      });
      return [out];
    }
    case 'Gather': {
      const idx = s[1];
      if (!idx) return [undefined];
      const ax = norm(a('axis') ?? 0, x.length);
      return [[...x.slice(0, ax), ...idx, ...x.slice(ax + 1)]];
    }
    case 'Resize': {
      const sizes = consts(inputs[3] ?? '');
      if (sizes) return [sizes.slice()];
      return [undefined];
    }
    case 'ArgMax': case 'ArgMin': case 'ReduceMean': case 'ReduceSum': case 'ReduceMax': {
      const axes = (attrs.axes as number[] | undefined) ?? (a('axis') !== undefined ? [a('axis')!] : consts(inputs[1] ?? '') ?? x.map((_, i) => i));
      const keep = a('keepdims') ?? 1;
      const ax = axes.map((v) => norm(v, x.length));
      return [keep ? x.map((d, i) => (ax.includes(i) ? 1 : d)) : x.filter((_, i) => !ax.includes(i))];
    }
    case 'Unsqueeze': {
      const axes = consts(inputs[1]);
      if (!axes) return [undefined];
      const r = x.length + axes.length;
      const ax = axes.map((v) => norm(v, r));
      const out: number[] = [];
      let j = 0;
      for (let i = 0; i < r; i++) out.push(ax.includes(i) ? 1 : x[j++]);
      return [out];
    }
    case 'Squeeze': {
      const axes = consts(inputs[1] ?? '') ?? x.map((d, i) => (d === 1 ? i : -1)).filter((i) => i >= 0);
      const ax = axes.map((v) => norm(v, x.length));
      return [x.filter((_, i) => !ax.includes(i))];
    }
    case 'Expand': {
      const t = consts(inputs[1]);
      return [t ? broadcast([x, t]) : undefined];
    }
    case 'Flatten': {
      const ax = norm(a('axis') ?? 1, x.length);
      const p = (l: number[]) => l.reduce((u, v) => u * v, 1);
      return [[p(x.slice(0, ax)), p(x.slice(ax))]];
    }
    case 'Shape':
      return [[x.length]];
    default:
      return Array(nOut).fill(undefined);
  }
}
