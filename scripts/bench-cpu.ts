/**
 * npm run bench:cpu — CPU parity (issue #10 item 5): one full-size KOALA-700M U-Net call through our engine
 * on onnxruntime-web's wasm backend (what `npm run component -- --component unet` runs: the graph
 * buildComponentGraph builds, on the session createNodeWasmSession makes — segments in wasm instances of
 * their own) against diffusers' UNet2DConditionModel on PyTorch (CPU, fp32), same weights, same inputs,
 * same thread count, in one run; prints seconds per call, the ratio ours / PyTorch, GFLOP/s, session
 * creation time, peak RSS, and checks that both outputs agree (max|diff| / max|ref| ≤ 1e-3).
 *
 *   npm run bench:cpu -- [--dir DIR] [--size 256] [--batch 2] [--threads N] [--runs 3] [--json FILE]
 *       [--python CMD] [--pyenv FILE] [--skip-torch] [--ops | --ops-only] [--fused auto|off|gelu,silu,…]
 *
 * --dir      seeded random full-size KOALA-700M (diffusers layout); written when missing (fp32 only, ~30–60 s,
 *            6.3 GiB), default ${KOALA_FULLSIZE_ROOT:-$TMPDIR}/koala-fullsize-koala-700m-s1 as test/fullsize uses
 * --threads  default os.availableParallelism(); torch.set_num_threads(N) and ort.env.wasm.numThreads = N
 *            (also the worker-thread instances' numThreads)
 * --python   interpreter for scripts/bench/cpu-torch.py (default $KOALA_PYTHON or python3); --pyenv a shell file
 *            sourced first (default $KOALA_PYDEPS_ENV, else /work/pydeps/env.sh when present)
 * --json     default bench-out/cpu-<size>.json; inputs and both outputs go to bench-out/cpu-<size>-b<batch>/
 * --ops      also time the U-Net's dominant op shapes at this size (Gemm as `linear`, 3×3 Conv) one by one,
 *            ORT wasm vs torch, same threads (--ops-only: only that; JSON bench-out/cpu-ops-<size>.json)
 *
 * Without an importable torch + diffusers the PyTorch side is skipped with a note (our side still runs).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-web';
import { buildComponentGraph } from './component';
import { openComponent } from '../workers/model/model-dir.node.js';
import { probeFusedOps } from '../workers/runtime/fused-ops-probe';
import { wasmProbeRunner } from '../workers/runtime/fused-ops-wasm.node.js';
import { fusedProbeShapes } from '../workers/pipeline/sdxl-pipeline';
import { FUSED_OPS, type FusedOps } from '../workers/model/fused-ops';
import { writeRandomCheckpoint } from './fullsize/checkpoint';
import { encodeSafetensors, readSafetensorsHeader, readTensorF32 } from '../workers/model/safetensors';
import { fileSource } from '../workers/model/safetensors.node.js';
import { createWasmSession, runWasm } from '../workers/model/testing/run-wasm.node.js';
import { createNodeWasmSession } from '../workers/runtime/wasm-instances.node.js';

const REL_TOL = 1e-3;

const { values: a } = parseArgs({
  options: {
    dir: { type: 'string' },
    size: { type: 'string', default: '256' },
    batch: { type: 'string', default: '2' },
    threads: { type: 'string' },
    runs: { type: 'string', default: '3' },
    json: { type: 'string' },
    python: { type: 'string' },
    pyenv: { type: 'string' },
    'skip-torch': { type: 'boolean' },
    ops: { type: 'boolean' },
    'ops-only': { type: 'boolean' },
    fused: { type: 'string', default: 'auto' },
  },
});
const int = (name: string, v: string | undefined, min: number) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) {
    console.error(`bench:cpu: --${name} must be an integer ≥ ${min}, got "${v}"`);
    process.exit(2);
  }
  return n;
};
const size = int('size', a.size, 64);
if (size % 64) {
  console.error(`bench:cpu: --size must be a multiple of 64, got ${size}`);
  process.exit(2);
}
const batch = int('batch', a.batch, 1);
const threads = a.threads === undefined ? availableParallelism() : int('threads', a.threads, 1);
const runs = int('runs', a.runs, 1);
const dir = resolve(a.dir ?? join(process.env.KOALA_FULLSIZE_ROOT ?? tmpdir(), 'koala-fullsize-koala-700m-s1'));
const jsonPath = resolve(a.json ?? `bench-out/cpu-${size}.json`);
const work = resolve(`bench-out/cpu-${size}-b${batch}`);
mkdirSync(work, { recursive: true });
mkdirSync(dirname(jsonPath), { recursive: true });

const loadavgAtStart = loadavg();
const log = (l: string) => console.error(`[bench:cpu] ${l}`);
const median = (x: number[]) => {
  const s = [...x].sort((p, q) => p - q);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const cpuSec = (u: NodeJS.CpuUsage) => (u.user + u.system) / 1e6;
const GiB = (n: number) => `${(n / 2 ** 30).toFixed(2)} GiB`;

const py = a.python ?? process.env.KOALA_PYTHON ?? 'python3';
const pyenv = a.pyenv ?? process.env.KOALA_PYDEPS_ENV ?? (existsSync('/work/pydeps/env.sh') ? '/work/pydeps/env.sh' : '');
const pyDescription = () => `"${py}"${pyenv ? ` after . ${pyenv}` : ''}`;
/** scripts/bench/cpu-torch.py with these arguments (stderr shown), OMP_NUM_THREADS = N. */
function runPython(args: string[]) {
  const script = resolve(import.meta.dirname, 'bench/cpu-torch.py');
  log(`PyTorch: ${pyenv ? `. ${pyenv} && ` : ''}${py} ${script} ${args.join(' ')}`);
  return spawnSync('bash', ['-c', `${pyenv ? '. "$0" && ' : ''}exec ${py} "$@"`, pyenv || 'bash', script, ...args], {
    stdio: ['ignore', 'inherit', 'inherit'],
    // one OpenMP team of N threads, as torch.set_num_threads(N) asks (no oversubscription from a stray env)
    env: { ...process.env, OMP_NUM_THREADS: String(threads) },
  });
}

