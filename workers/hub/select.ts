/**
 * Which files of a diffusers repo a pipeline needs, following diffusers' loading rules:
 * model_index.json names the components; each component folder gives its config/tokenizer/scheduler
 * files and its weights: the requested variant (`model.fp16.safetensors`) where the component has it,
 * otherwise the fp32 file; `.safetensors` only (never .bin/.ckpt/.onnx); sharded weights through
 * their `*.safetensors.index*.json`.
 */
import { EngineError } from '../protocol';

/** Parsed weight file name: `{stem}[.{variant}][-NNNNN-of-NNNNN].safetensors`. */
export interface WeightName {
  stem: string;
  variant?: string;
  shard?: string;
}

const WEIGHT_RE = /^(.+?)(?:\.([A-Za-z0-9_]+))?(?:-(\d{5}-of-\d{5}))?\.safetensors$/;
const INDEX_RE = /^(.+?)(?:\.([A-Za-z0-9_]+))?\.safetensors\.index(?:\.([A-Za-z0-9_]+))?\.json$/;
const KNOWN_STEMS = new Set(['diffusion_pytorch_model', 'model']);
/** Non-weight files a component may need (configs, tokenizers, schedulers). */
const SIDE_FILE_RE = /\.(json|txt)$/;

export function parseWeightName(name: string): WeightName | undefined {
  const m = WEIGHT_RE.exec(name);
  if (!m) return undefined;
  return { stem: m[1], variant: m[2], shard: m[3] };
}

/** `{stem}.safetensors.index.{variant}.json` (diffusers) or `{stem}.{variant}.safetensors.index.json`. */
export function parseIndexName(name: string): { stem: string; variant?: string } | undefined {
  const m = INDEX_RE.exec(name);
  if (!m) return undefined;
  return { stem: m[1], variant: m[3] ?? m[2] };
}

/** Component folders named by model_index.json (keys whose value is [library, class] with a library). */
export function pipelineComponents(modelIndex: unknown): string[] {
  if (!modelIndex || typeof modelIndex !== 'object' || Array.isArray(modelIndex)) {
    throw new EngineError('bad-input', 'model_index.json is not a JSON object');
  }
  const out: string[] = [];
  for (const [k, v] of Object.entries(modelIndex as Record<string, unknown>)) {
    if (k.startsWith('_')) continue;
    if (Array.isArray(v) && v.length === 2 && typeof v[0] === 'string' && typeof v[1] === 'string') out.push(k);
  }
  if (out.length === 0) throw new EngineError('bad-input', 'model_index.json names no pipeline components');
  return out.sort();
}

export interface WeightChoice {
  /** A single weight file, or the shard index (shards come from its weight_map). */
  kind: 'single' | 'sharded';
  path: string;
  /** The variant actually chosen (undefined = fp32 files). */
  variant?: string;
}

export interface Selection {
  /** Side files (model_index.json, configs, tokenizer, scheduler). */
  sideFiles: string[];
  /** Weight choice per component that has weights. */
  weights: Record<string, WeightChoice>;
}

/**
 * Select the files of a pipeline from a repo's file list.
 * @param paths every file path of the repo at one commit
 */
export function selectPipelineFiles(paths: string[], modelIndex: unknown, variant?: string): Selection {
  const components = pipelineComponents(modelIndex);
  const byDir = new Map<string, string[]>();
  for (const p of paths) {
    const slash = p.lastIndexOf('/');
    const dir = slash < 0 ? '' : p.slice(0, slash);
    const list = byDir.get(dir) ?? [];
    list.push(p.slice(slash + 1));
    byDir.set(dir, list);
  }
  const sideFiles = ['model_index.json'];
  const weights: Record<string, WeightChoice> = {};
  for (const comp of components) {
    const names = byDir.get(comp);
    if (!names) throw new EngineError('bad-input', `model_index.json names component "${comp}" but the repo has no ${comp}/ folder`);
    for (const n of names) {
      if (SIDE_FILE_RE.test(n) && !parseIndexName(n)) sideFiles.push(`${comp}/${n}`);
    }
    const choice = chooseWeights(comp, names, variant);
    if (choice) weights[comp] = choice;
  }
  return { sideFiles: sideFiles.sort(), weights };
}

function chooseWeights(comp: string, names: string[], variant?: string): WeightChoice | undefined {
  const singles: Array<WeightName & { name: string }> = [];
  const indexes: Array<{ stem: string; variant?: string; name: string }> = [];
  for (const n of names) {
    const idx = parseIndexName(n);
    if (idx) {
      indexes.push({ ...idx, name: n });
      continue;
    }
    const w = parseWeightName(n);
    if (w && !w.shard) singles.push({ ...w, name: n });
  }
  const known = (s: string) => KNOWN_STEMS.has(s);
  const anyKnown = singles.some((w) => known(w.stem)) || indexes.some((w) => known(w.stem));
  const stemOk = (s: string) => !anyKnown || known(s);
  const pick = (v: string | undefined): WeightChoice | undefined => {
    const single = singles.find((w) => stemOk(w.stem) && w.variant === v);
    if (single) return { kind: 'single', path: `${comp}/${single.name}`, variant: v };
    const index = indexes.find((w) => stemOk(w.stem) && w.variant === v);
    if (index) return { kind: 'sharded', path: `${comp}/${index.name}`, variant: v };
    return undefined;
  };
  if (variant) {
    const v = pick(variant);
    if (v) return v;
  }
  const base = pick(undefined);
  if (base) return base;
  const hasConfig = names.includes('config.json');
  const other = names.filter((n) => /\.(bin|ckpt|pt|pth|onnx|msgpack|h5)$/.test(n));
  const variants = [...new Set(singles.map((w) => w.variant).filter(Boolean))];
  if (variants.length > 0) {
    throw new EngineError(
      'bad-input',
      `${comp}/ has only ${variants.join(', ')} weights (${singles.map((w) => w.name).join(', ')}); ` +
        `choose variant ${variants[0]}${variant ? ` instead of ${variant}` : ''}`,
    );
  }
  if (hasConfig) {
    throw new EngineError(
      'bad-input',
      `${comp}/ has no .safetensors weights${other.length ? ` (found ${other.join(', ')}; only .safetensors is read)` : ''}`,
    );
  }
  return undefined;
}

/** Shard file names from a `*.safetensors.index*.json` body, in first-appearance order. */
export function shardsFromIndex(indexPath: string, body: unknown): string[] {
  const map = (body as { weight_map?: Record<string, string> } | null)?.weight_map;
  if (!map || typeof map !== 'object') throw new EngineError('bad-input', `${indexPath} has no weight_map`);
  const dir = indexPath.includes('/') ? indexPath.slice(0, indexPath.lastIndexOf('/') + 1) : '';
  const seen: string[] = [];
  for (const f of Object.values(map)) {
    if (typeof f !== 'string' || !f.endsWith('.safetensors')) {
      throw new EngineError('bad-input', `${indexPath}: weight_map value ${JSON.stringify(f)} is not a .safetensors file`);
    }
    const p = dir + f;
    if (!seen.includes(p)) seen.push(p);
  }
  return seen.sort();
}
