/**
 * Command-line options of `npm run generate`. Parsing is separate from running so it can be
 * tested; every problem becomes a UsageError (exit code 2 in the CLI).
 */
import { parseArgs } from 'node:util';
import type { Precision, PromptStyle, SchedulerName, TimestepSpacing } from '../workers/protocol';
import { MAX_PROMPT_CHUNKS, PROMPT_STYLES } from '../workers/pipeline/long-prompt';
import { LORA_SCALE, MAX_LORAS, splitLoraScale } from '../workers/pipeline/lora-sources';

export class UsageError extends Error {}

export const SCHEDULERS: readonly SchedulerName[] = ['euler', 'euler-a', 'dpmpp-2m', 'dpmpp-2m-karras', 'ddim'];
const SPACINGS: readonly TimestepSpacing[] = ['leading', 'trailing', 'linspace'];

export interface GenerateOptions {
  model: string;
  revision: string;
  hubUrl?: string;
  cacheDir?: string;
  variant?: string;
  prompts: string[];
  /** undefined = diffusers' None; otherwise one per prompt (a single one is repeated). */
  negativePrompts?: string[];
  promptStyle?: PromptStyle;
  steps?: number;
  guidance?: number;
  scheduler?: SchedulerName;
  timestepSpacing?: TimestepSpacing;
  width?: number;
  height?: number;
  originalSize?: [number, number];
  cropTopLeft?: [number, number];
  targetSize?: [number, number];
  seed?: number;
  numImages: number;
  precision: Precision;
  out: string;
  latents?: string;
  stepNoise?: string;
  dump?: string;
  /** Image-to-image: a PNG file and the strength (0–1, default 0.8). */
  initImage?: string;
  strength?: number;
  /** Inpainting: a PNG mask (white = repaint). */
  mask?: string;
  /** Final decode: the model's VAE (default) or the tiny decoder. */
  decoder: 'full' | 'taesd';
  /** Tiny decoder folder or hub repo (default madebyollin/taesdxl). */
  taesd?: string;
  /** A replacement VAE folder or hub repo (e.g. madebyollin/sdxl-vae-fp16-fix). */
  vae?: string;
  /** `--lora LOCATION[:scale]`, in order. */
  loras: { location: string; scale: number }[];
  loraAllowPartial: boolean;
  quiet: boolean;
}

export const GENERATE_USAGE = `Usage: npm run generate -- --model DIR|REPO_ID --prompt TEXT [options]

Model
  --model DIR|REPO_ID        a local diffusers folder, or a Hugging Face repo id (downloaded, cached, verified)
  --revision REV             hub revision (default main)
  --hub-url URL              hub base URL (default https://huggingface.co)
  --cache-dir DIR            download cache (default $KOALA_WEB_CACHE or ~/.cache/koala-web)
  --variant fp16             use the *.fp16.safetensors weight files
  --precision fp32|fp16      compute precision (wasm backend: fp32 only)
Prompt
  --prompt TEXT              repeatable: several prompts make a batch
  --negative-prompt TEXT     repeatable (one, or one per prompt). Absent = none (zeros when the model's
                             force_zeros_for_empty_prompt is set); --negative-prompt "" encodes the empty string
  --prompt-style S           ${PROMPT_STYLES.join('|')} (default auto). plain = diffusers StableDiffusionXLPipeline
                             (77 tokens, longer prompts truncated, brackets are text); weighted = A1111 weights
                             (word:1.3) ((word)) [word] \\( BREAK and prompts up to ${MAX_PROMPT_CHUNKS}×75 tokens, as diffusers'
                             lpw_stable_diffusion_xl; auto = weighted for prompts over 75 tokens or with that syntax
Sampling
  --steps N                  1..1000 (default 25, the KOALA model card's)
  --guidance G               classifier-free guidance scale, 0..100; <= 1 disables CFG (default 7.5)
  --scheduler NAME           ${SCHEDULERS.join('|')} (default euler)
  --timestep-spacing S       ${SPACINGS.join('|')} (default: the repo's scheduler_config.json)
  --width W --height H       multiples of 8 (default: unet sample_size * 8)
  --original-size HxW --crop TOPxLEFT --target-size HxW   SDXL micro-conditioning
  --seed N                   0..4294967295 (default: random, printed)
  --num-images N             images per prompt (1..8)
Image to image
  --init-image FILE.png      start from this image (diffusers StableDiffusionXLImg2ImgPipeline): VAE-encoded
                             (the latent mean), noised to where --strength of the schedule is left, denoised.
                             Default size: the image's, rounded down to a multiple of 8; another --width/--height
                             scales it to cover that size and crops the centre (said on stderr)
  --strength S               0..1 (default 0.8): the share of the steps that run; 0 returns the input
                             --latents then gives the noise added to the image
  --mask FILE.png            inpainting (diffusers StableDiffusionXLInpaintPipeline): white = repaint, black = keep;
                             resized like the image when its size differs; needs --init-image. A 4-channel U-Net
                             gets the kept part blended back every step; a 9-channel inpainting U-Net sees the mask
LoRA
  --lora FILE_OR_REPO[:S]    repeatable (at most ${MAX_LORAS}): a local .safetensors file, owner/repo/file.safetensors
                             (owner/repo@rev/file…), or a hub file URL; scale S from ${LORA_SCALE.min} to ${LORA_SCALE.max} (default 1).
                             diffusers/PEFT and kohya key layouts; fused into the weights before the first step
  --lora-allow-partial       apply a LoRA even when only part of its modules exist in this model
                             (default: refuse, naming the unmatched keys)
Decoder
  --decoder full|taesd       the model's VAE in fp32 (default), or the tiny decoder (TAESDXL: ~1 M parameters,
                             milliseconds on a GPU, slightly softer images)
  --taesd DIR|REPO           the tiny decoder: a diffusers AutoencoderTiny folder or hub repo (default madebyollin/taesdxl)
  --vae DIR|REPO             another VAE (an AutoencoderKL folder or repo), e.g. madebyollin/sdxl-vae-fp16-fix: with
                             force_upcast false it decodes in fp16 under --precision fp16 (the stock SDXL VAE overflows
                             fp16 and always decodes in fp32)
Output
  --out FILE.png             output file (numbered when several images) (default out.png)
  --latents FILE             safetensors with tensor 'latents' [B,4,H/8,W/8] fp32, replaces the seeded noise
  --step-noise FILE          safetensors with 'step_noise.00', 'step_noise.01', ... for euler-a
  --dump FILE                safetensors with the intermediate tensors (embeddings, latents, image)
  --quiet                    no progress on stderr
`;

