/** Test helpers (Node): the U-Net golden cases of the tiny fixtures and the float64 reference on them. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readTensorF32 } from './safetensors';
import { fixtureDir, golden, type FixtureName } from './testing/fixtures.node.js';
import { unetReference } from './unet-reference';
import type { WeightIndex } from './weights';

export interface UnetCase { index: number; batch: number; latent_hw: [number, number]; forward_upsample_size: boolean }

/** `unet[]` of goldens/cases.json */
export function unetCases(fx: FixtureName): UnetCase[] {
  return (JSON.parse(readFileSync(join(fixtureDir(fx), 'goldens', 'cases.json'), 'utf8')) as { unet: UnetCase[] }).unet;
}

export const UNET_INPUTS = ['sample', 'timestep', 'encoder_hidden_states', 'text_embeds', 'time_ids'] as const;

export const caseTag = (c: UnetCase) => `case${c.index} B=${c.batch} ${c.latent_hw.join('x')}${c.forward_upsample_size ? ' (upsample_size)' : ''}`;

/** The golden inputs of a case, by graph input name. */
export async function unetCaseInputs(fx: FixtureName, c: UnetCase): Promise<Record<string, Float32Array>> {
  const feeds: Record<string, Float32Array> = {};
  for (const n of UNET_INPUTS) feeds[n] = (await golden(fx, 'unet.safetensors', `case${c.index}.${n}`)).data;
  return feeds;
}

export async function unetCaseOutput(fx: FixtureName, c: UnetCase): Promise<{ data: Float32Array; shape: number[] }> {
  return golden(fx, 'unet.safetensors', `case${c.index}.out`);
}

/** The float64 reference forward of a case with the weights of `idx` as stored (e.g. fp16-rounded). */
export async function unetCaseReference(fx: FixtureName, c: UnetCase, config: Record<string, unknown>, idx: WeightIndex): Promise<Float64Array> {
  const w = new Map<string, Float32Array>();
  for (const n of idx.names()) w.set(n, await readTensorF32(idx.get(n)!.file, n));
  const f = await unetCaseInputs(fx, c);
  const ehsShape = (await golden(fx, 'unet.safetensors', `case${c.index}.encoder_hidden_states`)).shape;
  const out = unetReference(config, (n) => {
    const t = w.get(n);
    if (!t) throw new Error(`reference: no tensor ${n}`);
    return t;
  }, {
    sample: f.sample, sampleShape: [c.batch, 4, ...c.latent_hw], timestep: f.timestep,
    encoderHiddenStates: f.encoder_hidden_states, ehsShape, textEmbeds: f.text_embeds, timeIds: f.time_ids,
  });
  return out.d;
}

export function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}