/**
 * The U-Net's dominant op shapes at this size, one single-op graph each (weights inline, random), timed on
 * ORT wasm in this process (N threads) and as torch.nn.functional.linear / conv2d (N threads).
 */
async function opsBench(): Promise<void> {
  const { GraphBuilder } = await import('../workers/model/graph');
  const { WeightIndex } = await import('../workers/model/weights');
  ort.env.wasm.numThreads = threads;
  const l0 = size / 16; // latent/2: first attention level (640 ch), latent/4: second (1280 ch)
  const tok = (s: number) => batch * s * s;
  const specs = [
    { op: 'Gemm', name: 'attn q/k/v/out 640', m: tok(l0), k: 640, n: 640 },
    { op: 'Gemm', name: 'ff GEGLU in 640', m: tok(l0), k: 640, n: 5120 },
    { op: 'Gemm', name: 'ff out 640', m: tok(l0), k: 2560, n: 640 },
    { op: 'Gemm', name: 'attn q/k/v/out 1280', m: tok(l0 / 2), k: 1280, n: 1280 },
    { op: 'Gemm', name: 'ff GEGLU in 1280', m: tok(l0 / 2), k: 1280, n: 10240 },
    { op: 'Gemm', name: 'cross k/v 2048→640', m: batch * 77, k: 2048, n: 640 },
    { op: 'Conv', name: 'conv3x3 320 @latent', c: 320, hw: size / 8 },
    { op: 'Conv', name: 'conv3x3 640 @latent/2', c: 640, hw: size / 16 },
    { op: 'Conv', name: 'conv3x3 1280 @latent/4', c: 1280, hw: size / 32 },
  ] as ({ op: 'Gemm'; name: string; m: number; k: number; n: number } | { op: 'Conv'; name: string; c: number; hw: number })[];
  const reps = Math.max(5, runs * 2);
  const rows: { name: string; shape: string; gflop: number; ortS: number; ortCpuS: number; torchS?: number; torchCpuS?: number }[] = [];
  for (const sp of specs) {
    const g = new GraphBuilder({ name: sp.name, weights: new WeightIndex([]), compute: 'float32' });
    let x, y, feedShape: number[], gflop: number, shape: string;
    if (sp.op === 'Gemm') {
      feedShape = [sp.m, sp.k];
      x = g.input('x', 'float32', feedShape);
      y = g.op1('Gemm', [x, g.constF32(normals(7, sp.n * sp.k), [sp.n, sp.k]), g.constF32(normals(8, sp.n), [sp.n])], { transB: 1 });
      gflop = (2 * sp.m * sp.k * sp.n) / 1e9;
      shape = `[${sp.m},${sp.k}]x[${sp.k},${sp.n}]`;
    } else {
      feedShape = [batch, sp.c, sp.hw, sp.hw];
      x = g.input('x', 'float32', feedShape);
      y = g.op1('Conv', [x, g.constF32(normals(7, sp.c * sp.c * 9), [sp.c, sp.c, 3, 3]), g.constF32(normals(8, sp.c), [sp.c])], {
        kernel_shape: [3, 3], strides: [1, 1], dilations: [1, 1], pads: [1, 1, 1, 1], group: 1,
      });
      gflop = (2 * batch * sp.c * sp.c * 9 * sp.hw * sp.hw) / 1e9;
      shape = `[${feedShape}] k3 ${sp.c}→${sp.c}`;
    }
    g.output(y, 'y');
    const built = g.build();
    const s = await createWasmSession(built);
    const feed = { x: new ort.Tensor('float32', normals(9, feedShape.reduce((p, q) => p * q, 1)), feedShape) };
    await s.run(feed);
    const times: number[] = [];
    const cpu: number[] = [];
    for (let k = 0; k < reps; k++) {
      const c = process.cpuUsage();
      const t0 = performance.now();
      await s.run(feed);
      times.push((performance.now() - t0) / 1000);
      cpu.push(cpuSec(process.cpuUsage(c)));
    }
    await s.release();
    rows.push({ name: sp.name, shape, gflop, ortS: Math.min(...times), ortCpuS: median(cpu) });
  }
  const opsJson = join(work, 'torch-ops.json');
  const r = a['skip-torch'] ? undefined : runPython(['--ops', JSON.stringify({ batch, reps, specs }), '--json', opsJson, '--threads', String(threads)]);
  if (r?.status === 0) {
    const tj = JSON.parse(readFileSync(opsJson, 'utf8')) as { name: string; min_s: number; cpu_median_s: number }[];
    for (const row of rows) {
      row.torchS = tj.find((q) => q.name === row.name)?.min_s;
      row.torchCpuS = tj.find((q) => q.name === row.name)?.cpu_median_s;
    }
  } else log(`ops: PyTorch side ${r ? `failed or not importable (exit ${r.status})` : 'skipped'}`);
  console.log(`\nsingle ops at ${size}², batch ${batch}, ${threads} threads: best wall time of ${reps}, and GFLOP per CPU-second (median; robust to other load)`);
  console.log(`${'op'.padEnd(24)} ${'shape'.padEnd(26)} ${'GFLOP'.padStart(6)} ${'ORT ms'.padStart(8)} ${'ORT GF/s'.padStart(9)} ${'torch ms'.padStart(9)} ${'torch GF/s'.padStart(10)} ${'ratio'.padStart(6)} ${'ORT GF/cpu-s'.padStart(12)} ${'torch GF/cpu-s'.padStart(14)}`);
  for (const q of rows)
    console.log(
      `${q.name.padEnd(24)} ${q.shape.padEnd(26)} ${q.gflop.toFixed(2).padStart(6)} ${(q.ortS * 1e3).toFixed(1).padStart(8)} ${(q.gflop / q.ortS).toFixed(1).padStart(9)} ` +
        `${q.torchS ? (q.torchS * 1e3).toFixed(1).padStart(9) : '-'.padStart(9)} ${q.torchS ? (q.gflop / q.torchS).toFixed(1).padStart(10) : '-'.padStart(10)} ${q.torchS ? (q.ortS / q.torchS).toFixed(2).padStart(6) : '-'.padStart(6)} ` +
        `${(q.gflop / q.ortCpuS).toFixed(1).padStart(12)} ${q.torchCpuS ? (q.gflop / q.torchCpuS).toFixed(1).padStart(14) : '-'.padStart(14)}`,
    );
  const opsPath = resolve(`bench-out/cpu-ops-${size}.json`);
  writeFileSync(opsPath, JSON.stringify({ date: new Date().toISOString(), size, batch, threads, reps, loadavg: loadavg(), rows }, null, 2));
  console.log(`wrote ${opsPath}`);
}
if (a['ops-only']) {
  await opsBench();
  process.exit(0);
}

