/**
 * Validation of GenerateParams, shared by the CLI and the page (same rules, same messages).
 *
 * Bounds and why:
 * - width/height: integers, multiples of 8 (the VAE's downscale factor: the latent is H/8 × W/8;
 *   diffusers requires the same), from 32 to 2048. 32 px is a 4×4 latent, the smallest that the two
 *   stride-2 downsamplers of SDXL-family U-Nets reduce to exactly 1×1 (the test fixtures run at 48 px);
 *   2048 px is a 256×256 latent: beyond it the U-Net's attention (128×128 = 16,384 tokens at the
 *   640-channel level, 5 GB of fp16 probabilities per image) and the VAE decoder's activations
 *   (128 channels × 2048² × 4 B = 2 GiB per tensor) exceed what WebGPU adapters bind or hold,
 *   and SDXL-family models are trained at ≤ 1536 px anyway.
 * - steps: integer 1..1000 (1000 = the training timesteps; schedulers cannot space more).
 * - guidance: finite and ≥ 0 (≤ 1 disables classifier-free guidance, as in diffusers).
 * - numImages: integer 1..8 (each image runs its own denoising; more only queues GPU work).
 * - seed: integer 0..2^32-1 (image k uses seed + k mod 2^32).
 * - prompts: strings; empty allowed (diffusers allows it). In the `plain` style over-long prompts are
 *   truncated to 75 tokens and reported; `weighted`/`auto` take up to MAX_PROMPT_CHUNKS × 75 tokens
 *   (checked when the prompt is tokenized: long-prompt.ts).
 * - promptStyle: auto, weighted or plain.
 * - loras: at most 8, scale 0..2 each (0 = listed but off), a hub file or a dropped file (lora-sources.ts).
 */
import { EngineError, type GenerateParams } from '../protocol';
import { SCHEDULER_NAMES as SCHEDULERS } from './schedulers';
import { PROMPT_STYLES } from './long-prompt';
import { validateLoras } from './lora-sources';

export const LIMITS = {
  sizeMultiple: 8,
  minSize: 32,
  maxSize: 2048,
  minSteps: 1,
  maxSteps: 1000,
  maxImages: 8,
  maxSeed: 0xffffffff,
  /** Largest value accepted for original/target size micro-conditioning. */
  maxConditioningSize: 16384,
} as const;

export interface ValidateOptions {
  /** Model-specific size multiple (default 8). */
  sizeMultiple?: number;
}

const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v);
const show = (v: unknown) => (typeof v === 'string' ? JSON.stringify(v) : String(v));

function pair(v: unknown, name: string, min: number, errors: string[]): void {
  if (v === undefined) return;
  if (!Array.isArray(v) || v.length !== 2 || !v.every((x) => isInt(x) && x >= min && x <= LIMITS.maxConditioningSize)) {
    errors.push(`${name} must be two integers from ${min} to ${LIMITS.maxConditioningSize}, got ${JSON.stringify(v)}`);
  }
}

