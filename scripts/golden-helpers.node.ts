/** Shared by the CLI golden tests (lpw, lora, img2img, inpaint, decoders): safetensors files in and out, the CLI in-process. */
import { readFileSync, writeFileSync } from 'node:fs';
import { bytesSource, encodeSafetensors, readSafetensorsHeader, readTensorF32 } from '../workers/model/safetensors';
import { main } from './generate';

export interface Tensor {
  data: Float32Array;
  shape: number[];
}

/** Every tensor of a safetensors file as float32 with its shape. */
export async function readTensors(path: string): Promise<Record<string, Tensor>> {
  const f = await readSafetensorsHeader(bytesSource(new Uint8Array(readFileSync(path)), path));
  const out: Record<string, Tensor> = {};
  for (const [name, info] of f.tensors) out[name] = { data: await readTensorF32(f, name), shape: info.shape };
  return out;
}

/** A one-tensor file (e.g. `latents` for --latents). */
export function writeTensor(path: string, name: string, t: Tensor): void {
  writeFileSync(path, encodeSafetensors({ [name]: { dtype: 'F32', shape: t.shape, data: t.data } }));
}

/** `npm run generate -- …` in-process: exit code and everything it logged. */
export async function runGenerate(args: string[]): Promise<{ code: number; log: string }> {
  const log: string[] = [];
  const code = await main(args, { log: (l) => log.push(l) });
  return { code, log: log.join('\n') };
}

export const maxAbs = (a: ArrayLike<number>) => Array.from(a).reduce((m, v) => Math.max(m, Math.abs(v)), 0);