// ---------------------------------------------------------------------------------------------- 1. checkpoint
log(`checkpoint ${dir}`);
{
  const info = writeRandomCheckpoint({ out: dir, model: 'koala-700m', seed: 1, variants: ['fp32'], log: (l) => log(`checkpoint: ${l}`) });
  log(info.bytesWritten ? `checkpoint written in ${info.seconds.toFixed(0)} s` : 'checkpoint already complete');
}

// ---------------------------------------------------------------------------------------------- 2. inputs
/** mulberry32 + Box–Muller: seeded standard normals. */
function normals(seed: number, n: number): Float32Array {
  let s = seed >>> 0;
  const u = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) + 0.5) / 2 ** 32;
  };
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(u()));
    const th = 2 * Math.PI * u();
    out[i] = r * Math.cos(th);
    if (i + 1 < n) out[i + 1] = r * Math.sin(th);
  }
  return out;
}
const unetConfig = JSON.parse(readFileSync(join(dir, 'unet/config.json'), 'utf8')) as Record<string, unknown>;
const te2Config = JSON.parse(readFileSync(join(dir, 'text_encoder_2/config.json'), 'utf8')) as Record<string, unknown>;
const hw = size / 8;
const inC = Number(unetConfig.in_channels ?? 4);
const cross = Number(unetConfig.cross_attention_dim);
const proj = Number(te2Config.projection_dim ?? 1280);
const timeIds = new Float32Array(batch * 6);
for (let b = 0; b < batch; b++) timeIds.set(b % 2 ? [2 * size, size + size / 2, 16, 8, size, size] : [size, size, 0, 0, size, size], b * 6);
const inputs = new Map<string, { data: Float32Array; shape: number[] }>([
  ['sample', { data: normals(101, batch * inC * hw * hw), shape: [batch, inC, hw, hw] }],
  ['timestep', { data: Float32Array.of(501), shape: [1] }],
  ['encoder_hidden_states', { data: normals(102, batch * 77 * cross), shape: [batch, 77, cross] }],
  ['text_embeds', { data: normals(103, batch * proj), shape: [batch, proj] }],
  ['time_ids', { data: timeIds, shape: [batch, 6] }],
]);
const inputsPath = join(work, 'inputs.safetensors');
writeFileSync(
  inputsPath,
  encodeSafetensors(Object.fromEntries([...inputs].map(([k, t]) => [k, { dtype: 'F32' as const, shape: t.shape, data: t.data }])), {
    producer: 'scripts/bench-cpu.ts',
    seeds: 'sample 101, encoder_hidden_states 102, text_embeds 103 (mulberry32 + Box-Muller)',
  }),
);
log(`inputs ${inputsPath}: sample [${batch},${inC},${hw},${hw}], timestep 501, encoder_hidden_states [${batch},77,${cross}], text_embeds [${batch},${proj}], time_ids [${batch},6]`);

