/**
 * UNet2DConditionModel config.json -> a normalized, validated plan of the SDXL-family U-Net.
 *
 * Only the fields that change the math are read; defaults are diffusers' constructor defaults.
 * A field set to a value this builder does not implement is an error that names it.
 */

export type DownBlockType = 'DownBlock2D' | 'CrossAttnDownBlock2D';
export type UpBlockType = 'UpBlock2D' | 'CrossAttnUpBlock2D';

export interface UnetBlockPlan {
  type: DownBlockType | UpBlockType;
  /** output channels of the block */
  channels: number;
  /** resnets in the block (down: layers_per_block, up: layers_per_block + 1) */
  resnets: number;
  /** attention: transformer depth per resnet (empty for blocks without attention) */
  transformerDepths: number[];
  heads: number;
  crossAttentionDim: number;
  /** down: has a Downsample2D after the resnets; up: has an Upsample2D */
  resample: boolean;
}

export interface UnetMidPlan {
  channels: number;
  /** one entry per attention+resnet pair (diffusers num_layers, 1 in every known config) */
  transformerDepths: number[];
  heads: number;
  crossAttentionDim: number;
}

export interface UnetPlan {
  inChannels: number;
  outChannels: number;
  blockOut: number[];
  convInKernel: number;
  convOutKernel: number;
  groups: number;
  normEps: number;
  /** Transformer2DModel's GroupNorm eps: fixed 1e-6 in diffusers */
  transformerNormEps: number;
  useLinearProjection: boolean;
  flipSinToCos: boolean;
  freqShift: number;
  /** sinusoid size of the timestep (block_out_channels[0]) */
  timeProjDim: number;
  timeEmbedDim: number;
  additionTimeEmbedDim: number;
  projectionClassEmbeddingsInputDim: number;
  /** text_embeds width: projection_class_embeddings_input_dim - 6 * addition_time_embed_dim */
  textEmbedsDim: number;
  downsamplePadding: number;
  resnetOutScale: number;
  midBlockScale: number;
  down: UnetBlockPlan[];
  mid: UnetMidPlan | null;
  up: UnetBlockPlan[];
  /** cross_attention_dim: the width of encoder_hidden_states */
  encoderHiddenDim: number;
}

export type UnetConfig = Record<string, unknown>;

export class UnetConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnetConfigError';
  }
}

const fail = (msg: string): never => {
  throw new UnetConfigError(`unet/config.json: ${msg}`);
};

function field<T>(cfg: UnetConfig, name: string, dflt: T): unknown {
  const v = cfg[name];
  return v === undefined ? dflt : v;
}

function int(cfg: UnetConfig, name: string, dflt?: number): number {
  const v = field(cfg, name, dflt);
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) fail(`"${name}" must be a non-negative integer, found ${JSON.stringify(v)}`);
  return v as number;
}

function num(cfg: UnetConfig, name: string, dflt: number): number {
  const v = field(cfg, name, dflt);
  if (typeof v !== 'number' || !Number.isFinite(v)) fail(`"${name}" must be a number, found ${JSON.stringify(v)}`);
  return v as number;
}

function bool(cfg: UnetConfig, name: string, dflt: boolean): boolean {
  const v = field(cfg, name, dflt);
  if (v === null) return dflt;
  if (typeof v !== 'boolean') fail(`"${name}" must be true or false, found ${JSON.stringify(v)}`);
  return v as boolean;
}

/** Demands that a field which changes the math has one of the supported values. */
function only(cfg: UnetConfig, name: string, allowed: unknown[], dflt: unknown): void {
  const v = field(cfg, name, dflt);
  if (!allowed.some((a) => a === v)) {
    fail(`"${name}" = ${JSON.stringify(v)} is not supported (supported: ${allowed.map((a) => JSON.stringify(a)).join(', ')})`);
  }
}

