/**
 * A seeded random-weight, full-size SDXL-family checkpoint in exact diffusers layout, for the full-size
 * checks and benchmarks (never a download). Tensor names and shapes come from test/fixtures/koala-configs/
 * (`<name>.keys.json`, the state_dict of the real classes); tokenizers, scheduler config and model_index.json
 * are the tiny fixture's (the real CLIP vocabulary and the verbatim SDXL-base scheduler config).
 *
 *   npm run fullsize:checkpoint -- --out DIR [--model koala-700m|koala-1b|sdxl-base] [--seed N] [--variants fp32,fp16]
 *
 * Each tensor's values are a deterministic function of (seed, tensor name): a xorshift32 stream seeded from
 * both picks entries of a fixed table of 65,536 normal deviates, scaled per tensor (norm weights ≈ 1, biases
 * and embeddings small, matrices 0.5/sqrt(fan_in), which keeps activations O(1) through every layer).
 * `*.fp16.safetensors` holds the same values rounded to fp16, like the hub's fp16 variants. Files are
 * written in 32 MiB chunks (never a whole file in memory); an existing file of the right size is kept
 * unless `fresh`. A `.complete` file marks a finished folder (its JSON names model, seed and variants).
 */
import {
  closeSync,
  cpSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  rmSync,
  statfsSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join, resolve } from 'node:path';
import { safetensorsHeader, tensorStream, tensorTables } from '../../workers/bench/random-weights';

const ROOT = resolve(import.meta.dirname, '../..');
const CONFIGS = join(ROOT, 'test/fixtures/koala-configs');
const TINY = join(ROOT, 'test/fixtures/tiny-koala');

export const FULLSIZE_MODELS = ['koala-700m', 'koala-1b', 'sdxl-base'] as const;
export type FullsizeModel = (typeof FULLSIZE_MODELS)[number];
export type Variant = 'fp32' | 'fp16';

interface KeyList {
  class: string;
  parameters: number;
  tensors: Record<string, number[]>;
}

function keyList(name: string): KeyList {
  return JSON.parse(readFileSync(join(CONFIGS, `${name}.keys.json`), 'utf8')) as KeyList;
}

/** The four weight-carrying components: folder, config/key-list name, weight file stem. */
export function components(model: FullsizeModel): { folder: string; config: string; stem: string }[] {
  return [
    { folder: 'text_encoder', config: 'clip-vit-l-text-encoder', stem: 'model' },
    { folder: 'text_encoder_2', config: 'clip-vit-bigg-text-encoder', stem: 'model' },
    { folder: 'unet', config: `${model}-unet`, stem: 'diffusion_pytorch_model' },
    { folder: 'vae', config: 'sdxl-vae', stem: 'diffusion_pytorch_model' },
  ];
}

/** Bytes the checkpoint takes on disk for these variants (headers excluded). */
export function checkpointBytes(model: FullsizeModel, variants: Variant[]): number {
  let params = 0;
  for (const c of components(model)) params += keyList(c.config).parameters;
  return variants.reduce((sum, v) => sum + params * (v === 'fp16' ? 2 : 4), 0);
}

export { tensorInit } from '../../workers/bench/random-weights';

interface OpenFile {
  fd: number;
  bpe: 2 | 4;
}

function header(tensors: Record<string, number[]>, dtype: 'F16' | 'F32'): { bytes: Buffer; total: number } {
  const h = safetensorsHeader(tensors, dtype);
  return { bytes: Buffer.from(h.bytes), total: h.total };
}

/**
 * Writes one component's weight files (one per variant) in a single pass over the values.
 * Returns the bytes written (0 for files that were already complete).
 */