// ---------------------------------------------------------------------------------------------- 3. PyTorch
interface TorchResult {
  threads: number;
  interop_threads: number;
  load_s: number;
  warmup_s: number;
  runs_s: number[];
  cpu_s: number[];
  peak_rss_bytes: number;
  torch: string;
  diffusers: string;
  mkldnn: boolean;
  blas: string;
  attn_processor: string;
}
let torch: TorchResult | undefined;
let torchNote: string | undefined;
const torchOut = join(work, 'torch-out.safetensors');
const torchJson = join(work, 'torch.json');
if (a['skip-torch']) torchNote = 'skipped (--skip-torch)';
else {
  const args = ['--model', dir, '--inputs', inputsPath, '--out', torchOut, '--json', torchJson, '--threads', String(threads), '--runs', String(runs)];
  const r = runPython(args);
  if (r.status === 0) torch = JSON.parse(readFileSync(torchJson, 'utf8')) as TorchResult;
  else if (r.status === 3 || r.status === 127) torchNote = `PyTorch side skipped: torch/diffusers not importable with ${pyDescription()} (no ratio)`;
  else torchNote = `PyTorch side failed (exit ${r.status ?? r.signal}); no ratio`;
  if (torchNote) log(torchNote);
}

// ---------------------------------------------------------------------------------------------- 4. ours (wasm)
ort.env.wasm.numThreads = threads; // the caller's instance (small graphs); segments get numThreads below
// fused kernels: as the CLI chooses them (the wasm self-test), none, or a list
let fusedList: string[];
if (a.fused === 'auto') {
  const probe = await probeFusedOps('float32', fusedProbeShapes((await openComponent(dir, 'unet')).weights), wasmProbeRunner(ort), 'wasm');
  fusedList = FUSED_OPS.filter((f) => probe.ops[f]);
  log(`fused-kernel self-test (${probe.ms.toFixed(0)} ms): ${Object.entries(probe.report).map(([k, v]) => `${k} ${v}`).join('; ')}`);
} else fusedList = a.fused === 'off' ? [] : (a.fused ?? '').split(',').filter(Boolean);
for (const f of fusedList) if (!(FUSED_OPS as readonly string[]).includes(f)) throw new Error(`--fused: unknown kernel "${f}" (${FUSED_OPS.join(', ')})`);
const fused = Object.fromEntries(fusedList.map((f) => [f, true])) as FusedOps;
log(`fused kernels: ${fusedList.join(', ') || 'none'}`);
const opts = { model: dir, component: 'unet' as const, precision: 'fp32' as const, inputs: inputsPath, out: '', fused };
let t = performance.now();
const graph = (await buildComponentGraph(opts, inputs)) as Awaited<ReturnType<typeof buildComponentGraph>> & {
  report?: { flops: number; flopsByOp: Record<string, number> };
};
const buildS = (performance.now() - t) / 1000;
const flops = graph.report?.flops ?? NaN;
log(`graph built in ${buildS.toFixed(2)} s: ${graph.stats.nodes} nodes, ${GiB(graph.stats.weightBytes)} of weights, ${(flops / 1e9).toFixed(1)} GFLOP per call`);
const feeds: Record<string, Float32Array> = {};
for (const i of graph.inputs) feeds[i.name] = inputs.get(i.name)!.data;
const rssBefore = process.memoryUsage().rss;
t = performance.now();
const session = await createNodeWasmSession(graph, {
  label: 'unet',
  ort,
  numThreads: threads,
  createLocal: () => createWasmSession(graph),
  log: (l) => log(l),
});
const sessionS = (performance.now() - t) / 1000;
const segments = (session as unknown as { segments?: number }).segments ?? 1;
log(`session created in ${sessionS.toFixed(1)} s (${segments} segment${segments > 1 ? 's' : ''}, ${threads} wasm threads each)`);
const rssSession = process.memoryUsage().rss;
let out: Awaited<ReturnType<typeof runWasm>>;
let oursWarmup = 0;
const oursRuns: number[] = [];
const oursCpu: number[] = [];
try {
  t = performance.now();
  out = await runWasm(graph, feeds, session);
  oursWarmup = (performance.now() - t) / 1000;
  log(`ours: warm-up ${oursWarmup.toFixed(2)} s`);
  for (let k = 0; k < runs; k++) {
    const c = process.cpuUsage();
    t = performance.now();
    out = await runWasm(graph, feeds, session);
    oursRuns.push((performance.now() - t) / 1000);
    oursCpu.push(cpuSec(process.cpuUsage(c)));
    log(`ours: run ${k + 1}: ${oursRuns[k].toFixed(2)} s (process CPU ${oursCpu[k].toFixed(1)} s)`);
  }
} finally {
  await session.release();
}
const oursPeakRss = process.resourceUsage().maxRSS * 1024;
const oursOut = out.out ?? Object.values(out)[0];
const oursPath = join(work, 'ours-out.safetensors');
writeFileSync(oursPath, encodeSafetensors({ out: { dtype: 'F32', shape: oursOut.dims, data: oursOut.data } }, { producer: 'scripts/bench-cpu.ts' }));

