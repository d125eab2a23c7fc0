/**
 * Prompt → text-encoder chunks, in two styles:
 *
 * - `plain`: StableDiffusionXLPipeline.encode_prompt — one 77-token chunk per encoder (bos + 75 + eos,
 *   padded with the tokenizer's pad id), longer prompts truncated. Attention syntax is literal text.
 * - `weighted`: diffusers' community `lpw_stable_diffusion_xl` (v0.30.3) `get_weighted_text_embeddings_sdxl`:
 *   the prompt is parsed for A1111 weights (prompt-attention.ts), each fragment tokenized without
 *   bos/eos, the token lists of prompt and negative prompt padded with eos (weight 1) to the same
 *   length, then cut into chunks of 75: `[bos] + 75 tokens + [eos]` (77), the last chunk NOT padded
 *   (`[bos] + rest + [eos]`, shorter than 77). Each chunk is encoded on its own; hidden states of
 *   both encoders are concatenated, then every position j whose weight w ≠ 1 becomes
 *   `e[last] + (e[j] − e[last]) · w` (e[last] = the chunk's final eos), w rounded to float16 as lpw
 *   holds it. Chunks are concatenated along the sequence. The pooled embedding is text_encoder_2's
 *   `text_embeds` of the LAST chunk (lpw overwrites it per chunk). tokenizer_1's weights apply to both
 *   encoders' features. A negative prompt of None is the empty string.
 *
 * Differences from lpw, where lpw fails or does something no user means (documented in the README):
 * - `BREAK` ends the current chunk (its tokens padded with eos to 75, as A1111 does); lpw 0.30.3
 *   tokenizes the word "break" with weight −1 instead.
 * - When the two tokenizers give different token counts (tokenizer_2 splits every `!`, its pad token),
 *   the shorter list is padded with eos to the longer one; lpw's concatenation fails there.
 * - Both prompts empty: one chunk `[bos, eos]` (lpw has no chunk at all and fails).
 *
 * Encoding at 77 positions and keeping the first L: the encoders' attention is causal, so tokens after
 * position L never change positions < L, and text_embeds pools at the first eos (argmax of ids).
 */
import { parsePromptAttention } from './prompt-attention';
import { floatToHalf, halfToFloat } from '../model/safetensors';
import type { ClipTokenizer, SdxlTokenizers } from './tokenizer';
import type { PromptStyle } from '../protocol';

export type { PromptStyle };
export const PROMPT_STYLES: readonly PromptStyle[] = ['auto', 'weighted', 'plain'];

/** Most 75-token chunks one prompt may use (the U-Net's cross-attention length grows with them). */
export const MAX_PROMPT_CHUNKS = 8;
export const CHUNK_TOKENS = 75;
export const CHUNK_LENGTH = CHUNK_TOKENS + 2;

export interface EncoderChunks {
  /** Per chunk: 77 ids (the chunk's real length L_c, then eos padding the encoder never attends back to). */
  ids: Int32Array[];
}

export interface PromptSide {
  ids1: Int32Array[];
  ids2: Int32Array[];
  /** Weight of every position of the concatenated sequence (tokenizer_1's, float16-rounded). */
  weights: Float32Array;
}

export interface PromptPlan {
  style: 'plain' | 'weighted';
  /** Sequence length of each chunk (77 for plain; the last weighted chunk may be shorter). */
  chunkLengths: number[];
  /** Total sequence length the U-Net's cross-attention sees. */
  tokens: number;
  positive: PromptSide;
  negative: PromptSide;
  /** Tokens dropped (plain style only). */
  truncated: { prompt: number; negativePrompt: number };
}

const f16 = (w: number) => halfToFloat(floatToHalf(w));