function int(name: string, v: string | undefined, min: number, max: number): number | undefined {
  if (v === undefined) return undefined;
  if (!/^-?\d+$/.test(v.trim())) throw new UsageError(`--${name} must be an integer, got "${v}"`);
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new UsageError(`--${name} must be between ${min} and ${max}, got ${v}`);
  }
  return n;
}

function pair(name: string, v: string | undefined): [number, number] | undefined {
  if (v === undefined) return undefined;
  const m = /^(\d+)x(\d+)$/i.exec(v.trim());
  if (!m) throw new UsageError(`--${name} must look like 1024x1024 (two integers separated by x), got "${v}"`);
  return [Number(m[1]), Number(m[2])];
}

function strength(v: string | undefined, initImage: string | undefined): number | undefined {
  // (the mask check lives here too: both need --init-image)
  if (v === undefined) return initImage ? 0.8 : undefined;
  if (!initImage) throw new UsageError('--strength needs --init-image (it is the share of the schedule run from that image)');
  const s = Number(v);
  if (v.trim() === '' || !Number.isFinite(s) || s < 0 || s > 1) throw new UsageError(`--strength must be a number from 0 to 1, got "${v}"`);
  return s;
}

function decoderArg(v: string | undefined): 'full' | 'taesd' {
  if (v === undefined || v === 'full' || v === 'taesd') return v ?? 'full';
  throw new UsageError(`--decoder must be full or taesd, got "${v}"`);
}

function parseLoraArgs(values: string[]): { location: string; scale: number }[] {
  if (values.length > MAX_LORAS) throw new UsageError(`--lora: at most ${MAX_LORAS} LoRAs, got ${values.length}`);
  return values.map((v) => {
    const { location, scale } = splitLoraScale(v);
    if (!location.trim()) throw new UsageError(`--lora "${v}": name a .safetensors file, owner/repo/file.safetensors or a hub URL`);
    if (!Number.isFinite(scale) || scale < LORA_SCALE.min || scale > LORA_SCALE.max) {
      throw new UsageError(`--lora "${v}": the scale must be from ${LORA_SCALE.min} to ${LORA_SCALE.max}, got ${scale}`);
    }
    return { location, scale };
  });
}

