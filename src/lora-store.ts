/**
 * The user's LoRA list, kept in the browser's IndexedDB (its own database, apart from the gallery and the
 * engine's model cache), so it survives reloads. A dropped file is kept as a Blob under its own key, so a
 * change of scale or a toggle rewrites only the small entry, never the file.
 *
 * The pure helpers (parsing what the user typed, the refs a generation sends, the gallery's Blob-free copy
 * of the parameters, the report's wording) are unit-tested in lora-store.test.ts.
 */
import { createStore, delMany, entries, set, type UseStore } from 'idb-keyval';
import {
  LORA_SCALE,
  MAX_LORAS,
  loraNameOf,
  parseHubLora,
  type GenerateParams,
  type LoraRef,
  type LoraReport,
  type LoraSource,
} from '../workers/protocol';

export type HubLoraSource = Extract<LoraSource, { kind: 'hub' }>;
export type LocalLoraSource = Extract<LoraSource, { kind: 'local' }>;

export interface StoredLora {
  id: string;
  /** A1111's `<lora:name:scale>` name. */
  name: string;
  source: LoraSource;
  /** 0–2 (LORA_SCALE). */
  scale: number;
  /** Apply even when only part of the LoRA matches this model. */
  allowPartial: boolean;
  /** Off = kept in the list, not sent. Default on. */
  enabled?: boolean;
  /** Position in the list (creation time). */
  addedAt: number;
}

/** A LoRA reference as the gallery keeps it: a local file by name only (the file itself stays in the LoRA list). */
export type SavedLoraSource = HubLoraSource | { kind: 'local'; name: string };
export type SavedLoraRef = Omit<LoraRef, 'source'> & { source: SavedLoraSource };
/** GenerateParams without any Blob: what a gallery item keeps (the input image and mask are left out: src/input-image.ts). */
export type SavedParams = Omit<GenerateParams, 'loras' | 'initImage' | 'maskImage'> & { loras?: SavedLoraRef[] };

// ---- pure helpers ---------------------------------------------------------------------------------

export function clampScale(v: number): number {
  if (!Number.isFinite(v)) return 1;
  const r = Math.round(v * 100) / 100;
  return Math.min(LORA_SCALE.max, Math.max(LORA_SCALE.min, r));
}

export function newLoraId(): string {
  return `lora-${Date.now().toString(36)}-${crypto.getRandomValues(new Uint32Array(1))[0]!.toString(36)}`;
}

export function newLora(source: LoraSource, now = Date.now()): StoredLora {
  const name = loraNameOf(source.kind === 'hub' ? source.file : source.name);
  return { id: newLoraId(), name, source, scale: 1, allowPartial: false, enabled: true, addedAt: now };
}

/**
 * What the user typed into "add by text": a hub source (with `defaultHubUrl` when the text names no hub),
 * or a message saying why it is not one.
 */
export function parseLoraText(text: string, defaultHubUrl?: string): { source: HubLoraSource } | { error: string } {
  const t = text.trim();
  if (!t) return { error: 'Type a hub file, e.g. owner/repo/file.safetensors, or paste its hub URL.' };
  let hub: HubLoraSource | undefined;
  try {
    hub = parseHubLora(t);
  } catch (e) {
    return { error: (e as Error).message };
  }
  if (!hub) {
    return {
      error: /\.safetensors$/i.test(t)
        ? `"${t}" is not a hub file: write owner/repo/file.safetensors (or owner/repo@revision/…), or add a file from this device with "Add file".`
        : `"${t}" is not a .safetensors file of a hub repo: write owner/repo/file.safetensors or paste a hub URL.`,
    };
  }
  if (!/\.safetensors$/i.test(hub.file)) return { error: `${hub.file} is not a .safetensors file.` };
  const source: HubLoraSource = { kind: 'hub', repo: hub.repo, file: hub.file };
  if (hub.revision) source.revision = hub.revision;
  const hubUrl = hub.hubUrl ?? defaultHubUrl;
  if (hubUrl) source.hubUrl = hubUrl.replace(/\/+$/, '');
  return { source };
}

/** Same file, same place: adding it twice is refused. */
export function sameSource(a: LoraSource, b: LoraSource): boolean {
  if (a.kind === 'hub' && b.kind === 'hub') {
    return (
      a.repo === b.repo && a.file === b.file && (a.revision ?? 'main') === (b.revision ?? 'main') && (a.hubUrl ?? '') === (b.hubUrl ?? '')
    );
  }
  if (a.kind === 'local' && b.kind === 'local') return a.name === b.name && a.blob.size === b.blob.size;
  return false;
}

/** Why `add` cannot add this source to `list` (undefined = it can). */
export function cannotAdd(list: readonly StoredLora[], source: LoraSource): string | undefined {
  if (list.length >= MAX_LORAS) return `At most ${MAX_LORAS} LoRAs; remove one first.`;
  const dup = list.find((l) => sameSource(l.source, source));
  if (dup) return `${dup.name} is already in the list.`;
  return undefined;
}

/** A name unique in `list` (A1111 tags must tell the LoRAs apart): `style`, `style-2`, … */
export function uniqueName(list: readonly StoredLora[], name: string): string {
  const taken = new Set(list.map((l) => l.name));
  if (!taken.has(name)) return name;
  for (let i = 2; ; i++) if (!taken.has(`${name}-${i}`)) return `${name}-${i}`;
}

