/**
 * Cutting one built graph into consecutive segments, each a graph of its own, so a model larger than one
 * onnxruntime-web wasm instance (a 32-bit heap: 4 GiB for weights + activations) runs as a chain of
 * sessions in separate instances (runtime/segmented-session.node.ts). Also the memory estimate that
 * decides whether a graph fits at all.
 *
 * Nodes are in topological order (GraphBuilder adds a node after its inputs exist). Nodes whose inputs are
 * all initializers ("constant nodes": the Casts of fp16 weights to the compute dtype) go with every segment
 * that consumes them, so no weight ever crosses a segment boundary; everything else belongs to exactly one
 * segment. A segment's inputs are the non-initializer values it reads and does not produce; its outputs are
 * the values it produces that a later segment (or the graph's output list) reads.
 */
import type { NodeProto } from './onnx-proto';

export interface SplitValue {
  dtype: string;
  shape: number[];
  bytes: number;
}

export interface SplitInput {
  nodes: readonly NodeProto[];
  /** Bytes each initializer takes in an instance's heap once loaded (external weights at their compute dtype). */
  initBytes: ReadonlyMap<string, number>;
  /** Every graph input and node output with its known shape. */
  values: ReadonlyMap<string, SplitValue>;
  graphInputs: readonly string[];
  graphOutputs: readonly string[];
}

export interface SegmentPlan {
  /** Indices into `nodes`, ascending. */
  nodes: number[];
  inputs: string[];
  outputs: string[];
  /** Heap bytes of the initializers this segment loads. */
  weightBytes: number;
  /** Peak bytes of live activations (inputs, intermediates, outputs) when the nodes run in order. */
  activationBytes: number;
}

/** Which nodes are constant (every input an initializer or a constant node's output). */
function constantNodes(input: SplitInput): boolean[] {
  const constValue = new Set(input.initBytes.keys());
  return input.nodes.map((n) => {
    const c = n.inputs.length > 0 && n.inputs.every((x) => x === '' || constValue.has(x));
    if (c) for (const o of n.outputs) constValue.add(o);
    return c;
  });
}

/**
 * Peak live activation bytes of running `nodes` (indices, in order) with `inputs` alive from the start and
 * `outputs` kept to the end: a value lives from its producer to its last consumer. Unknown shapes count 0.
 */
export function peakActivationBytes(
  input: SplitInput,
  nodes: number[],
  inputs: string[],
  outputs: string[],
  skip: (name: string) => boolean,
): number {
  const lastUse = new Map<string, number>();
  nodes.forEach((ni, pos) => {
    for (const x of input.nodes[ni]!.inputs) if (x && !skip(x)) lastUse.set(x, pos);
  });
  for (const o of outputs) lastUse.set(o, nodes.length);
  const size = (v: string) => input.values.get(v)?.bytes ?? 0;
  let live = 0;
  for (const i of inputs) live += size(i);
  let peak = live;
  const dying: string[][] = Array.from({ length: nodes.length + 1 }, () => []);
  for (const [v, pos] of lastUse) dying[pos]!.push(v);
  nodes.forEach((ni, pos) => {
    for (const o of input.nodes[ni]!.outputs) if (!skip(o) && lastUse.has(o)) live += size(o);
    peak = Math.max(peak, live);
    for (const v of dying[pos]!) live -= size(v);
  });
  return peak;
}

/**
 * Splits into segments whose weights each stay within `maxWeightBytes` (a single node's weights above that
 * form a segment of their own). Greedy in node order: a segment ends before the node that would overflow it.
 */
export function planSegments(input: SplitInput, maxWeightBytes: number): SegmentPlan[] {
  const isConst = constantNodes(input);
  const producer = new Map<string, number>();
  input.nodes.forEach((n, i) => n.outputs.forEach((o) => producer.set(o, i)));
  // the initializers (through constant nodes) each non-constant node needs
  const constInputs = (ni: number, acc: Set<number>, inits: Set<string>) => {
    for (const x of input.nodes[ni]!.inputs) {
      if (!x) continue;
      if (input.initBytes.has(x)) inits.add(x);
      const p = producer.get(x);
      if (p !== undefined && isConst[p] && !acc.has(p)) {
        acc.add(p);
        constInputs(p, acc, inits);
      }
    }
  };

  const groups: { main: number[]; consts: Set<number>; inits: Set<string>; bytes: number }[] = [];
  let cur = { main: [] as number[], consts: new Set<number>(), inits: new Set<string>(), bytes: 0 };
  for (let i = 0; i < input.nodes.length; i++) {
    if (isConst[i]) continue;
    const consts = new Set<number>();
    const inits = new Set<string>();
    constInputs(i, consts, inits);
    let add = 0;
    for (const w of inits) if (!cur.inits.has(w)) add += input.initBytes.get(w)!;
    if (cur.main.length && cur.bytes + add > maxWeightBytes) {
      groups.push(cur);
      cur = { main: [], consts: new Set(), inits: new Set(), bytes: 0 };
      add = 0;
      for (const w of inits) add += input.initBytes.get(w)!;
    }
    cur.main.push(i);
    for (const c of consts) cur.consts.add(c);
    for (const w of inits) cur.inits.add(w);
    cur.bytes += add;
  }
  if (cur.main.length) groups.push(cur);

  // the last segment that reads each value
  const lastReader = new Map<string, number>();
  groups.forEach((g, s) => g.main.forEach((ni) => input.nodes[ni]!.inputs.forEach((x) => x && lastReader.set(x, s))));
  const graphOutputs = new Set(input.graphOutputs);
  const isInit = (v: string) => input.initBytes.has(v);
  return groups.map((g, s) => {
    const nodes = [...g.main, ...g.consts].sort((a, b) => a - b);
    const produced = new Set(nodes.flatMap((ni) => input.nodes[ni]!.outputs));
    const inputs: string[] = [];
    for (const ni of nodes) {
      for (const x of input.nodes[ni]!.inputs) if (x && !isInit(x) && !produced.has(x) && !inputs.includes(x)) inputs.push(x);
    }
    const outputs: string[] = [];
    for (const ni of g.main) {
      for (const o of input.nodes[ni]!.outputs) {
        if (graphOutputs.has(o) || (lastReader.get(o) ?? -1) > s) outputs.push(o);
      }
    }
    const constOut = (v: string) => {
      const p = producer.get(v);
      return isInit(v) || (p !== undefined && isConst[p]!);
    };
    const activationBytes = peakActivationBytes(input, nodes, inputs, outputs, constOut);
    return { nodes, inputs, outputs, weightBytes: g.bytes, activationBytes };
  });
}
