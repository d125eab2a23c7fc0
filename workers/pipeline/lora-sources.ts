/**
 * LoRA references as users write them, and the engine's step from a reference to an opened LoRA.
 *
 *   owner/repo/path/to/file.safetensors                      a file of a hub repo (revision main)
 *   owner/repo@rev/path/to/file.safetensors                  … at a branch, tag or commit
 *   https://huggingface.co/owner/repo/resolve/rev/path       a hub URL (`/blob/` links too)
 *   a local .safetensors file                                (CLI: a path; page: a dropped file)
 *
 * The CLI adds an optional `:scale` suffix (`--lora my.safetensors:0.8`).
 */
import { openLora, LoraFormatError, LoraPartialError, type LoraTargets, type OpenedLora } from '../model/lora';
import { blobSource, type ByteSource } from '../model/safetensors';
import { EngineError, LORA_SCALE, MAX_LORAS, type LoraRef, type LoraSource } from '../protocol';

export { LORA_SCALE, MAX_LORAS, loraNameOf, parseHubLora } from '../protocol';

/** CLI `--lora VALUE`: `<location>[:scale]`, scale default 1. */
export function splitLoraScale(value: string): { location: string; scale: number } {
  const m = /^(.*):([+-]?(?:\d+\.?\d*|\.\d+))$/.exec(value);
  if (m && !/^https?$/i.test(m[1]!)) {
    const scale = Number(m[2]);
    return { location: m[1]!, scale };
  }
  return { location: value, scale: 1 };
}

/** Every problem with a list of LoRA references (empty when valid). */
export function validateLoras(loras: unknown): string[] {
  if (loras === undefined) return [];
  if (!Array.isArray(loras)) return ['loras must be a list'];
  const errors: string[] = [];
  if (loras.length > MAX_LORAS) errors.push(`at most ${MAX_LORAS} LoRAs can be used at once, got ${loras.length}`);
  for (const [i, l] of loras.entries()) {
    const r = l as Partial<LoraRef> | undefined;
    const what = `LoRA ${i + 1}${typeof r?.name === 'string' ? ` (${r.name})` : ''}`;
    if (!r || typeof r !== 'object') {
      errors.push(`${what} must be an object`);
      continue;
    }
    if (typeof r.name !== 'string' || r.name.trim() === '') errors.push(`${what}: name must be a non-empty string`);
    if (typeof r.scale !== 'number' || !Number.isFinite(r.scale) || r.scale < LORA_SCALE.min || r.scale > LORA_SCALE.max) {
      errors.push(`${what}: scale must be a number from ${LORA_SCALE.min} to ${LORA_SCALE.max}, got ${JSON.stringify(r.scale)}`);
    }
    const s = r.source as Partial<LoraSource> | undefined;
    if (!s || (s.kind !== 'hub' && s.kind !== 'local')) errors.push(`${what}: source must be a hub file or a local file`);
    else if (s.kind === 'hub' && (typeof s.repo !== 'string' || !/^[\w.-]+\/[\w.-]+$/.test(s.repo) || typeof s.file !== 'string' || !s.file)) {
      errors.push(`${what}: a hub LoRA needs repo "owner/name" and a file path`);
    } else if (s.kind === 'local' && !(typeof Blob !== 'undefined' && s.blob instanceof Blob)) {
      errors.push(`${what}: the dropped file is not available; add it again`);
    }
  }
  return errors;
}

/** Cache key of a reference's bytes (the scale is not part of it). */
export function loraSourceKey(s: LoraSource): string {
  return s.kind === 'hub' ? `hub|${s.hubUrl ?? ''}|${s.repo}|${s.revision ?? 'main'}|${s.file}` : `local|${s.name}|${s.blob.size}`;
}

/** Bytes of a LoRA reference: local Blobs as they are, hub files through `fetchHub` (the cache). */
export type FetchHubLora = (s: Extract<LoraSource, { kind: 'hub' }>) => Promise<Blob>;

/** Opens LoRAs against one model's weights, keeping each opened file (headers only) by source. */
export class LoraLibrary {
  private readonly opened = new Map<string, Promise<OpenedLora>>();

  constructor(
    private readonly targets: () => LoraTargets,
    private readonly fetchHub: FetchHubLora,
  ) {}

  open(ref: LoraRef): Promise<OpenedLora> {
    const key = `${loraSourceKey(ref.source)}|${ref.name}`;
    let p = this.opened.get(key);
    if (!p) {
      p = (async () => {
        const blob = ref.source.kind === 'local' ? ref.source.blob : await this.fetchHub(ref.source);
        const source: ByteSource = blobSource(blob, ref.source.kind === 'local' ? ref.source.name : ref.source.file);
        return openLora(source, this.targets(), ref.name).catch((e: unknown) => {
          throw asEngineError(e);
        });
      })();
      p.catch(() => this.opened.delete(key));
      this.opened.set(key, p);
    }
    return p;
  }
}

/** LoRA problems are the user's input: `bad-input` with the message as it is. */
export function asEngineError(e: unknown): unknown {
  if (e instanceof LoraFormatError || e instanceof LoraPartialError) return new EngineError('bad-input', e.message);
  return e;
}