export function parseGenerateArgs(argv: string[]): GenerateOptions {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        model: { type: 'string' },
        revision: { type: 'string' },
        'hub-url': { type: 'string' },
        'cache-dir': { type: 'string' },
        variant: { type: 'string' },
        prompt: { type: 'string', multiple: true },
        'negative-prompt': { type: 'string', multiple: true },
        'prompt-style': { type: 'string' },
        steps: { type: 'string' },
        guidance: { type: 'string' },
        scheduler: { type: 'string' },
        'timestep-spacing': { type: 'string' },
        width: { type: 'string' },
        height: { type: 'string' },
        'original-size': { type: 'string' },
        crop: { type: 'string' },
        'target-size': { type: 'string' },
        seed: { type: 'string' },
        'num-images': { type: 'string' },
        precision: { type: 'string' },
        out: { type: 'string' },
        latents: { type: 'string' },
        'step-noise': { type: 'string' },
        dump: { type: 'string' },
        lora: { type: 'string', multiple: true },
        'init-image': { type: 'string' },
        mask: { type: 'string' },
        decoder: { type: 'string' },
        taesd: { type: 'string' },
        vae: { type: 'string' },
        strength: { type: 'string' },
        'lora-allow-partial': { type: 'boolean' },
        quiet: { type: 'boolean' },
        help: { type: 'boolean' },
      },
    });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const v = parsed.values;
  if (v.help) throw new UsageError('');
  if (!v.model) throw new UsageError('--model is required (a diffusers folder or a hub repo id)');
  const prompts = v.prompt ?? [];
  if (prompts.length === 0) throw new UsageError('--prompt is required (give --prompt "" for an empty prompt)');
  const negs = v['negative-prompt'];
  if (negs && negs.length !== 1 && negs.length !== prompts.length) {
    throw new UsageError(`--negative-prompt was given ${negs.length} times; give it once or once per --prompt (${prompts.length})`);
  }
  const scheduler = v.scheduler as SchedulerName | undefined;
  if (scheduler !== undefined && !SCHEDULERS.includes(scheduler)) {
    throw new UsageError(`unknown --scheduler "${v.scheduler}"; choose one of ${SCHEDULERS.join(', ')}`);
  }
  const promptStyle = v['prompt-style'] as PromptStyle | undefined;
  if (promptStyle !== undefined && !PROMPT_STYLES.includes(promptStyle)) {
    throw new UsageError(`unknown --prompt-style "${promptStyle}"; choose one of ${PROMPT_STYLES.join(', ')}`);
  }
  const spacing = v['timestep-spacing'] as TimestepSpacing | undefined;
  if (spacing !== undefined && !SPACINGS.includes(spacing)) {
    throw new UsageError(`unknown --timestep-spacing "${spacing}"; choose one of ${SPACINGS.join(', ')}`);
  }
  const precision = (v.precision ?? 'fp32') as Precision;
  if (precision !== 'fp32' && precision !== 'fp16') throw new UsageError(`--precision must be fp32 or fp16, got "${v.precision}"`);
  let guidance: number | undefined;
  if (v.guidance !== undefined) {
    guidance = Number(v.guidance);
    if (v.guidance.trim() === '' || !Number.isFinite(guidance) || guidance < 0 || guidance > 100) {
      throw new UsageError(`--guidance must be a finite number between 0 and 100, got "${v.guidance}"`);
    }
  }
  const size = (name: string, s: string | undefined) => {
    const n = int(name, s, 8, 4096);
    if (n !== undefined && n % 8 !== 0) throw new UsageError(`--${name} must be a multiple of 8 (the VAE downsamples by 8), got ${n}`);
    return n;
  };
  if (v.mask && !v['init-image']) throw new UsageError('--mask needs --init-image (the picture to inpaint)');
  return {
    model: v.model,
    revision: v.revision ?? 'main',
    hubUrl: v['hub-url'],
    cacheDir: v['cache-dir'],
    variant: v.variant,
    prompts,
    negativePrompts: negs ? (negs.length === 1 ? prompts.map(() => negs[0]) : negs) : undefined,
    promptStyle,
    steps: int('steps', v.steps, 1, 1000),
    guidance,
    scheduler,
    timestepSpacing: spacing,
    width: size('width', v.width),
    height: size('height', v.height),
    originalSize: pair('original-size', v['original-size']),
    cropTopLeft: pair('crop', v.crop),
    targetSize: pair('target-size', v['target-size']),
    seed: int('seed', v.seed, 0, 4294967295),
    numImages: int('num-images', v['num-images'], 1, 8) ?? 1,
    precision,
    out: v.out ?? 'out.png',
    latents: v.latents,
    stepNoise: v['step-noise'],
    dump: v.dump,
    initImage: v['init-image'],
    mask: v.mask,
    decoder: decoderArg(v.decoder),
    taesd: v.taesd,
    vae: v.vae,
    strength: strength(v.strength, v['init-image']),
    loras: parseLoraArgs(v.lora ?? []),
    loraAllowPartial: v['lora-allow-partial'] ?? false,
    quiet: v.quiet ?? false,
  };
}
