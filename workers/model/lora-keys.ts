/**
 * LoRA key layouts → the diffusers parameter each low-rank pair changes.
 *
 * Layouts users have (one file may mix them only within a layout):
 * - diffusers / PEFT: `unet.<module>.lora_A.weight` + `.lora_B.weight` (also the older
 *   `.lora.down.weight` / `.lora.up.weight` and text encoders' `.lora_linear_layer.down/up.weight`),
 *   `text_encoder.<module>…`, `text_encoder_2.<module>…`; optional `<module>.alpha`.
 * - kohya / A1111: `lora_unet_<module with _>.lora_down.weight` + `.lora_up.weight` + `.alpha`,
 *   `lora_te1_…` (text_encoder), `lora_te2_…` (text_encoder_2). U-Net module names come either in
 *   diffusers form (`lora_unet_down_blocks_1_attentions_0_…`) or in the original SGM form of the SDXL
 *   code base (`lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q`), which is converted
 *   with the TARGET U-Net's `layers_per_block`, as diffusers' kohya converter does (so an SDXL LoRA
 *   on a KOALA U-Net lands where diffusers would put it; where no such module exists it is unmatched).
 *
 * Matching is by lookup, never by guessing underscores back into dots: every `.weight` of the model
 * gives its candidate key spellings, and a LoRA module matches when one spelling is its key.
 */

export type LoraComponent = 'unet' | 'text_encoder' | 'text_encoder_2';

export interface LoraModuleKeys {
  /** The LoRA file's module prefix, e.g. `lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q`. */
  prefix: string;
  down: string;
  up: string;
  alpha?: string;
}

export type LoraLayout = 'peft' | 'kohya';

const PEFT_PAIRS: readonly [string, string][] = [
  ['.lora_A.weight', '.lora_B.weight'],
  ['.lora.down.weight', '.lora.up.weight'],
  ['.lora_linear_layer.down.weight', '.lora_linear_layer.up.weight'],
];
const KOHYA_PAIR: [string, string] = ['.lora_down.weight', '.lora_up.weight'];

export class LoraFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LoraFormatError';
  }
}

/** Groups a LoRA file's tensor names into modules (down/up/alpha); names that fit no pair are returned apart. */
export function groupLoraKeys(names: string[]): { layout: LoraLayout; modules: LoraModuleKeys[]; other: string[] } {
  const set = new Set(names);
  const kohya = names.some((n) => n.startsWith('lora_unet_') || n.startsWith('lora_te'));
  const peft = names.some((n) => /^(unet|text_encoder|text_encoder_2)\./.test(n));
  if (names.some((n) => n.startsWith('lora_te_'))) {
    throw new LoraFormatError('This LoRA has `lora_te_` keys (one text encoder): it is for Stable Diffusion 1.x/2.x, not for an SDXL-family model');
  }
  if (kohya && peft) throw new LoraFormatError('This file mixes kohya (`lora_unet_…`) and diffusers (`unet.…`) key names');
  if (!kohya && !peft) {
    const sample = names.slice(0, 3).join(', ');
    throw new LoraFormatError(`No LoRA keys found (expected \`unet.…lora_A.weight\` or \`lora_unet_….lora_down.weight\`; the file has ${names.length} tensors${sample ? `, e.g. ${sample}` : ''})`);
  }
  const pairs = kohya ? [KOHYA_PAIR] : PEFT_PAIRS;
  const used = new Set<string>();
  const modules: LoraModuleKeys[] = [];
  for (const n of names) {
    for (const [d, u] of pairs) {
      if (!n.endsWith(d)) continue;
      const prefix = n.slice(0, -d.length);
      const up = prefix + u;
      if (!set.has(up)) throw new LoraFormatError(`LoRA key ${n} has no matching ${up}`);
      const alpha = set.has(`${prefix}.alpha`) ? `${prefix}.alpha` : undefined;
      modules.push({ prefix, down: n, up, alpha });
      used.add(n).add(up);
      if (alpha) used.add(alpha);
    }
  }
  for (const n of names) {
    if (used.has(n)) continue;
    for (const [, u] of pairs) if (n.endsWith(u)) throw new LoraFormatError(`LoRA key ${n} has no matching down/A weight`);
  }
  return { layout: kohya ? 'kohya' : 'peft', modules, other: names.filter((n) => !used.has(n)) };
}

/** SGM (original SDXL code) module names of a diffusers U-Net module, for uniform `layers_per_block` (none for other modules). */
export function sgmNames(module: string, layersPerBlock: number): string[] {
  const one = sgmName(module, layersPerBlock);
  if (one) return [one];
  const m = /^up_blocks\.(\d+)\.upsamplers\.0\.conv$/.exec(module);
  if (!m) return [];
  // The upsampler follows the block's last layer: `.1.conv` without attentions, `.2.conv` with them.
  const n = Number(m[1]) * (layersPerBlock + 1) + layersPerBlock;
  return [`output_blocks.${n}.1.conv`, `output_blocks.${n}.2.conv`];
}

function sgmName(module: string, layersPerBlock: number): string | undefined {
  const L = layersPerBlock;
  const resnet = (rest: string) =>
    rest
      .replace(/^norm1\b/, 'in_layers.0')
      .replace(/^conv1\b/, 'in_layers.2')
      .replace(/^time_emb_proj\b/, 'emb_layers.1')
      .replace(/^norm2\b/, 'out_layers.0')
      .replace(/^conv2\b/, 'out_layers.3')
      .replace(/^conv_shortcut\b/, 'skip_connection');
  let m = /^down_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.+)$/.exec(module);
  if (m) {
    const n = 1 + Number(m[1]) * (L + 1) + Number(m[3]);
    return m[2] === 'resnets' ? `input_blocks.${n}.0.${resnet(m[4]!)}` : `input_blocks.${n}.1.${m[4]}`;
  }
  m = /^down_blocks\.(\d+)\.downsamplers\.0\.conv$/.exec(module);
  if (m) return `input_blocks.${(Number(m[1]) + 1) * (L + 1)}.0.op`;
  m = /^mid_block\.(resnets|attentions)\.(\d+)\.(.+)$/.exec(module);
  if (m) return m[1] === 'attentions' ? `middle_block.1.${m[3]}` : `middle_block.${Number(m[2]) * 2}.${resnet(m[3]!)}`;
  m = /^up_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.+)$/.exec(module);
  if (m) {
    const n = Number(m[1]) * (L + 1) + Number(m[3]);
    return m[2] === 'resnets' ? `output_blocks.${n}.0.${resnet(m[4]!)}` : `output_blocks.${n}.1.${m[4]}`;
  }
  return undefined;
}

/** Every key spelling (without the .lora_… suffix) that names this module of `component`. */
export function candidateKeys(component: LoraComponent, module: string, layersPerBlock?: number): string[] {
  if (component !== 'unet') {
    const k = component === 'text_encoder' ? 'lora_te1_' : 'lora_te2_';
    return [`${component}.${module}`, k + module.replace(/\./g, '_')];
  }
  const out = [`unet.${module}`, `lora_unet_${module.replace(/\./g, '_')}`];
  if (layersPerBlock !== undefined) {
    for (const s of sgmNames(module, layersPerBlock)) out.push(`lora_unet_${s.replace(/\./g, '_')}`);
  }
  return out;
}