// ---------------------------------------------------------------------------------------------- 5. agreement
let agreement: { maxAbsDiff: number; maxAbsRef: number; rel: number; ok: boolean } | undefined;
if (torch) {
  const f = await readSafetensorsHeader(fileSource(torchOut));
  const ref = await readTensorF32(f, 'out');
  if (ref.length !== oursOut.data.length) throw new Error(`output sizes differ: torch ${ref.length}, ours ${oursOut.data.length}`);
  let d = 0;
  let m = 0;
  for (let i = 0; i < ref.length; i++) {
    const e = Math.abs(ref[i] - oursOut.data[i]);
    d = Number.isNaN(e) ? Infinity : Math.max(d, e);
    m = Math.max(m, Math.abs(ref[i]));
  }
  agreement = { maxAbsDiff: d, maxAbsRef: m, rel: d / (m || 1), ok: d / (m || 1) <= REL_TOL };
}

// ---------------------------------------------------------------------------------------------- 6. report
const oursMed = median(oursRuns);
const torchMed = torch ? median(torch.runs_s) : NaN;
const ratio = oursMed / torchMed;
const gflops = (s: number) => flops / s / 1e9;
const pad = (s: string, n: number) => s.padStart(n);
const row = (name: string, med: number, runsS: number[], cpuS: number[], create: string, rss: number) =>
  `${name.padEnd(22)} ${pad(med.toFixed(2), 9)} ${pad(Math.min(...runsS).toFixed(2), 7)} ${pad(runsS.map((x) => x.toFixed(2)).join('/'), 20)} ${pad(gflops(med).toFixed(1), 8)} ${pad(median(cpuS).toFixed(2), 7)} ${pad(create, 12)} ${pad(GiB(rss), 10)}`;