function writeComponent(
  dir: string,
  c: { folder: string; config: string; stem: string },
  seed: number,
  variants: Variant[],
  fresh: boolean,
): number {
  const tensors = keyList(c.config).tensors;
  const names = Object.keys(tensors).sort();
  const todo: (OpenFile & { variant: Variant })[] = [];
  let written = 0;
  mkdirSync(join(dir, c.folder), { recursive: true });
  for (const variant of variants) {
    const dtype = variant === 'fp16' ? 'F16' : 'F32';
    const path = join(dir, c.folder, `${c.stem}${variant === 'fp16' ? '.fp16' : ''}.safetensors`);
    const h = header(tensors, dtype);
    if (!fresh && existsSync(path) && statSync(path).size === h.total) continue;
    const fd = openSync(path, 'w');
    writeSync(fd, h.bytes);
    todo.push({ fd, bpe: variant === 'fp16' ? 2 : 4, variant });
    written += h.total;
  }
  if (!todo.length) return 0;
  try {
    const CHUNK = 8 << 20; // elements: 32 MiB of fp32
    const buf32 = new Float32Array(CHUNK);
    const buf16 = new Uint16Array(CHUNK);
    const want16 = todo.some((f) => f.bpe === 2);
    const want32 = todo.some((f) => f.bpe === 4);
    for (const n of names) {
      const { f32: table32, f16: table16 } = tensorTables(n, tensors[n]!);
      tensorStream(seed, n, tensors[n]!.reduce((a, b) => a * b, 1), CHUNK, (idx, k) => {
        for (let i = 0; i < k; i++) {
          const j = idx[i]!;
          if (want32) buf32[i] = table32[j]!;
          if (want16) buf16[i] = table16[j]!;
        }
        for (const f of todo)
          writeSync(f.fd, f.bpe === 2 ? new Uint8Array(buf16.buffer, 0, k * 2) : new Uint8Array(buf32.buffer, 0, k * 4));
      });
    }
  } finally {
    for (const f of todo) closeSync(f.fd);
  }
  return written;
}

export interface CheckpointOptions {
  out: string;
  model?: FullsizeModel;
  seed?: number;
  variants?: Variant[];
  fresh?: boolean;
  log?: (line: string) => void;
}

export interface CheckpointInfo {
  dir: string;
  model: FullsizeModel;
  seed: number;
  variants: Variant[];
  /** Bytes written by this call (0 when the folder was already complete). */
  bytesWritten: number;
  seconds: number;
}

/** Writes (or completes) the folder; a folder whose `.complete` matches is returned at once. */
export function writeRandomCheckpoint(opts: CheckpointOptions): CheckpointInfo {
  const t0 = performance.now();
  const dir = resolve(opts.out);
  const model = opts.model ?? 'koala-700m';
  const seed = opts.seed ?? 1;
  const variants = opts.variants ?? ['fp32', 'fp16'];
  if (!FULLSIZE_MODELS.includes(model)) throw new Error(`unknown model "${model}"; one of ${FULLSIZE_MODELS.join(', ')}`);
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new Error(`seed must be an integer 0..4294967295, got ${seed}`);
  const marker = join(dir, '.complete');
  const stamp = JSON.stringify({ model, seed, variants: [...variants].sort() });
  if (!opts.fresh && existsSync(marker)) {
    // a complete folder of the same model and seed that has (at least) these variants is used as it is
    const done = JSON.parse(readFileSync(marker, 'utf8')) as { model: string; seed: number; variants: string[] };
    if (done.model === model && done.seed === seed && variants.every((v) => done.variants.includes(v))) {
      return { dir, model, seed, variants: done.variants as Variant[], bytesWritten: 0, seconds: 0 };
    }
  }
  mkdirSync(dir, { recursive: true });
  // Files of the right size are kept only when they were written for this same model, seed and variants.
  const writing = join(dir, '.writing');
  const previous = [marker, writing].filter((p) => existsSync(p)).map((p) => readFileSync(p, 'utf8').trim());
  const fresh = !!opts.fresh || previous.some((p) => p !== stamp);
  rmSync(marker, { force: true });
  writeFileSync(writing, stamp + '\n');
  const need = checkpointBytes(model, variants);
  const free = statfsSync(dir).bavail * statfsSync(dir).bsize;
  if (free < need * 1.02) {
    throw new Error(
      `${dir}: the ${model} checkpoint (${variants.join(' + ')}) needs ${(need / 2 ** 30).toFixed(1)} GiB of disk, ${(free / 2 ** 30).toFixed(1)} GiB free`,
    );
  }
  for (const rel of ['model_index.json', 'scheduler', 'tokenizer', 'tokenizer_2'])
    cpSync(join(TINY, rel), join(dir, rel), { recursive: true });
  let bytesWritten = 0;
  for (const c of components(model)) {
    mkdirSync(join(dir, c.folder), { recursive: true });
    writeFileSync(join(dir, c.folder, 'config.json'), readFileSync(join(CONFIGS, `${c.config}.json`)));
    const t = performance.now();
    const n = writeComponent(dir, c, seed, variants, fresh);
    bytesWritten += n;
    opts.log?.(
      `${c.folder}: ${n ? `${(n / 2 ** 30).toFixed(2)} GiB written in ${((performance.now() - t) / 1000).toFixed(1)} s` : 'already complete'}`,
    );
  }
  writeFileSync(marker, stamp + '\n');
  rmSync(writing, { force: true });
  return { dir, model, seed, variants, bytesWritten, seconds: (performance.now() - t0) / 1000 };
}