/** int or per-block list -> per-block list of n entries */
function perBlock(cfg: UnetConfig, name: string, n: number, dflt?: unknown): number[] {
  const v = field(cfg, name, dflt);
  if (typeof v === 'number') {
    if (!Number.isInteger(v) || v <= 0) fail(`"${name}" must be a positive integer or a list, found ${JSON.stringify(v)}`);
    return new Array<number>(n).fill(v);
  }
  if (!Array.isArray(v) || v.length !== n || !v.every((x) => typeof x === 'number' && Number.isInteger(x) && x > 0)) {
    fail(`"${name}" must be a positive integer or a list of ${n} positive integers (one per block), found ${JSON.stringify(v)}`);
  }
  return v as number[];
}

/**
 * transformer_layers_per_block entry: int, or per-layer list (nested form). 0 is allowed (diffusers then
 * builds a Transformer2DModel with no BasicTransformerBlock: norm, proj_in, proj_out only).
 */
function depthsFor(entry: unknown, layers: number, what: string): number[] {
  const ok = (x: unknown) => typeof x === 'number' && Number.isInteger(x) && x >= 0;
  if (ok(entry)) return new Array<number>(layers).fill(entry as number);
  if (Array.isArray(entry) && entry.length === layers && entry.every(ok)) return entry as number[];
  return fail(`${what} must be a non-negative integer or a list of ${layers} of them, found ${JSON.stringify(entry)}`);
}

