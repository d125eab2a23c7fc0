import { describe, expect, it } from 'vitest';
import { hasPromptSyntax, parsePromptAttention, PromptSyntaxError } from './prompt-attention';

const pairs = (s: string) => parsePromptAttention(s).map((f) => (f.isBreak ? ['BREAK', -1] : [f.text, Number(f.weight.toFixed(6))]));

describe('parsePromptAttention (A1111 syntax as lpw_stable_diffusion_xl parses it)', () => {
  it('reads plain text as one fragment of weight 1', () => {
    expect(pairs('normal text')).toEqual([['normal text', 1]]);
    expect(pairs('')).toEqual([['', 1]]);
  });

  it('multiplies by 1.1 per round bracket and divides by 1.1 per square bracket', () => {
    expect(pairs('an (important) word')).toEqual([['an ', 1], ['important', 1.1], [' word', 1]]);
    expect(pairs('((nested word))')).toEqual([['nested word', 1.21]]);
    expect(pairs('[background]')).toEqual([['background', Number((1 / 1.1).toFixed(6))]]);
    expect(pairs('[[double]]')).toEqual([['double', Number((1 / 1.21).toFixed(6))]]);
  });

  it('takes explicit weights and nests them', () => {
    expect(pairs('(koala:1.3)')).toEqual([['koala', 1.3]]);
    expect(pairs('(a:0.5) (b:1.5)')).toEqual([['a', 0.5], [' ', 1], ['b', 1.5]]);
    expect(pairs('a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).')).toEqual([
      ['a ', 1], ['house', 1.573], [' ', 1.1], ['on', 1], [' a ', 1.1], ['hill', 0.55], [', sun, ', 1.1], ['sky', 1.4641], ['.', 1.1],
    ]);
  });

  it('keeps escapes literal, closes unbalanced brackets at the end, merges equal weights', () => {
    expect(pairs('\\(literal\\]')).toEqual([['(literal]', 1]]);
    expect(pairs('(unbalanced')).toEqual([['unbalanced', 1.1]]);
    expect(pairs('(unnecessary)(parens)')).toEqual([['unnecessaryparens', 1.1]]);
    expect(pairs('a) b]')).toEqual([['a) b]', 1]]);
    expect(pairs('x:y')).toEqual([['x:y', 1]]);
  });

  it('marks BREAK between fragments', () => {
    expect(pairs('a cat BREAK a dog')).toEqual([['a cat', 1], ['BREAK', -1], ['a dog', 1]]);
    expect(pairs('BREAKFAST')).toEqual([['BREAKFAST', 1]]);
  });

  it('rejects a weight that is not a number, naming it', () => {
    expect(() => parsePromptAttention('(a:1.2.3)')).toThrow(PromptSyntaxError);
    expect(() => parsePromptAttention('(a:1.2.3)')).toThrow(/"1\.2\.3"/);
  });

  it('tells when a prompt uses the syntax', () => {
    expect(hasPromptSyntax('a koala in a tree')).toBe(false);
    expect(hasPromptSyntax('a koala, photo: 35mm')).toBe(false);
    for (const s of ['(koala)', '[x]', 'a \\( b', 'a BREAK b']) expect(hasPromptSyntax(s)).toBe(true);
  });
});
