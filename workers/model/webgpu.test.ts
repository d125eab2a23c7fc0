/**
 * The CLIP and VAE graphs on onnxruntime-web's native WebGPU EP in Node (Dawn over Mesa lavapipe,
 * test/webgpu-node.ts): fp32 and fp16 compute against the diffusers goldens.
 */
import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import { webgpuSuite } from '../../test/webgpu-node';
import { buildClipTextGraph, type ClipTextConfig } from './clip';
import { buildVaeDecoderGraph, type VaeConfig } from './vae';
import type { BuiltGraph } from './graph';
import { openComponent } from './model-dir.node.js';
import { fixtureDir, golden } from './testing/fixtures.node.js';
import { externalDataFor, maxAbsDiff } from './testing/run-wasm.node.js';

/** ORT's wasm module (in Node) logs with fs.writeSync(1|2, line): route that through a switchable capture. */
let capture: string[] | undefined;
const writeSync = fs.writeSync;
fs.writeSync = ((fd: number, data: unknown, ...rest: unknown[]) => {
  if (capture && (fd === 1 || fd === 2) && typeof data === 'string') {
    capture.push(data);
    return data.length;
  }
  return (writeSync as (...a: unknown[]) => number)(fd, data, ...rest);
}) as typeof fs.writeSync;
const { skip } = await webgpuSuite();
const ort = skip ? undefined : await import('onnxruntime-web/webgpu');
// one thread: ORT's log lines then come from the main thread (not from pthread workers)
if (ort) ort.env.wasm.numThreads = 1;

/**
 * Creates the session with verbose logging and returns the names of nodes ORT placed on the CPU
 * (parsed from its "Node placements" log, which the wasm module writes to stdout/stderr).
 */
async function createGpuSession(graph: BuiltGraph) {
  const externalData = await externalDataFor(graph.externalData);
  const captured: string[] = [];
  capture = captured;
  let session;
  try {
    session = await ort!.InferenceSession.create(graph.model, { executionProviders: ['webgpu'], externalData, logSeverityLevel: 0, logVerbosityLevel: 0 });
  } finally {
    capture = undefined;
  }
  const lines = captured.join('\n').split('\n').filter((l) => l.trim());
  const cpu: string[] = [];
  let onCpu = false;
  for (const l of lines) {
    if (/placed on \[/.test(l)) onCpu = /placed on \[CPUExecutionProvider\]/.test(l);
    else if (onCpu && /VerifyEachNodeIsAssignedToAnEp\]\s{3}/.test(l)) cpu.push(l.replace(/^.*\]\s{3}/, '').trim());
    else if (!/VerifyEachNodeIsAssignedToAnEp/.test(l)) onCpu = false;
  }
  const sawPlacement = lines.some((l) => l.includes('Node placements'));
  return { session, cpu, sawPlacement };
}

async function runGpu(graph: BuiltGraph, feeds: Record<string, ArrayLike<number>>, allowedOnCpu: RegExp[] = []) {
  const { session: s, cpu, sawPlacement } = await createGpuSession(graph);
  expect(sawPlacement, 'ORT verbose placement log captured').toBe(true);
  console.log(`${graph.inputs.map((i) => i.name).join(',')}: nodes on the CPU: ${JSON.stringify(cpu)}`);
  const unexpected = cpu.filter((n) => !allowedOnCpu.some((r) => r.test(n)));
  expect(unexpected, 'nodes that fell back to the CPU').toEqual([]);
  try {
    const f: Record<string, import('onnxruntime-web').Tensor> = {};
    for (const i of graph.inputs) {
      const v = feeds[i.name];
      f[i.name] = i.dtype === 'int64' ? new ort!.Tensor('int64', BigInt64Array.from(Array.from(v), (x) => BigInt(x)), i.shape) : new ort!.Tensor('float32', Float32Array.from(v), i.shape);
    }
    capture = []; // the session logs verbosely on every run too: drop it
    let r;
    try {
      r = await s.run(f);
    } finally {
      capture = undefined;
    }
    return Object.fromEntries(graph.outputs.map((o) => [o.name, Float32Array.from(r[o.name].data as Float32Array)]));
  } finally {
    await s.release();
  }
}

const maxAbs = (a: ArrayLike<number>) => Array.from(a).reduce((m, v) => Math.max(m, Math.abs(v)), 0);

describe.skipIf(skip)('graphs on the WebGPU EP (Node, Dawn)', () => {
  for (const fx of ['tiny-sdxl', 'tiny-koala'] as const) {
    for (const compute of ['float32', 'float16'] as const) {
      it(`${fx} text_encoder_2 ${compute}: no CPU fallback, matches the goldens`, async () => {
        const { config, weights } = await openComponent(fixtureDir(fx), 'text_encoder_2', compute === 'float16' ? 'fp16' : undefined);
        const graph = buildClipTextGraph(config as ClipTextConfig, weights, { batch: 1, compute });
        const ids = await golden(fx, 'text_encoders.safetensors', 'case1.input_ids_2');
        // only the int64 -> float Cast of input_ids for the EOS ArgMax (B x 77 values) runs on the CPU
        const out = await runGpu(graph, { input_ids: ids.data }, [/^Cast \(pool\/Cast\)$/]);
        for (const [o, gname] of [['hidden_states_m2', 'te2_hidden_states_m2'], ['text_embeds', 'te2_text_embeds']]) {
          const ref = (await golden(fx, 'text_encoders.safetensors', `case1.${gname}`)).data;
          const err = maxAbsDiff(out[o], ref);
          console.log(`webgpu ${fx} te2 ${compute} ${o}: max abs err ${err} (max|ref| ${maxAbs(ref)})`);
          expect(err).toBeLessThanOrEqual(compute === 'float32' ? 1e-3 : 2e-2 * maxAbs(ref));
        }
      }, 300_000);
    }
    it(`${fx} vae decoder fp32 (chunked attention, row-banded up path): no CPU fallback, matches the goldens`, async () => {
      const { config, weights } = await openComponent(fixtureDir(fx), 'vae');
      const lat = await golden(fx, 'vae.safetensors', 'case1.latents_scaled');
      const [b, , h, w] = lat.shape;
      const graph = buildVaeDecoderGraph(config as VaeConfig, weights, { batch: b, height: h, width: w, maxBindingBytes: 8192 });
      const out = await runGpu(graph, { latents_scaled: lat.data });
      const ref = (await golden(fx, 'vae.safetensors', 'case1.image')).data;
      const err = maxAbsDiff(out.image, ref);
      console.log(`webgpu ${fx} vae fp32: max abs err ${err}`);
      expect(err).toBeLessThanOrEqual(1e-3);
    }, 300_000);
  }
});