/** Every problem with the parameters, one specific message each (empty when valid). */
export function validateParams(p: unknown, options: ValidateOptions = {}): string[] {
  const errors: string[] = [];
  if (!p || typeof p !== 'object') return ['parameters must be an object'];
  const q = p as Record<string, unknown>;
  const mult = options.sizeMultiple ?? LIMITS.sizeMultiple;

  const model = q.model as Record<string, unknown> | undefined;
  if (!model || typeof model !== 'object' || typeof model.repo !== 'string' || model.repo.trim() === '') {
    errors.push('model.repo must name a model (e.g. "etri-vilab/koala-700m-llava-cap")');
  }
  if (typeof q.prompt !== 'string') errors.push(`prompt must be a string, got ${show(q.prompt)}`);
  if (q.negativePrompt !== undefined && typeof q.negativePrompt !== 'string') {
    errors.push(`negativePrompt must be a string or absent, got ${show(q.negativePrompt)}`);
  }
  for (const key of ['width', 'height'] as const) {
    const v = q[key];
    if (!isInt(v)) errors.push(`${key} must be an integer number of pixels, got ${show(v)}`);
    else if (v % mult !== 0) errors.push(`${key} must be a multiple of ${mult}, got ${v} (nearest: ${Math.max(mult, Math.round(v / mult) * mult)})`);
    else if (v < LIMITS.minSize || v > LIMITS.maxSize) errors.push(`${key} must be from ${LIMITS.minSize} to ${LIMITS.maxSize} pixels, got ${v}`);
  }
  if (!isInt(q.steps) || q.steps < LIMITS.minSteps || q.steps > LIMITS.maxSteps) {
    errors.push(`steps must be an integer from ${LIMITS.minSteps} to ${LIMITS.maxSteps}, got ${show(q.steps)}`);
  }
  if (typeof q.guidance !== 'number' || !Number.isFinite(q.guidance) || q.guidance < 0) {
    errors.push(`guidance must be a finite number ≥ 0, got ${show(q.guidance)}`);
  }
  if (typeof q.scheduler !== 'string' || !(SCHEDULERS as readonly string[]).includes(q.scheduler)) {
    errors.push(`scheduler must be one of ${SCHEDULERS.join(', ')}, got ${show(q.scheduler)}`);
  }
  if (q.timestepSpacing !== undefined && !['leading', 'trailing', 'linspace'].includes(q.timestepSpacing as string)) {
    errors.push(`timestepSpacing must be leading, trailing or linspace, got ${show(q.timestepSpacing)}`);
  }
  if (!isInt(q.seed) || q.seed < 0 || q.seed > LIMITS.maxSeed) {
    errors.push(`seed must be an integer from 0 to ${LIMITS.maxSeed}, got ${show(q.seed)}`);
  }
  if (!isInt(q.numImages) || q.numImages < 1 || q.numImages > LIMITS.maxImages) {
    errors.push(`numImages must be an integer from 1 to ${LIMITS.maxImages}, got ${show(q.numImages)}`);
  }
  pair(q.originalSize, 'originalSize [height, width]', 1, errors);
  pair(q.targetSize, 'targetSize [height, width]', 1, errors);
  pair(q.cropTopLeft, 'cropTopLeft [top, left]', 0, errors);
  if (q.precision !== undefined && q.precision !== 'fp32' && q.precision !== 'fp16') {
    errors.push(`precision must be fp32 or fp16, got ${show(q.precision)}`);
  }
  if (q.previewEvery !== undefined && (!isInt(q.previewEvery) || q.previewEvery < 0)) {
    errors.push(`previewEvery must be an integer ≥ 0 (0 = no previews), got ${show(q.previewEvery)}`);
  }
  if (q.promptStyle !== undefined && !(PROMPT_STYLES as readonly unknown[]).includes(q.promptStyle)) {
    errors.push(`promptStyle must be one of ${PROMPT_STYLES.join(', ')}, got ${show(q.promptStyle)}`);
  }
  errors.push(...validateLoras(q.loras));
  if (q.previewer !== undefined && q.previewer !== 'linear' && q.previewer !== 'taesd') errors.push(`previewer must be linear or taesd, got ${show(q.previewer)}`);
  const isBlob = (v: unknown) => typeof Blob !== 'undefined' && v instanceof Blob;
  if (q.initImage !== undefined && !isBlob(q.initImage)) errors.push('initImage must be an image file (Blob)');
  if (q.maskImage !== undefined && !isBlob(q.maskImage)) errors.push('maskImage must be an image file (Blob)');
  if (q.maskImage !== undefined && q.initImage === undefined) errors.push('a mask needs an input image (initImage) to inpaint');
  if (q.strength !== undefined && q.initImage === undefined && q.initImageSha256 === undefined) errors.push('strength needs an input image (initImage)');
  if (q.decoder !== undefined && q.decoder !== 'full' && q.decoder !== 'taesd') errors.push(`decoder must be full or taesd, got ${show(q.decoder)}`);
  if (q.mode !== undefined && q.mode !== 'img2img' && q.mode !== 'inpaint') errors.push(`mode must be img2img or inpaint (or absent: text to image), got ${show(q.mode)}`);
  if (q.strength !== undefined && (typeof q.strength !== 'number' || !(q.strength >= 0 && q.strength <= 1))) {
    errors.push(`strength must be a number from 0 to 1, got ${show(q.strength)}`);
  }
  return errors;
}

/** Throws EngineError('bad-input') listing every problem; narrows the type when valid. */
export function assertValidParams(p: unknown, options: ValidateOptions = {}): asserts p is GenerateParams {
  const errors = validateParams(p, options);
  if (errors.length > 0) throw new EngineError('bad-input', `Invalid generation parameters: ${errors.join('; ')}.`);
}