/** Tokens and weights of one prompt for one tokenizer (lpw's `get_prompts_tokens_with_weights`), with BREAK positions. */
export function weightedTokens(tok: ClipTokenizer, text: string): { ids: number[]; weights: number[]; breaks: number[] } {
  const ids: number[] = [];
  const weights: number[] = [];
  const breaks: number[] = [];
  for (const f of parsePromptAttention(text)) {
    if (f.isBreak) {
      breaks.push(ids.length);
      continue;
    }
    for (const id of tok.tokenIds(f.text)) {
      ids.push(id);
      weights.push(f.weight);
    }
  }
  return { ids, weights, breaks };
}

/** Pads at each BREAK so the next fragment starts a new chunk (A1111). */
function applyBreaks(t: { ids: number[]; weights: number[]; breaks: number[] }, eos: number): { ids: number[]; weights: number[] } {
  if (!t.breaks.length) return t;
  const ids: number[] = [];
  const weights: number[] = [];
  let from = 0;
  for (const at of [...t.breaks, t.ids.length]) {
    for (let i = from; i < at; i++) {
      ids.push(t.ids[i]!);
      weights.push(t.weights[i]!);
    }
    from = at;
    if (at === t.ids.length) break;
    const rem = ids.length % CHUNK_TOKENS;
    if (rem !== 0 || ids.length === 0) {
      for (let k = rem; k < CHUNK_TOKENS; k++) {
        ids.push(eos);
        weights.push(1);
      }
    }
  }
  return { ids, weights };
}

function padTo(t: { ids: number[]; weights: number[] }, n: number, eos: number) {
  while (t.ids.length < n) {
    t.ids.push(eos);
    t.weights.push(1);
  }
}

/** lpw's `group_tokens_and_weights` (pad_last_block=False): chunk lengths and 77-id rows (eos after L). */
function chunk(ids: number[], bos: number, eos: number): { rows: Int32Array[]; lengths: number[] } {
  const rows: Int32Array[] = [];
  const lengths: number[] = [];
  for (let at = 0; at < ids.length; at += CHUNK_TOKENS) {
    const part = ids.slice(at, at + CHUNK_TOKENS);
    const row = new Int32Array(CHUNK_LENGTH).fill(eos);
    row[0] = bos;
    row.set(part, 1);
    rows.push(row);
    lengths.push(part.length + 2);
  }
  if (!rows.length) {
    const row = new Int32Array(CHUNK_LENGTH).fill(eos);
    row[0] = bos;
    rows.push(row);
    lengths.push(2);
  }
  return { rows, lengths };
}

/** Which style `auto` picks: weighted when either prompt is longer than one chunk or uses the syntax. */
export function needsWeighting(t: SdxlTokenizers, prompt: string, negative: string | undefined, hasSyntax: (s: string) => boolean): boolean {
  const long = (s: string) => t.countTokens(s) > CHUNK_TOKENS;
  return [prompt, negative ?? ''].some((s) => hasSyntax(s) || long(s));
}

export class PromptTooLongError extends Error {
  constructor(
    readonly chunks: number,
    readonly tokens: number,
  ) {
    super(`The prompt needs ${chunks} chunks of ${CHUNK_TOKENS} tokens (${tokens} tokens); at most ${MAX_PROMPT_CHUNKS} (${MAX_PROMPT_CHUNKS * CHUNK_TOKENS} tokens) are supported`);
    this.name = 'PromptTooLongError';
  }
}