console.log(
  `\nKOALA-700M U-Net, fp32, ${size}² (latent ${hw}²), batch ${batch}, ${threads} thread${threads > 1 ? 's' : ''}; ${(flops / 1e9).toFixed(1)} GFLOP per call (graph report); ` +
    `CPU ${cpus()[0]?.model ?? '?'} ×${availableParallelism()}, load average at start ${loadavgAtStart[0].toFixed(2)}, at end ${loadavg()[0].toFixed(2)} (other work on the machine skews wall times)`,
);
console.log(`${'engine'.padEnd(22)} ${pad('s/call', 9)} ${pad('best', 7)} ${pad('runs (s)', 20)} ${pad('GFLOP/s', 8)} ${pad('CPU s', 7)} ${pad('create (s)', 12)} ${pad('peak RSS', 10)}`);
if (torch)
  console.log(row(`PyTorch ${torch.torch}`, torchMed, torch.runs_s, torch.cpu_s, torch.load_s.toFixed(1), torch.peak_rss_bytes));
console.log(row(`ours (ORT-web wasm)`, oursMed, oursRuns, oursCpu, `${sessionS.toFixed(1)}`, oursPeakRss));
if (torch) {
  console.log(
    `ratio ours / PyTorch: ${ratio.toFixed(2)}× (median s/call; best ${(Math.min(...oursRuns) / Math.min(...torch.runs_s)).toFixed(2)}×, ` +
      `process CPU seconds per call ${(median(oursCpu) / median(torch.cpu_s)).toFixed(2)}×)`,
  );
  console.log(
    `outputs: max|diff| ${agreement!.maxAbsDiff.toExponential(2)}, max|ref| ${agreement!.maxAbsRef.toExponential(2)}, rel ${agreement!.rel.toExponential(2)} (${agreement!.ok ? 'OK' : 'FAIL'}: ≤ ${REL_TOL})`,
  );
} else console.log(torchNote);
console.log(
  `ours: graph build ${buildS.toFixed(2)} s, session creation ${sessionS.toFixed(1)} s (${segments} segments), warm-up ${oursWarmup.toFixed(2)} s` +
    (torch ? `; PyTorch: load ${torch.load_s.toFixed(1)} s, warm-up ${torch.warmup_s.toFixed(2)} s, ${torch.attn_processor}, mkldnn ${torch.mkldnn}` : ''),
);

const result = {
  date: new Date().toISOString(),
  node: process.version,
  cpu: cpus()[0]?.model,
  cores: availableParallelism(),
  loadavgAtEnd: loadavg(),
  model: 'koala-700m (seeded random, seed 1)',
  dir,
  size,
  batch,
  threads,
  runs,
  flopsPerCall: flops,
  flopsByOp: graph.report?.flopsByOp,
  graph: { nodes: graph.stats.nodes, opCounts: graph.stats.opCounts, weightBytes: graph.stats.weightBytes },
  ours: {
    buildS,
    sessionCreateS: sessionS,
    segments,
    warmupS: oursWarmup,
    runsS: oursRuns,
    cpuS: oursCpu,
    medianS: oursMed,
    gflops: gflops(oursMed),
    peakRssBytes: oursPeakRss,
    rssBeforeSessionBytes: rssBefore,
    rssAfterSessionBytes: rssSession,
    ortWasm: { numThreads: threads, simd: ort.env.wasm.simd ?? 'auto', version: ort.env.versions?.web },
    fusedKernels: fusedList,
  },
  torch: torch ? { ...torch, medianS: torchMed, gflops: gflops(torchMed) } : { note: torchNote },
  ratio: torch ? ratio : null,
  ratioBest: torch ? Math.min(...oursRuns) / Math.min(...torch.runs_s) : null,
  ratioCpuSeconds: torch ? median(oursCpu) / median(torch.cpu_s) : null,
  loadavgAtStart,
  agreement: agreement ?? null,
  files: { inputs: inputsPath, torchOut: torch ? torchOut : null, oursOut: oursPath },
};
writeFileSync(jsonPath, JSON.stringify(result, null, 2));
console.log(`wrote ${jsonPath}`);
if (agreement && !agreement.ok) process.exitCode = 1;
if (a.ops) await opsBench();
