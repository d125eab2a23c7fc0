/** Paths and golden-tensor access for the tiny fixture repos (tests only). */
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readSafetensorsHeader, readTensorF32, type SafetensorsFile } from '../safetensors';
import { fileSource } from '../safetensors.node.js';

export const FIXTURES = fileURLToPath(new URL('../../../test/fixtures', import.meta.url));
export const FIXTURE_NAMES = ['tiny-sdxl', 'tiny-koala'] as const;
export type FixtureName = (typeof FIXTURE_NAMES)[number];

export function fixtureDir(name: FixtureName): string {
  return resolve(FIXTURES, name);
}

const cache = new Map<string, Promise<SafetensorsFile>>();

/** Opens `<fixture>/goldens/<file>` (cached). */
export function goldenFile(name: FixtureName, file: string): Promise<SafetensorsFile> {
  const p = resolve(FIXTURES, name, 'goldens', file);
  let f = cache.get(p);
  if (!f) cache.set(p, (f = readSafetensorsHeader(fileSource(p))));
  return f;
}

/** One golden tensor as float32 with its shape. */
export async function golden(name: FixtureName, file: string, tensor: string): Promise<{ data: Float32Array; shape: number[] }> {
  const f = await goldenFile(name, file);
  const info = f.tensors.get(tensor);
  if (!info) throw new Error(`${name}/goldens/${file}: no tensor "${tensor}"`);
  return { data: await readTensorF32(f, tensor), shape: info.shape };
}

/** Case prefixes ("case0", "case1", ...) present in a golden file. */
export async function goldenCases(name: FixtureName, file: string): Promise<string[]> {
  const f = await goldenFile(name, file);
  return [...new Set([...f.tensors.keys()].filter((k) => /^case\d+\./.test(k)).map((k) => k.split('.')[0]))].sort();
}
