/**
 * Row-band activations for exact decoding at large sizes: a [B, C, H, W] tensor held as a list of
 * tensors split along H, so no single tensor exceeds the adapter's storage-binding limit (the SDXL
 * VAE at 1024² has 1 GiB fp32 tensors). Every op here gives exactly the unsplit result:
 * 3x3 convs read one halo row from each neighbour band, GroupNorm combines per-band sums (two
 * passes: mean, then centred squares), nearest 2x upsampling and pointwise ops act per band.
 */
import { GraphError, type GraphBuilder, type Value } from './graph';
import { conv2d, groupNorm, reshape, shapeOf, silu, upsampleNearest } from './ops';

export type Bands = Value[];

const rows = (v: Value) => shapeOf(v)[2];

/**
 * Splits x into `n` bands of (nearly) equal row counts (n = 1: [x]); with `multiple`, every band's row
 * count is a multiple of it (the encoder's stride-2 convs need even bands at every level).
 */
export function toBands(g: GraphBuilder, x: Value, n: number, multiple = 1): Bands {
  const h = shapeOf(x)[2];
  const units = Math.floor(h / multiple);
  if (units * multiple !== h) throw new GraphError(`toBands: ${h} rows are not a multiple of ${multiple}`);
  n = Math.max(1, Math.min(n, units));
  if (n === 1) return [x];
  const sizes = Array.from({ length: n }, (_, i) => (Math.floor(((i + 1) * units) / n) - Math.floor((i * units) / n)) * multiple);
  return g.op('Split', [x, g.constI64(sizes)], { axis: 2 }, { outputs: n });
}

export function fromBands(g: GraphBuilder, b: Bands): Value {
  return b.length === 1 ? b[0] : g.op1('Concat', b, { axis: 2 });
}

function sliceRows(g: GraphBuilder, v: Value, from: number, to: number): Value {
  return g.op1('Slice', [v, g.constI64([from]), g.constI64([to]), g.constI64([2])]);
}

/** Conv with stride 1 and "same" padding over bands (halo rows from the neighbours). */
export function bandConv(g: GraphBuilder, b: Bands, prefix: string, opts: { bias?: boolean } = {}): Bands {
  if (b.length === 1) return [conv2d(g, b[0], prefix, opts)];
  const ws = g.weightShape(`${prefix}.weight`);
  const k = ws?.[2] ?? 1;
  if (k === 1) return b.map((x) => conv2d(g, x, prefix, opts));
  if (k !== 3 || ws?.[3] !== 3) throw new GraphError(`${prefix}: banded conv supports 1x1 and 3x3 kernels, found [${ws}]`);
  return g.scope(prefix, () => b.map((x, i) => {
    const parts: Value[] = [];
    if (i > 0) parts.push(sliceRows(g, b[i - 1], rows(b[i - 1]) - 1, rows(b[i - 1])));
    parts.push(x);
    if (i < b.length - 1) parts.push(sliceRows(g, b[i + 1], 0, 1));
    const input = parts.length === 1 ? x : g.op1('Concat', parts, { axis: 2 });
    return conv2d(g, input, prefix, { ...opts, pads: [i === 0 ? 1 : 0, 1, i === b.length - 1 ? 1 : 0, 1] });
  }));
}

/** GroupNorm over bands with exact global statistics (fp32 sums). */
export function bandGroupNorm(g: GraphBuilder, b: Bands, prefix: string, groups: number, eps: number): Bands {
  if (b.length === 1) return [groupNorm(g, b[0], prefix, groups, eps)];
  return g.scope(prefix, () => {
    const [bb, c, , w] = shapeOf(b[0]);
    const h = b.reduce((s, x) => s + rows(x), 0);
    const n = (c / groups) * h * w;
    const f = b.map((x) => g.cast(reshape(g, x, [bb, groups, (c / groups) * rows(x) * w]), 'float32'));
    const axes = g.constI64([2]);
    const total = (vs: Value[]) => vs.reduce((acc, v) => g.op1('Add', [acc, v]));
    const mean = g.op1('Mul', [total(f.map((x) => g.op1('ReduceSum', [x, axes], { keepdims: 1 }))), g.constF32([1 / n], [])]);
    const d = f.map((x) => g.op1('Sub', [x, mean]));
    const v = g.op1('Mul', [total(d.map((x) => g.op1('ReduceSum', [g.op1('Mul', [x, x]), axes], { keepdims: 1 }))), g.constF32([1 / n], [])]);
    const rstd = g.op1('Reciprocal', [g.op1('Sqrt', [g.op1('Add', [v, g.constF32([eps], [])])])]);
    const wgt = reshape(g, g.weight(`${prefix}.weight`, [c]), [c, 1, 1]);
    const bias = reshape(g, g.weight(`${prefix}.bias`, [c]), [c, 1, 1]);
    return d.map((x, i) => {
      const normed = reshape(g, g.cast(g.op1('Mul', [x, rstd]), b[i].dtype), shapeOf(b[i]));
      return g.op1('Add', [g.op1('Mul', [normed, wgt]), bias]);
    });
  });
}

export const bandSilu = (g: GraphBuilder, b: Bands): Bands => b.map((x) => silu(g, x));
export const bandAdd = (g: GraphBuilder, a: Bands, c: Bands): Bands => a.map((x, i) => g.op1('Add', [x, c[i]]));
/** Nearest 2x upsampling per band (each band's rows double: exact). */
export const bandUpsample2x = (g: GraphBuilder, b: Bands): Bands => b.map((x) => upsampleNearest(g, x, rows(x) * 2, shapeOf(x)[3] * 2));

/**
 * diffusers Downsample2D with padding 0 over bands: pad one zero row and column at the bottom and right,
 * then a 3x3 conv with stride 2. Each band (even row count) reads the first row of the next band; the
 * last band gets the zero row: exactly the unsplit result.
 */
export function bandDownsample(g: GraphBuilder, b: Bands, prefix: string): Bands {
  return g.scope(prefix, () =>
    b.map((x, i) => {
      if (rows(x) % 2) throw new GraphError(`${prefix}: a band of ${rows(x)} rows cannot be downsampled exactly`);
      const last = i === b.length - 1;
      const input = last ? x : g.op1('Concat', [x, sliceRows(g, b[i + 1], 0, 1)], { axis: 2 });
      return conv2d(g, input, prefix, { stride: 2, pads: [0, 0, last ? 1 : 0, 1] });
    }),
  );
}