/**
 * npm run bench:graph — builds the full-size U-Net graphs of KOALA-700M, KOALA-1B and SDXL-base from
 * their configs and synthesized safetensors headers (test/fixtures/koala-configs; no weight data) and
 * prints: graph build time, graph bytes, node counts by op type, parameters, and the U-Net's analytic
 * FLOPs per step (2 FLOP per multiply-add of every MatMul/Gemm/Conv) at 1024² and 512², batch 1.
 * Writes the same as JSON to bench-out/graph.json.
 *
 * Options: --runs N (timed builds per model, default 5), --out FILE.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { synthWeights, type KeyList } from '../workers/model/testing/synth';
import { buildUnetGraph, type UnetConfig } from '../workers/model/unet';
import type { FusedOps } from '../workers/model/fused-ops';

const { values: args } = parseArgs({ options: { runs: { type: 'string', default: '5' }, out: { type: 'string', default: 'bench-out/graph.json' } } });
const runs = Number(args.runs);
if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs must be a positive integer, got ${args.runs}`);

const CONFIGS = resolve(import.meta.dirname, '../test/fixtures/koala-configs');
/** REFERENCE.md: one U-Net call, batch 1, analytic (TFLOP at 1024², 512²) */
const MODELS = [
  { name: 'KOALA-700M', file: 'koala-700m', ref1024: 2.70, ref512: 0.62 },
  { name: 'KOALA-1B', file: 'koala-1b', ref1024: 3.43, ref512: 0.80 },
  { name: 'SDXL-base', file: 'sdxl-base', ref1024: 6.76, ref512: 1.59 },
];

const load = <T>(f: string): T => JSON.parse(readFileSync(resolve(CONFIGS, f), 'utf8')) as T;
const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];

interface Row {
  model: string;
  params: number;
  /** the graph the app builds for 1024² with CFG: batch 2, fp16 compute */
  graph: { batch: number; latent: number; compute: string; buildMsFirst: number; buildMsMedian: number; buildMsMin: number; bytes: number; nodes: number; opCounts: Record<string, number>; externalParts: number };
  tflopPerStep1024: number;
  tflopPerStep512: number;
  flopsByOp1024: Record<string, number>;
  reference: { tflop1024: number; tflop512: number };
  largestTensorMiB: number;
  /** Nodes that launch kernels (all but Reshape, which onnxruntime aliases) without / with fused kernels. */
  launching: Record<string, number>;
}

/** Fused-kernel sets (workers/model/fused-ops.ts): what lavapipe's fp16 self-test keeps, and every candidate. */
const FUSED_SETS: Record<string, FusedOps | undefined> = {
  none: undefined,
  'gelu+silu+skipLN': { gelu: true, silu: true, skipLayerNorm: true },
  all: { gelu: true, silu: true, skipLayerNorm: true, biasSplitGelu: true, mha: true },
};
const launching = (counts: Record<string, number>) => Object.entries(counts).reduce((a, [op, n]) => a + (op === 'Reshape' ? 0 : n), 0);

const rows: Row[] = [];
for (const m of MODELS) {
  const config = load<UnetConfig>(`${m.file}-unet.json`);
  const keys = load<KeyList>(`${m.file}-unet.keys.json`);
  const weights = await synthWeights(keys, { name: 'diffusion_pytorch_model.fp16.safetensors' });
  const opts = { batch: 2, height: 128, width: 128, compute: 'float16' as const };
  // first build in this process (cold JIT for the first model), then `runs` timed rebuilds
  const t00 = performance.now();
  let graph = buildUnetGraph(config, weights, opts);
  const first = performance.now() - t00;
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    graph = buildUnetGraph(config, weights, opts);
    times.push(performance.now() - t0);
  }
  const f1024 = buildUnetGraph(config, weights, { batch: 1, height: 128, width: 128, compute: 'float16' }).report;
  const f512 = buildUnetGraph(config, weights, { batch: 1, height: 64, width: 64, compute: 'float16' }).report;
  rows.push({
    model: m.name,
    params: graph.stats.params,
    graph: {
      ...opts, latent: 128, buildMsFirst: first, buildMsMedian: median(times), buildMsMin: Math.min(...times),
      bytes: graph.model.length, nodes: graph.stats.nodes, opCounts: graph.stats.opCounts, externalParts: graph.externalData.length,
    },
    tflopPerStep1024: f1024.flops / 1e12,
    tflopPerStep512: f512.flops / 1e12,
    flopsByOp1024: f1024.flopsByOp,
    reference: { tflop1024: m.ref1024, tflop512: m.ref512 },
    largestTensorMiB: graph.report.largest.bytes / 2 ** 20,
    launching: Object.fromEntries(Object.entries(FUSED_SETS).map(([k, fused]) => [k, launching(buildUnetGraph(config, weights, { ...opts, fused }).stats.opCounts)])),
  });
}

const pad = (s: string | number, n: number) => String(s).padStart(n);
console.log('U-Net graphs, full size, synthesized fp16 headers; graph = batch 2 (CFG), 1024x1024, fp16 compute');
console.log(`${'model'.padEnd(11)} ${pad('params', 14)} ${pad('build ms (1st/med/min)', 23)} ${pad('graph KB', 9)} ${pad('ext parts', 9)} ${pad('nodes', 6)} ${pad('TFLOP 1024²', 12)} ${pad('ref', 5)} ${pad('TFLOP 512²', 11)} ${pad('ref', 5)} ${pad('max tensor MiB', 15)}`);
for (const r of rows) {
  console.log(`${r.model.padEnd(11)} ${pad(r.params.toLocaleString('en'), 14)} ${pad(`${r.graph.buildMsFirst.toFixed(0)} / ${r.graph.buildMsMedian.toFixed(0)} / ${r.graph.buildMsMin.toFixed(0)}`, 23)} ${pad((r.graph.bytes / 1024).toFixed(0), 9)} ${pad(r.graph.externalParts, 9)} ${pad(r.graph.nodes, 6)} ${pad(r.tflopPerStep1024.toFixed(3), 12)} ${pad(r.reference.tflop1024.toFixed(2), 5)} ${pad(r.tflopPerStep512.toFixed(3), 11)} ${pad(r.reference.tflop512.toFixed(2), 5)} ${pad(r.largestTensorMiB.toFixed(1), 15)}`);
}
const ops = [...new Set(rows.flatMap((r) => Object.keys(r.graph.opCounts)))].sort((a, b) => (rows[0].graph.opCounts[b] ?? 0) - (rows[0].graph.opCounts[a] ?? 0));
console.log('\nnodes by op type');
console.log(`${'op'.padEnd(24)} ${rows.map((r) => pad(r.model, 11)).join(' ')}`);
for (const o of ops) console.log(`${o.padEnd(24)} ${rows.map((r) => pad(r.graph.opCounts[o] ?? 0, 11)).join(' ')}`);
console.log('\nkernel-launching nodes (all but Reshape) per U-Net call, by fused-kernel set');
for (const k of Object.keys(FUSED_SETS)) console.log(`${k.padEnd(24)} ${rows.map((r) => pad(r.launching[k]!, 11)).join(' ')}`);
console.log('\nTFLOP per step at 1024², batch 1, by op');
for (const o of ['Conv', 'Gemm', 'MatMul']) console.log(`${o.padEnd(24)} ${rows.map((r) => pad(((r.flopsByOp1024[o] ?? 0) / 1e12).toFixed(3), 11)).join(' ')}`);

const out = resolve(args.out!);
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, JSON.stringify({ date: new Date().toISOString(), node: process.version, runs, models: rows }, null, 2));
console.log(`\nwrote ${out}`);
