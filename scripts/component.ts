/**
 * Runs one pipeline component, built from a local diffusers folder by the same graph builders the
 * page uses, on onnxruntime-web's wasm backend; reads named fp32 (or integer) inputs from a
 * safetensors file and writes every output as fp32 safetensors, so any component can be compared
 * with diffusers tensor by tensor.
 *
 *   npm run component -- --model DIR --component text_encoder|text_encoder_2|unet|vae_decoder|vae_encoder
 *     [--variant fp16] [--precision fp32|fp16] [--max-binding-bytes N] --inputs IN.safetensors --out OUT.safetensors
 */
import type { FusedOps } from '../workers/model/fused-ops';
import { parseArgs } from 'node:util';
import { writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { buildClipTextGraph, type ClipTextConfig } from '../workers/model/clip';
import { buildVaeDecoderGraph, type VaeConfig } from '../workers/model/vae';
import { openComponent, type ComponentName } from '../workers/model/model-dir.node.js';
import { encodeSafetensors, readSafetensorsHeader, readTensorF32, type TensorToEncode } from '../workers/model/safetensors';
import { fileSource } from '../workers/model/safetensors.node.js';
import type { BuiltGraph } from '../workers/model/graph';
import * as ort from 'onnxruntime-web';
import { createWasmSession, runWasm } from '../workers/model/testing/run-wasm.node.js';
import { createNodeWasmSession } from '../workers/runtime/wasm-instances.node.js';

export class UsageError extends Error {}

const COMPONENTS = ['text_encoder', 'text_encoder_2', 'unet', 'vae_decoder', 'vae_encoder'] as const;
export type Component = (typeof COMPONENTS)[number];

export interface ComponentOptions {
  model: string;
  component: Component;
  variant?: string;
  precision: 'fp32' | 'fp16';
  inputs: string;
  out: string;
  maxBindingBytes?: number;
  /** Fused kernels for the U-Net graph (workers/model/fused-ops.ts); default none. */
  fused?: FusedOps;
}

export const USAGE =
  'usage: npm run component -- --model DIR --component text_encoder|text_encoder_2|unet|vae_decoder|vae_encoder [--variant fp16] [--precision fp32|fp16] [--max-binding-bytes N] --inputs IN.safetensors --out OUT.safetensors';

export function parseComponentArgs(argv: string[]): ComponentOptions {
  let values: Record<string, string | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        model: { type: 'string' },
        component: { type: 'string' },
        variant: { type: 'string' },
        precision: { type: 'string' },
        inputs: { type: 'string' },
        out: { type: 'string' },
        'max-binding-bytes': { type: 'string' },
      },
    }) as { values: Record<string, string | undefined> });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  for (const k of ['model', 'component', 'inputs', 'out']) if (!values[k]) throw new UsageError(`missing --${k}`);
  if (!(COMPONENTS as readonly string[]).includes(values.component!))
    throw new UsageError(`--component must be one of ${COMPONENTS.join(', ')}, got "${values.component}"`);
  const precision = values.precision ?? 'fp32';
  if (precision !== 'fp32' && precision !== 'fp16') throw new UsageError(`--precision must be fp32 or fp16, got "${precision}"`);
  let maxBindingBytes: number | undefined;
  if (values['max-binding-bytes'] !== undefined) {
    maxBindingBytes = Number(values['max-binding-bytes']);
    if (!Number.isInteger(maxBindingBytes) || maxBindingBytes < 1)
      throw new UsageError(`--max-binding-bytes must be a positive integer, got "${values['max-binding-bytes']}"`);
  }
  return {
    model: values.model!,
    component: values.component as Component,
    variant: values.variant,
    precision,
    inputs: values.inputs!,
    out: values.out!,
    maxBindingBytes,
  };
}

type Tensors = Map<string, { data: Float32Array; shape: number[] }>;

async function readInputs(path: string): Promise<Tensors> {
  const f = await readSafetensorsHeader(fileSource(path));
  const out: Tensors = new Map();
  for (const [name, info] of f.tensors) out.set(name, { data: await readTensorF32(f, name), shape: info.shape });
  return out;
}

function need(inputs: Tensors, name: string, rank: number, file: string) {
  const t = inputs.get(name);
  if (!t) throw new Error(`${file}: missing input tensor "${name}" (have: ${[...inputs.keys()].join(', ') || 'none'})`);
  if (t.shape.length !== rank) throw new Error(`${file}: input "${name}" has shape [${t.shape}], expected ${rank} dimensions`);
  return t;
}