/** lpw's tokenization of a prompt pair (see the file comment). */
export function planWeighted(t: SdxlTokenizers, prompt: string, negative: string | undefined): PromptPlan {
  const t1 = t.tokenizer;
  const t2 = t.tokenizer2;
  const eos = t1.eosId;
  const bos = t1.bosId;
  const neg = negative ?? '';
  const p1 = applyBreaks(weightedTokens(t1, prompt), eos);
  const n1 = applyBreaks(weightedTokens(t1, neg), eos);
  const p2 = applyBreaks(weightedTokens(t2, prompt), eos);
  const n2 = applyBreaks(weightedTokens(t2, neg), eos);
  const len = Math.max(p1.ids.length, n1.ids.length, p2.ids.length, n2.ids.length);
  for (const s of [p1, n1, p2, n2]) padTo(s, len, eos);
  const chunks = Math.max(1, Math.ceil(len / CHUNK_TOKENS));
  if (chunks > MAX_PROMPT_CHUNKS) throw new PromptTooLongError(chunks, len);
  const side = (a: { ids: number[]; weights: number[] }, b: { ids: number[] }): { side: PromptSide; lengths: number[] } => {
    const c1 = chunk(a.ids, bos, eos);
    const c2 = chunk(b.ids, bos, eos);
    const weights = new Float32Array(c1.lengths.reduce((x, y) => x + y, 0)).fill(1);
    let pos = 0;
    c1.lengths.forEach((L, c) => {
      for (let j = 0; j < L - 2; j++) weights[pos + 1 + j] = f16(a.weights[c * CHUNK_TOKENS + j]!);
      pos += L;
    });
    return { side: { ids1: c1.rows, ids2: c2.rows, weights }, lengths: c1.lengths };
  };
  const pos = side(p1, p2);
  const negSide = side(n1, n2);
  return {
    style: 'weighted',
    chunkLengths: pos.lengths,
    tokens: pos.side.weights.length,
    positive: pos.side,
    negative: negSide.side,
    truncated: { prompt: 0, negativePrompt: 0 },
  };
}

/** encode_prompt's tokenization: one padded 77-token chunk per encoder, weights all 1. */
export function planPlain(t: SdxlTokenizers, prompt: string, negative: string | undefined): PromptPlan {
  const side = (s: string) => {
    const e = t.encode(s);
    return { side: { ids1: [e.ids1], ids2: [e.ids2], weights: new Float32Array(CHUNK_LENGTH).fill(1) }, truncated: e.truncated };
  };
  const p = side(prompt);
  const n = side(negative ?? '');
  return {
    style: 'plain',
    chunkLengths: [CHUNK_LENGTH],
    tokens: CHUNK_LENGTH,
    positive: p.side,
    negative: n.side,
    truncated: { prompt: p.truncated, negativePrompt: negative === undefined ? 0 : n.truncated },
  };
}

/** Chunk boundaries of a prompt for the page's token counter (per tokenizer, weighted reading). */
export function tokenChunks(tok: ClipTokenizer, text: string): { tokens: number; chunks: number; boundaries: number[] } {
  const t = applyBreaks(weightedTokens(tok, text), tok.eosId);
  const chunks = Math.max(1, Math.ceil(t.ids.length / CHUNK_TOKENS));
  return { tokens: t.ids.length, chunks, boundaries: Array.from({ length: chunks - 1 }, (_, i) => (i + 1) * CHUNK_TOKENS) };
}

/** What the page's token counter shows for one prompt: counts per tokenizer, reading style, chunks. */
export function describeTokens(
  t: SdxlTokenizers,
  prompt: string,
  style: PromptStyle = 'auto',
  hasSyntax: (s: string) => boolean = () => false,
): { count: number; limit: number; perEncoder: [number, number]; style: 'plain' | 'weighted'; chunks: number; boundaries: number[]; maxChunks: number } {
  const weighted = style === 'weighted' || (style === 'auto' && needsWeighting(t, prompt, undefined, hasSyntax));
  if (!weighted) {
    const perEncoder: [number, number] = [t.tokenizer.countTokens(prompt), t.tokenizer2.countTokens(prompt)];
    return { count: Math.max(...perEncoder), limit: t.limit, perEncoder, style: 'plain', chunks: 1, boundaries: [], maxChunks: MAX_PROMPT_CHUNKS };
  }
  const a = tokenChunks(t.tokenizer, prompt);
  const b = tokenChunks(t.tokenizer2, prompt);
  const longer = a.tokens >= b.tokens ? a : b;
  return { count: longer.tokens, limit: t.limit, perEncoder: [a.tokens, b.tokens], style: 'weighted', chunks: longer.chunks, boundaries: longer.boundaries, maxChunks: MAX_PROMPT_CHUNKS };
}
