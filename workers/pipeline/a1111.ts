/**
 * The `parameters` text AUTOMATIC1111's web UI writes into PNGs (and Civitai, ComfyUI loaders,
 * image viewers read), for our generation parameters:
 *
 *   <prompt>
 *   Negative prompt: <negative prompt>
 *   Steps: 25, Sampler: Euler, Schedule type: Automatic, CFG scale: 7.5, Seed: 123, Size: 1024x1024, Model: etri-vilab/koala-700m-llava-cap
 *
 * Layout as A1111's `create_infotext`: the prompt, an optional `Negative prompt:` line, then one line
 * of `key: value` pairs joined by ", "; a value holding `,`, `:` or a newline is JSON-quoted.
 * A1111 omits the negative line when the negative prompt is empty; we write it (empty) when a
 * negative prompt was given as '' so that '' (encoded) and none (zeros) stay distinct.
 * Extra keys of ours (A1111 keeps unknown keys): `Timestep spacing`, `Original size`, `Crop`,
 * `Target size` (only when set), `Variant`, `Version`; image to image: A1111's `Denoising strength` and
 * our `Init image hash` (first 16 hex digits of the input file's sha256).
 * LoRAs are written as A1111 writes them: `<lora:name:scale>` tags at the end of the prompt (A1111's
 * users type them there), one per LoRA applied (scale ≠ 0); parsing takes them out of the prompt again.
 *
 * Parsing follows A1111's `parse_generation_parameters`: the last line holds the parameters when it
 * has at least 3 `key: value` pairs; lines before it are the prompt until one starts with
 * `Negative prompt:`. Like A1111, each prompt line is trimmed (leading/trailing spaces of a line are
 * not preserved) and a prompt line that itself starts with `Negative prompt:` would be misread.
 */
import type { GenerateParams, SchedulerName, TimestepSpacing } from '../protocol';

const SAMPLERS: Record<SchedulerName, [sampler: string, schedule: string]> = {
  euler: ['Euler', 'Automatic'],
  'euler-a': ['Euler a', 'Automatic'],
  'dpmpp-2m': ['DPM++ 2M', 'Automatic'],
  'dpmpp-2m-karras': ['DPM++ 2M', 'Karras'],
  ddim: ['DDIM', 'Automatic'],
};

/** App version written as `Version:`. */
export const APP_VERSION = 'koala-web 0.1.0';

function quote(v: string): string {
  if (!v.includes(',') && !v.includes('\n') && !v.includes(':')) return v;
  return JSON.stringify(v);
}

function num(v: number): string {
  return String(v);
}

/** A1111 `parameters` text for one image (`seed` is that image's own seed). */
export function formatParameters(params: GenerateParams, seed: number = params.seed): string {
  const [sampler, schedule] = SAMPLERS[params.scheduler] ?? [params.scheduler, 'Automatic'];
  const fields: Array<[string, string | undefined]> = [
    ['Steps', num(params.steps)],
    ['Sampler', sampler],
    ['Schedule type', schedule],
    ['CFG scale', num(params.guidance)],
    ['Seed', num(seed)],
    ['Size', `${params.width}x${params.height}`],
    ['Mode', params.mode],
    ['Decoder', params.decoder === 'taesd' ? 'TAESD' : undefined],
    ['VAE', params.vaeRepo],
    ['Denoising strength', params.strength !== undefined ? num(params.strength) : undefined],
    ['Init image hash', params.initImageSha256?.slice(0, 16)],
    ['Model', params.model.repo],
    ['Variant', params.model.variant],
    ['Timestep spacing', params.timestepSpacing],
    ['Original size', params.originalSize ? `${params.originalSize[1]}x${params.originalSize[0]}` : undefined],
    ['Crop', params.cropTopLeft ? `${params.cropTopLeft[0]}x${params.cropTopLeft[1]}` : undefined],
    ['Target size', params.targetSize ? `${params.targetSize[1]}x${params.targetSize[0]}` : undefined],
    ['Version', APP_VERSION],
  ];
  const line = fields
    .filter((f): f is [string, string] => f[1] !== undefined && f[1] !== '')
    .map(([k, v]) => `${k}: ${quote(v)}`)
    .join(', ');
  const neg = params.negativePrompt !== undefined ? `\nNegative prompt: ${params.negativePrompt}` : '';
  const tags = (params.loras ?? []).filter((l) => l.scale !== 0).map((l) => `<lora:${l.name}:${num(l.scale)}>`);
  const prompt = tags.length ? `${params.prompt}${params.prompt ? ' ' : ''}${tags.join(' ')}` : params.prompt;
  return `${prompt}${neg}\n${line}`;
}

