import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CHUNK_LENGTH, describeTokens, MAX_PROMPT_CHUNKS, needsWeighting, planPlain, planWeighted, PromptTooLongError } from './long-prompt';
import { hasPromptSyntax } from './prompt-attention';
import { halfToFloat, floatToHalf } from '../model/safetensors';
import { SdxlTokenizers } from './tokenizer';

const root = join(__dirname, '../../test/fixtures');
const load = (folder: string) => {
  const dir = join(root, 'tiny-koala', folder);
  const f = (n: string) => readFileSync(join(dir, n), 'utf8');
  return { name: folder, vocab: f('vocab.json'), merges: f('merges.txt'), tokenizerConfig: f('tokenizer_config.json'), specialTokensMap: f('special_tokens_map.json') };
};
const tok = SdxlTokenizers.fromFiles(load('tokenizer'), load('tokenizer_2'));
const BOS = 49406;
const EOS = 49407;
const words = (n: number, w = 'koala') => Array.from({ length: n }, () => w).join(' ');

describe('planWeighted (lpw_stable_diffusion_xl chunking)', () => {
  it('keeps a short chunk unpadded: [bos] + tokens + [eos], the negative padded with eos to the same length', () => {
    const p = planWeighted(tok, 'a koala', 'blurry');
    const n1 = tok.tokenizer.tokenIds('a koala').length;
    expect(p.chunkLengths).toEqual([n1 + 2]);
    expect(p.tokens).toBe(n1 + 2);
    const ids = [...p.positive.ids1[0]!];
    expect(ids.slice(0, n1 + 2)).toEqual([BOS, ...tok.tokenizer.tokenIds('a koala'), EOS]);
    expect(ids.length).toBe(CHUNK_LENGTH);
    expect(ids.slice(n1 + 2).every((v) => v === EOS)).toBe(true);
    const negIds = tok.tokenizer.tokenIds('blurry');
    expect([...p.negative.ids1[0]!].slice(0, n1 + 2)).toEqual([BOS, ...negIds, ...Array(n1 - negIds.length).fill(EOS), EOS]);
    expect([...p.positive.weights]).toEqual(Array(n1 + 2).fill(1));
  });

  it('cuts 75-token chunks, the last one shorter, and the negative follows the longer prompt', () => {
    const p = planWeighted(tok, words(160), '');
    expect(p.chunkLengths).toEqual([77, 77, 12]);
    expect(p.tokens).toBe(166);
    expect(p.positive.ids1.length).toBe(3);
    expect(p.negative.ids1.length).toBe(3);
    for (const row of p.positive.ids1) expect([row[0], row[76]]).toEqual([BOS, EOS]);
    expect(p.negative.ids1[2]!.slice(1, 11).every((v) => v === EOS)).toBe(true);
    const q = planWeighted(tok, 'a cat', words(80));
    expect(q.chunkLengths).toEqual([77, 7]);
  });

  it('gives every token its fragment weight, rounded to float16, bos and eos 1', () => {
    const p = planWeighted(tok, 'a (koala:1.3) [tree]', undefined);
    const f16 = (x: number) => halfToFloat(floatToHalf(x));
    const w = [...p.positive.weights];
    expect(w[0]).toBe(1);
    expect(w.at(-1)).toBe(1);
    expect(w).toContain(f16(1.3));
    expect(w).toContain(f16(1 / 1.1));
    expect(f16(1.3)).not.toBe(1.3);
  });

  it('starts a new chunk at BREAK (A1111), padding the chunk with eos', () => {
    const p = planWeighted(tok, 'a koala BREAK a tree', undefined);
    expect(p.chunkLengths.length).toBe(2);
    expect(p.chunkLengths[0]).toBe(77);
    const first = [...p.positive.ids1[0]!];
    const n = tok.tokenizer.tokenIds('a koala').length;
    expect(first.slice(1 + n, 76).every((v) => v === EOS)).toBe(true);
    expect([...p.positive.ids1[1]!].slice(1, 1 + tok.tokenizer.tokenIds('a tree').length)).toEqual(tok.tokenizer.tokenIds('a tree'));
  });

  it('aligns the two tokenizers when `!` makes their counts differ', () => {
    const p = planWeighted(tok, 'wow!! koala', undefined);
    expect(tok.tokenizer.tokenIds('wow!! koala').length).not.toBe(tok.tokenizer2.tokenIds('wow!! koala').length);
    expect(p.positive.ids1[0]!.length).toBe(p.positive.ids2[0]!.length);
    expect(p.chunkLengths[0]).toBe(Math.max(tok.tokenizer.tokenIds('wow!! koala').length, tok.tokenizer2.tokenIds('wow!! koala').length) + 2);
  });

  it('refuses more than MAX_PROMPT_CHUNKS chunks, naming the limit', () => {
    expect(() => planWeighted(tok, words(75 * MAX_PROMPT_CHUNKS + 1), undefined)).toThrow(PromptTooLongError);
    expect(() => planWeighted(tok, words(75 * MAX_PROMPT_CHUNKS + 1), undefined)).toThrow(new RegExp(`at most ${MAX_PROMPT_CHUNKS}`));
    expect(planWeighted(tok, words(75 * MAX_PROMPT_CHUNKS), undefined).chunkLengths.length).toBe(MAX_PROMPT_CHUNKS);
  });

  it('gives both-empty prompts one [bos, eos] chunk', () => {
    expect(planWeighted(tok, '', '').chunkLengths).toEqual([2]);
  });
});

describe('auto style and the token counter', () => {
  it('reads short plain prompts as diffusers does, long or bracketed ones weighted', () => {
    expect(needsWeighting(tok, 'a koala in a tree', undefined, hasPromptSyntax)).toBe(false);
    expect(needsWeighting(tok, words(76), undefined, hasPromptSyntax)).toBe(true);
    expect(needsWeighting(tok, 'a koala', '(blurry)', hasPromptSyntax)).toBe(true);
    const plain = planPlain(tok, words(80), undefined);
    expect(plain.chunkLengths).toEqual([77]);
    expect(plain.truncated.prompt).toBe(5);
  });

  it('reports tokens per encoder, chunks and boundaries', () => {
    const d = describeTokens(tok, words(160), 'auto', hasPromptSyntax);
    expect(d).toMatchObject({ style: 'weighted', count: 160, chunks: 3, boundaries: [75, 150], limit: 75, maxChunks: MAX_PROMPT_CHUNKS, perEncoder: [160, 160] });
    expect(describeTokens(tok, words(160), 'plain', hasPromptSyntax)).toMatchObject({ style: 'plain', count: 160, chunks: 1 });
    expect(describeTokens(tok, 'a koala', 'auto', hasPromptSyntax)).toMatchObject({ style: 'plain', chunks: 1 });
  });
});