/** The LoRAs a generation uses: enabled, scale > 0, in list order. */
export function activeLoraRefs(list: readonly StoredLora[]): LoraRef[] {
  return list
    .filter((l) => l.enabled !== false && l.scale > 0)
    .slice(0, MAX_LORAS)
    .map((l) => {
      const ref: LoraRef = { name: l.name, source: l.source, scale: l.scale };
      if (l.allowPartial) ref.allowPartial = true;
      return ref;
    });
}

/** The reference `inspectLora` checks (scale does not matter to the report). */
export function inspectRef(l: StoredLora): LoraRef {
  return { name: l.name, source: l.source, scale: l.scale, allowPartial: l.allowPartial || undefined };
}

export function savedSource(s: LoraSource | SavedLoraSource): SavedLoraSource {
  if (s.kind === 'local') return { kind: 'local', name: s.name };
  const out: HubLoraSource = { kind: 'hub', repo: s.repo, file: s.file };
  if (s.revision) out.revision = s.revision;
  if (s.hubUrl) out.hubUrl = s.hubUrl;
  return out;
}

/** The parameters as the gallery keeps them: local LoRA files by name only, never their bytes. */
export function stripLoraBlobs(params: GenerateParams | SavedParams): SavedParams {
  if (!params.loras) return params as SavedParams;
  return { ...params, loras: params.loras.map((l) => ({ ...l, source: savedSource(l.source) })) };
}

/** `name:1`, `style:0.55` (A1111's tag without the brackets). */
export function loraTag(l: { name: string; scale: number }): string {
  return `${l.name}:${Number(l.scale.toFixed(2))}`;
}

const COMPONENT_LABELS: [keyof LoraReport['perComponent'], string][] = [
  ['unet', 'U-Net'],
  ['text_encoder', 'text encoder'],
  ['text_encoder_2', 'text encoder 2'],
];

/** "U-Net 16 · text encoder 4 · text encoder 2 4" (components with matches only). */
export function perComponentText(r: LoraReport): string {
  return COMPONENT_LABELS.filter(([k]) => r.perComponent[k] > 0)
    .map(([k, label]) => `${label} ${r.perComponent[k]}`)
    .join(' · ');
}

/** The one-line summary of a report: full match, or partial with what is missing. */
export function reportSummary(r: LoraReport): { full: boolean; text: string } {
  if (r.unmatchedCount === 0 && r.matched === r.modules) {
    const per = perComponentText(r);
    return { full: true, text: `Matches ${r.matched} of ${r.modules} modules${per ? ` (${per})` : ''}` };
  }
  const missing = r.unmatchedCount || r.modules - r.matched;
  const eg = r.unmatched.slice(0, 3);
  const more = eg.length ? ` (e.g. ${eg.join(', ')}${missing > eg.length ? ', …' : ''})` : '';
  return { full: false, text: `Matches ${r.matched} of ${r.modules} — ${missing} not in this model${more}` };
}

/** Where a LoRA comes from, for its row: `owner/repo/file` (+ revision, + hub host when not huggingface.co) or "local file, 12.3 MB". */
export function sourceText(s: LoraSource | SavedLoraSource, formatBytes: (n: number) => string): string {
  if (s.kind === 'local') return 'blob' in s ? `local file, ${formatBytes(s.blob.size)}` : 'local file';
  let host = '';
  if (s.hubUrl) {
    try {
      const u = new URL(s.hubUrl);
      if (u.hostname !== 'huggingface.co') host = ` on ${u.host}`;
    } catch {
      host = ` on ${s.hubUrl}`;
    }
  }
  return `${s.repo}${s.revision && s.revision !== 'main' ? `@${s.revision}` : ''}/${s.file}${host}`;
}

// ---- IndexedDB ------------------------------------------------------------------------------------

const META = 'lora:';
const FILE = 'file:';

type StoredMeta = Omit<StoredLora, 'source'> & { source: SavedLoraSource };

let store: UseStore | null = null;
function loraStore(): UseStore {
  store ??= createStore('koala-web-loras', 'loras');
  return store;
}

/** The saved list, in the order it was added. Entries whose file is missing are dropped. */
export async function listLoras(): Promise<StoredLora[]> {
  const all = await entries<string, unknown>(loraStore());
  const files = new Map<string, Blob>();
  const metas: StoredMeta[] = [];
  for (const [k, v] of all) {
    if (typeof k !== 'string') continue;
    if (k.startsWith(FILE) && v instanceof Blob) files.set(k.slice(FILE.length), v);
    else if (k.startsWith(META) && v && typeof v === 'object') metas.push(v as StoredMeta);
  }
  const out: StoredLora[] = [];
  for (const m of metas) {
    if (typeof m.id !== 'string' || typeof m.name !== 'string' || !m.source) continue;
    let source: LoraSource;
    if (m.source.kind === 'local') {
      const blob = files.get(m.id);
      if (!blob) continue;
      source = { kind: 'local', name: m.source.name, blob };
    } else source = m.source;
    out.push({ ...m, source, scale: clampScale(m.scale), allowPartial: !!m.allowPartial });
  }
  return out.sort((a, b) => a.addedAt - b.addedAt);
}

/** Saves an entry; `withFile` also writes a local source's Blob (only needed when it is added). */
export async function saveLora(l: StoredLora, withFile = false): Promise<void> {
  const meta: StoredMeta = { ...l, source: savedSource(l.source) };
  if (withFile && l.source.kind === 'local') await set(FILE + l.id, l.source.blob, loraStore());
  await set(META + l.id, meta, loraStore());
}

export async function deleteLora(id: string): Promise<void> {
  await delMany([META + id, FILE + id], loraStore());
}