/** Builds the graph for the inputs' shapes. */
export async function buildComponentGraph(o: ComponentOptions, inputs: Tensors): Promise<BuiltGraph> {
  const compute = o.precision === 'fp16' ? 'float16' : 'float32';
  const folder: ComponentName = o.component;
  const { config, weights, folder: dir } = await openComponent(o.model, folder, o.variant);
  const configName = `${dir}/config.json`;
  switch (o.component) {
    case 'text_encoder':
    case 'text_encoder_2': {
      const ids = need(inputs, 'input_ids', 2, o.inputs);
      return buildClipTextGraph(config as ClipTextConfig, weights, {
        batch: ids.shape[0],
        seqLen: ids.shape[1],
        compute,
        configName,
        maxBindingBytes: o.maxBindingBytes,
      });
    }
    case 'vae_decoder': {
      const [b, , h, w] = need(inputs, 'latents_scaled', 4, o.inputs).shape;
      return buildVaeDecoderGraph(config as VaeConfig, weights, {
        batch: b,
        height: h,
        width: w,
        compute,
        configName,
        maxBindingBytes: o.maxBindingBytes,
      });
    }
    case 'vae_encoder': {
      const [b, , h, w] = need(inputs, 'image', 4, o.inputs).shape;
      const { buildVaeEncoderGraph } = await import('../workers/model/vae');
      const vc = config as VaeConfig;
      return buildVaeEncoderGraph(vc, weights, { batch: b, height: h, width: w, compute, configName, maxBindingBytes: o.maxBindingBytes, scale: Number(vc['scaling_factor'] ?? 1) });
    }
    case 'unet': {
      const [b, , h, w] = need(inputs, 'sample', 4, o.inputs).shape;
      const t = need(inputs, 'timestep', 1, o.inputs);
      const ehs = need(inputs, 'encoder_hidden_states', 3, o.inputs);
      if (t.data.length !== 1 && t.data.length !== b)
        throw new Error(`${o.inputs}: "timestep" has ${t.data.length} values, expected 1 or ${b}`);
      const { buildUnetGraph } = await import('../workers/model/unet');
      return buildUnetGraph(config as unknown as Parameters<typeof buildUnetGraph>[0], weights, {
        batch: b,
        height: h,
        width: w,
        compute,
        maxBindingBytes: o.maxBindingBytes,
        perSampleTimestep: t.data.length !== 1,
        textTokens: ehs.shape[1],
        fused: o.fused,
      });
    }
  }
}

export async function runComponent(o: ComponentOptions): Promise<Record<string, { data: Float32Array; dims: number[] }>> {
  const inputs = await readInputs(o.inputs);
  const graph = await buildComponentGraph(o, inputs);
  const feeds: Record<string, Float32Array> = {};
  for (const i of graph.inputs) {
    const t = inputs.get(i.name);
    if (!t) throw new Error(`${o.inputs}: missing input tensor "${i.name}"`);
    if (t.shape.join() !== i.shape.join())
      throw new Error(`${o.inputs}: input "${i.name}" has shape [${t.shape}], the graph expects [${i.shape}]`);
    feeds[i.name] = t.data;
  }
  // a graph too big for one wasm instance (4 GiB heap) runs in segments, each in an instance of its own
  const session = await createNodeWasmSession(graph, {
    label: o.component,
    ort,
    createLocal: () => createWasmSession(graph),
    log: (l) => console.error(l),
  });
  let out: Awaited<ReturnType<typeof runWasm>>;
  try {
    out = await runWasm(graph, feeds, session);
  } finally {
    await session.release();
  }
  const tensors: Record<string, TensorToEncode> = {};
  for (const [name, t] of Object.entries(out)) tensors[name] = { dtype: 'F32', shape: t.dims, data: t.data };
  writeFileSync(o.out, encodeSafetensors(tensors, { component: o.component, precision: o.precision, variant: o.variant ?? '' }));
  return out;
}

async function main() {
  let opts: ComponentOptions;
  try {
    opts = parseComponentArgs(process.argv.slice(2));
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`component: ${e.message}\n${USAGE}`);
      process.exit(2);
    }
    throw e;
  }
  const t0 = performance.now();
  try {
    const out = await runComponent(opts);
    for (const [name, t] of Object.entries(out)) console.log(`${name} [${t.dims}]`);
    console.log(`wrote ${opts.out} in ${((performance.now() - t0) / 1000).toFixed(2)} s`);
  } catch (e) {
    console.error(`component: ${(e as Error).message}`);
    process.exit(1);
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await main();