export function planUnet(cfg: UnetConfig): UnetPlan {
  if (cfg === null || typeof cfg !== 'object') fail('not a JSON object');
  const cls = cfg._class_name;
  if (cls !== undefined && cls !== 'UNet2DConditionModel') fail(`"_class_name" = ${JSON.stringify(cls)}, expected "UNet2DConditionModel"`);

  // Fields that change the math and are supported only at their SDXL-family values.
  only(cfg, 'act_fn', ['silu', 'swish'], 'silu');
  only(cfg, 'center_input_sample', [false], false);
  only(cfg, 'class_embed_type', [null], null);
  only(cfg, 'num_class_embeds', [null], null);
  only(cfg, 'time_cond_proj_dim', [null], null);
  only(cfg, 'time_embedding_type', ['positional'], 'positional');
  only(cfg, 'time_embedding_act_fn', [null], null);
  only(cfg, 'timestep_post_act', [null], null);
  only(cfg, 'encoder_hid_dim_type', [null], null);
  only(cfg, 'encoder_hid_dim', [null], null);
  only(cfg, 'addition_embed_type', ['text_time'], null);
  only(cfg, 'dual_cross_attention', [false], false);
  only(cfg, 'only_cross_attention', [false], false);
  only(cfg, 'resnet_time_scale_shift', ['default'], 'default');
  only(cfg, 'resnet_skip_time_act', [false], false);
  only(cfg, 'attention_type', ['default'], 'default');
  only(cfg, 'cross_attention_norm', [null], null);
  only(cfg, 'class_embeddings_concat', [false], false);
  only(cfg, 'conv_in_kernel', [1, 3, 5, 7], 3);
  only(cfg, 'conv_out_kernel', [1, 3, 5, 7], 3);

  const blockOut = field(cfg, 'block_out_channels', [320, 640, 1280, 1280]);
  if (!Array.isArray(blockOut) || blockOut.length < 1 || !blockOut.every((c) => Number.isInteger(c) && c > 0)) {
    fail(`"block_out_channels" must be a list of positive integers, found ${JSON.stringify(blockOut)}`);
  }
  const bo = blockOut as number[];
  const n = bo.length;
  const downTypes = field(cfg, 'down_block_types', null) as unknown[];
  const upTypes = field(cfg, 'up_block_types', null) as unknown[];
  if (!Array.isArray(downTypes) || downTypes.length !== n) fail(`"down_block_types" must list ${n} blocks (one per block_out_channels entry), found ${JSON.stringify(downTypes)}`);
  if (!Array.isArray(upTypes) || upTypes.length !== n) fail(`"up_block_types" must list ${n} blocks, found ${JSON.stringify(upTypes)}`);
  downTypes.forEach((t, i) => {
    if (t !== 'DownBlock2D' && t !== 'CrossAttnDownBlock2D') fail(`"down_block_types"[${i}] = ${JSON.stringify(t)} is not supported (supported: "DownBlock2D", "CrossAttnDownBlock2D")`);
  });
  upTypes.forEach((t, i) => {
    if (t !== 'UpBlock2D' && t !== 'CrossAttnUpBlock2D') fail(`"up_block_types"[${i}] = ${JSON.stringify(t)} is not supported (supported: "UpBlock2D", "CrossAttnUpBlock2D")`);
  });
  const midType = field(cfg, 'mid_block_type', 'UNetMidBlock2DCrossAttn');
  if (midType !== null && midType !== 'UNetMidBlock2DCrossAttn') fail(`"mid_block_type" = ${JSON.stringify(midType)} is not supported (supported: null, "UNetMidBlock2DCrossAttn")`);

  const groups = int(cfg, 'norm_num_groups', 32);
  if (groups === 0) fail('"norm_num_groups" = 0 (null) is not supported');
  bo.forEach((c, i) => {
    if (c % groups !== 0) fail(`"block_out_channels"[${i}] = ${c} is not divisible by "norm_num_groups" = ${groups}`);
  });

  const layers = perBlock(cfg, 'layers_per_block', n, 2);
  // the diffusers quirk: attention_head_dim is the head COUNT unless num_attention_heads is given
  const nah = field(cfg, 'num_attention_heads', null);
  const heads = nah !== null ? perBlock(cfg, 'num_attention_heads', n) : perBlock(cfg, 'attention_head_dim', n, 8);
  const crossDims = perBlock(cfg, 'cross_attention_dim', n, 1280);
  if (crossDims.some((d) => d !== crossDims[0])) {
    fail(`"cross_attention_dim" = ${JSON.stringify(field(cfg, 'cross_attention_dim', null))}: different widths per block are not supported (one encoder_hidden_states input)`);
  }

  const tlpb = field(cfg, 'transformer_layers_per_block', 1);
  const tl: unknown[] = typeof tlpb === 'number' ? new Array<unknown>(n).fill(tlpb) : (tlpb as unknown[]);
  if (!Array.isArray(tl) || tl.length !== n) fail(`"transformer_layers_per_block" must be an integer or a list of ${n} entries, found ${JSON.stringify(tlpb)}`);
  const rtl = field(cfg, 'reverse_transformer_layers_per_block', null);
  if (rtl !== null && (!Array.isArray(rtl) || rtl.length !== n)) {
    fail(`"reverse_transformer_layers_per_block" must be null or a list of ${n} entries, found ${JSON.stringify(rtl)}`);
  }
  if (rtl === null && tl.some((e) => Array.isArray(e))) {
    fail('"transformer_layers_per_block" has per-layer lists, so "reverse_transformer_layers_per_block" must be given (as diffusers requires)');
  }

  const down: UnetBlockPlan[] = [];
  for (let i = 0; i < n; i++) {
    const type = downTypes[i] as DownBlockType;
    const attn = type === 'CrossAttnDownBlock2D';
    if (attn && bo[i] % heads[i] !== 0) fail(`block ${i}: ${bo[i]} channels are not divisible by ${heads[i]} attention heads`);
    down.push({
      type,
      channels: bo[i],
      resnets: layers[i],
      transformerDepths: attn ? depthsFor(tl[i], layers[i], `"transformer_layers_per_block"[${i}]`) : [],
      heads: heads[i],
      crossAttentionDim: crossDims[i],
      resample: i < n - 1,
    });
  }

  let mid: UnetMidPlan | null = null;
  if (midType !== null) {
    // diffusers builds the mid block with num_layers = 1: one attention + resnet pair after the first resnet
    // (a per-layer list entry: diffusers' mid block reads only its first element)
    const last = tl[n - 1];
    const depths = depthsFor(Array.isArray(last) ? last.slice(0, 1) : last, 1, '"transformer_layers_per_block"[-1] (mid block)');
    if (bo[n - 1] % heads[n - 1] !== 0) fail(`mid block: ${bo[n - 1]} channels are not divisible by ${heads[n - 1]} attention heads`);
    mid = { channels: bo[n - 1], transformerDepths: depths, heads: heads[n - 1], crossAttentionDim: crossDims[n - 1] };
  }

  const up: UnetBlockPlan[] = [];
  const rev = <T>(a: T[]): T[] => [...a].reverse();
  const rBo = rev(bo);
  const rLayers = rev(layers);
  const rHeads = rev(heads);
  const rCross = rev(crossDims);
  const rTl = rtl !== null ? (rtl as unknown[]) : rev(tl);
  for (let i = 0; i < n; i++) {
    const type = upTypes[i] as UpBlockType;
    const attn = type === 'CrossAttnUpBlock2D';
    const resnets = rLayers[i] + 1;
    if (attn && rBo[i] % rHeads[i] !== 0) fail(`up block ${i}: ${rBo[i]} channels are not divisible by ${rHeads[i]} attention heads`);
    up.push({
      type,
      channels: rBo[i],
      resnets,
      transformerDepths: attn
        ? depthsFor(rTl[i], resnets, rtl !== null ? `"reverse_transformer_layers_per_block"[${i}]` : `"transformer_layers_per_block"[${n - 1 - i}]`)
        : [],
      heads: rHeads[i],
      crossAttentionDim: rCross[i],
      resample: i < n - 1,
    });
  }

  const additionTimeEmbedDim = int(cfg, 'addition_time_embed_dim', undefined);
  const projIn = int(cfg, 'projection_class_embeddings_input_dim', undefined);
  const textEmbedsDim = projIn - 6 * additionTimeEmbedDim;
  if (additionTimeEmbedDim <= 0 || textEmbedsDim <= 0) {
    fail(`"projection_class_embeddings_input_dim" (${projIn}) must exceed 6 x "addition_time_embed_dim" (${additionTimeEmbedDim})`);
  }
  const ted = field(cfg, 'time_embedding_dim', null);
  const timeEmbedDim = ted === null ? bo[0] * 4 : int(cfg, 'time_embedding_dim');

  return {
    inChannels: int(cfg, 'in_channels', 4),
    outChannels: int(cfg, 'out_channels', 4),
    blockOut: bo,
    convInKernel: int(cfg, 'conv_in_kernel', 3),
    convOutKernel: int(cfg, 'conv_out_kernel', 3),
    groups,
    normEps: num(cfg, 'norm_eps', 1e-5),
    transformerNormEps: 1e-6,
    useLinearProjection: bool(cfg, 'use_linear_projection', false),
    flipSinToCos: bool(cfg, 'flip_sin_to_cos', true),
    freqShift: num(cfg, 'freq_shift', 0),
    timeProjDim: bo[0],
    timeEmbedDim,
    additionTimeEmbedDim,
    projectionClassEmbeddingsInputDim: projIn,
    textEmbedsDim,
    downsamplePadding: downsamplePadding(cfg),
    resnetOutScale: num(cfg, 'resnet_out_scale_factor', 1),
    midBlockScale: num(cfg, 'mid_block_scale_factor', 1),
    down,
    mid,
    up,
    encoderHiddenDim: crossDims[0],
  };
}

/** diffusers pads asymmetrically (0,1,0,1) when downsample_padding is 0; only symmetric padding is built. */
function downsamplePadding(cfg: UnetConfig): number {
  const p = int(cfg, 'downsample_padding', 1);
  if (p < 1) fail(`"downsample_padding" = ${p} is not supported (supported: 1 or more)`);
  return p;
}
