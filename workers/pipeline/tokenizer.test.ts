import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { basicClean, ClipTokenizer, SdxlTokenizers } from './tokenizer';

const root = join(__dirname, '../../test/fixtures');

function load(fixture: string, folder: string) {
  const dir = join(root, fixture, folder);
  return {
    name: folder,
    vocab: readFileSync(join(dir, 'vocab.json'), 'utf8'),
    merges: readFileSync(join(dir, 'merges.txt'), 'utf8'),
    tokenizerConfig: readFileSync(join(dir, 'tokenizer_config.json'), 'utf8'),
    specialTokensMap: readFileSync(join(dir, 'special_tokens_map.json'), 'utf8'),
  };
}

interface TokenCase {
  prompt: string;
  tokenizer_input_ids: number[];
  tokenizer_2_input_ids: number[];
  tokenizer_untruncated_ids: number[];
  tokenizer_2_untruncated_ids: number[];
  tokenizer_untruncated_tokens: string[];
  tokenizer_2_untruncated_tokens: string[];
}

for (const fixture of ['tiny-sdxl', 'tiny-koala']) {
  describe(`CLIP tokenizers vs diffusers goldens (${fixture})`, () => {
    const golden = JSON.parse(readFileSync(join(root, fixture, 'goldens/tokens.json'), 'utf8')) as {
      cases: TokenCase[];
      tokenizer_pad_token_id: number;
      tokenizer_2_pad_token_id: number;
    };
    const tok = SdxlTokenizers.fromFiles(load(fixture, 'tokenizer'), load(fixture, 'tokenizer_2'));

    it('has the pad ids of the goldens', () => {
      expect(tok.tokenizer.padId).toBe(golden.tokenizer_pad_token_id);
      expect(tok.tokenizer2.padId).toBe(golden.tokenizer_2_pad_token_id);
      expect(tok.tokenizer.bosId).toBe(49406);
      expect(tok.tokenizer.eosId).toBe(49407);
    });

    it.each(golden.cases.map((c, i) => [i, c] as const))('case %i', (_i, c) => {
      expect(tok.tokenizer.encodeUntruncated(c.prompt)).toEqual(c.tokenizer_untruncated_ids);
      expect(tok.tokenizer2.encodeUntruncated(c.prompt)).toEqual(c.tokenizer_2_untruncated_ids);
      expect(['<|startoftext|>', ...tok.tokenizer.tokens(c.prompt), '<|endoftext|>']).toEqual(c.tokenizer_untruncated_tokens);
      expect(['<|startoftext|>', ...tok.tokenizer2.tokens(c.prompt), '<|endoftext|>']).toEqual(c.tokenizer_2_untruncated_tokens);
      const e = tok.encode(c.prompt);
      expect(Array.from(e.ids1)).toEqual(c.tokenizer_input_ids);
      expect(Array.from(e.ids2)).toEqual(c.tokenizer_2_input_ids);
      const over = Math.max(c.tokenizer_untruncated_ids.length, c.tokenizer_2_untruncated_ids.length) - 77;
      expect(e.truncated).toBe(Math.max(0, over));
    });
  });
}

describe('tokenizer helpers', () => {
  const tok = SdxlTokenizers.fromFiles(load('tiny-sdxl', 'tokenizer'), load('tiny-sdxl', 'tokenizer_2'));

  it('reports truncation and counts tokens', () => {
    const prompt = Array(80).fill('cat').join(' ');
    const e = tok.encode(prompt);
    expect(e.tokenCount).toBe(80);
    expect(e.truncated).toBe(5);
    expect(e.ids1[76]).toBe(49407);
    expect(tok.countTokens(prompt)).toBe(80);
    expect(tok.countTokens('')).toBe(0);
    expect(tok.limit).toBe(75);
    // tokenizer_2 splits every "!" out, so it can count more tokens than tokenizer
    expect(tok.tokenizer.countTokens('wow!!!')).toBe(2);
    expect(tok.tokenizer2.countTokens('wow!!!')).toBe(4);
    expect(tok.countTokens('wow!!!')).toBe(4);
  });

  it('cleans text like BasicTokenizer', () => {
    expect(basicClean('  A\u200bB\tC\u00a0D  ')).toBe('ab c d');
    expect(basicClean('猫cat')).toBe('猫 cat');
    expect(basicClean('e\u0301')).toBe('\u00e9');
    expect(basicClean('\u0007')).toBe('');
  });

  it('accepts parsed JSON and falls back to CLIPTokenizer defaults without config files', () => {
    const files = load('tiny-sdxl', 'tokenizer');
    const t = new ClipTokenizer({ vocab: JSON.parse(files.vocab), merges: files.merges, tokenizerConfig: {} });
    expect([t.bosId, t.eosId, t.padId]).toEqual([49406, 49407, 49407]);
    expect(t.encodeUntruncated('a photo of a cat')).toEqual([49406, 320, 1125, 539, 320, 2368, 49407]);
  });

  it('names the file in errors', () => {
    const files = load('tiny-sdxl', 'tokenizer');
    expect(() => new ClipTokenizer({ ...files, vocab: '{bad' })).toThrow(/tokenizer\/vocab\.json is not valid JSON/);
    expect(() => new ClipTokenizer({ ...files, merges: 'i n\n' })).toThrow(/merges\.txt: expected a "#version" header/);
    expect(() => new ClipTokenizer({ ...files, vocab: '{"a": 1}' })).toThrow(/no id for the bos_token "<\|startoftext\|>"/);
  });
});

describe('marker text that is not a registered special token', () => {
  const tok = SdxlTokenizers.fromFiles(load('tiny-sdxl', 'tokenizer'), load('tiny-sdxl', 'tokenizer_2'));
  it('maps "<|ENDOFTEXT|>" (lowercased by the clean-up) to the eos id as the slow BPE cache does', () => {
    const ids = tok.tokenizer.tokenIds('a <|EndOfText|> b');
    expect(ids).toEqual([...tok.tokenizer.tokenIds('a'), 49407, ...tok.tokenizer.tokenIds('b')]);
    // CLIP's regex lets punctuation swallow the "<|" of a following marker: no special id then
    const glued = tok.tokenizer.tokens('!<|ENDOFTEXT|>');
    expect(glued).not.toContain('<|endoftext|>');
    expect(glued.join('')).toBe('!<|</w>endoftext</w>|></w>');
  });
});