/** A1111's `re_param`: key: value pairs (value JSON-quoted or up to the next comma). */
const RE_PARAM = /\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)/g;
const RE_SIZE = /^(\d+)x(\d+)$/;
/** A1111's extra-network tag for a LoRA: `<lora:name>` or `<lora:name:scale>`. */
const RE_LORA = /\s*<lora:([^:>]+)(?::([+-]?[\d.]+))?>/g;

export interface ParsedParameters {
  /** The prompt without `<lora:…>` tags. */
  prompt: string;
  /** `<lora:name:scale>` tags found in the prompt (scale 1 when absent), in order. */
  loras: { name: string; scale: number }[];
  /** undefined when the text has no `Negative prompt:` line. */
  negativePrompt?: string;
  /** Every `key: value` of the parameters line (values unquoted). */
  fields: Record<string, string>;
}

/** Parse A1111 `parameters` text. */
export function parseParameters(text: string): ParsedParameters {
  const all = text.trim().split('\n');
  let last = all.pop() ?? '';
  const lines = all;
  if ([...last.matchAll(RE_PARAM)].length < 3) {
    lines.push(last);
    last = '';
  }
  let prompt = '';
  let negative: string | undefined;
  for (let line of lines) {
    line = line.trim();
    if (negative === undefined && line.startsWith('Negative prompt:')) {
      negative = line.slice(16).trim();
      continue;
    }
    if (negative !== undefined) negative += (negative === '' ? '' : '\n') + line;
    else prompt += (prompt === '' ? '' : '\n') + line;
  }
  const loras: { name: string; scale: number }[] = [];
  prompt = prompt
    .replace(RE_LORA, (_all, name: string, scale: string | undefined) => {
      loras.push({ name, scale: scale === undefined ? 1 : Number(scale) });
      return '';
    })
    .replace(/[ \t]+$/gm, '');
  const fields: Record<string, string> = {};
  for (const m of last.matchAll(RE_PARAM)) {
    let v = m[2]!;
    if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) {
      try {
        v = JSON.parse(v) as string;
      } catch {
        // keep as written
      }
    }
    fields[m[1]!] = v;
  }
  return negative === undefined ? { prompt, loras, fields } : { prompt, loras, negativePrompt: negative, fields };
}

function sizeHW(v: string | undefined): [number, number] | undefined {
  const m = v ? RE_SIZE.exec(v.trim()) : null;
  return m ? [Number(m[2]), Number(m[1])] : undefined; // text is WxH, params are [h, w]
}

/**
 * The generation settings a parsed `parameters` text describes ("reuse settings"). Only fields
 * present and understood are returned; validate the merged result with params.ts.
 */
export function parametersToSettings(parsed: ParsedParameters): Partial<GenerateParams> {
  const f = parsed.fields;
  const out: Partial<GenerateParams> = { prompt: parsed.prompt };
  if (parsed.negativePrompt !== undefined) out.negativePrompt = parsed.negativePrompt;
  const int = (v: string | undefined) => (v !== undefined && /^\d+$/.test(v.trim()) ? Number(v) : undefined);
  const steps = int(f.Steps);
  if (steps !== undefined) out.steps = steps;
  const seed = int(f.Seed);
  if (seed !== undefined) out.seed = seed;
  if (f['CFG scale'] !== undefined && Number.isFinite(Number(f['CFG scale']))) out.guidance = Number(f['CFG scale']);
  const size = sizeHW(f.Size);
  if (size) {
    out.height = size[0];
    out.width = size[1];
  }
  // "DPM++ 2M" + "Schedule type: Karras", or the older combined name "DPM++ 2M Karras"
  const sampler = f.Sampler?.trim();
  if (sampler) {
    const karrasSuffix = sampler.endsWith(' Karras');
    const base = karrasSuffix ? sampler.slice(0, -' Karras'.length) : sampler;
    const schedule = karrasSuffix ? 'Karras' : (f['Schedule type']?.trim() ?? 'Automatic');
    const entries = Object.entries(SAMPLERS) as Array<[SchedulerName, [string, string]]>;
    const hit =
      entries.find(([, [s, c]]) => s === base && c === schedule) ?? entries.find(([, [s, c]]) => s === base && c === 'Automatic');
    if (hit) out.scheduler = hit[0];
  }
  const spacing = f['Timestep spacing'];
  if (spacing === 'leading' || spacing === 'trailing' || spacing === 'linspace') out.timestepSpacing = spacing as TimestepSpacing;
  const orig = sizeHW(f['Original size']);
  if (orig) out.originalSize = orig;
  const target = sizeHW(f['Target size']);
  if (target) out.targetSize = target;
  const crop = f.Crop ? RE_SIZE.exec(f.Crop.trim()) : null;
  if (crop) out.cropTopLeft = [Number(crop[1]), Number(crop[2])];
  if (f.Model) out.model = { repo: f.Model, ...(f.Variant ? { variant: f.Variant } : {}) };
  return out;
}
